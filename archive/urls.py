"""Reading the URLs that payloads give."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit


def url_parts(url: str) -> SplitResult | None:
    """`urlsplit` of a URL a payload gives, or None where it cannot be read: a host with an
    unbalanced '[' makes urlsplit raise ValueError, and a payload's link must not."""
    try:
        return urlsplit(url)
    except ValueError:
        return None
