"""annals' archive: the versioned store of announcements and posts (no Scrapy here)."""

__version__ = "0.1.0"
