"""annals' crawler: Scrapy spiders, pipeline, middlewares and extensions (the network side)."""
