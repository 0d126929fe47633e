"""What annals knows of each source: its facts and its pure parse functions (no Scrapy)."""
