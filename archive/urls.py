"""Reading the URLs that payloads give."""

from __future__ import annotations

from urllib.parse import SplitResult, urljoin, urlsplit


def url_parts(url: str) -> SplitResult | None:
    """`urlsplit` of a URL a payload gives, or None where it cannot be read: a host with an
    unbalanced '[' makes urlsplit raise ValueError, and a payload's link must not."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def absolute(base: str, href: str) -> str:
    """`href` made absolute against `base`, or `href` as written where it cannot be read
    (a link is kept as the page gives it rather than failing the page)."""
    try:
        return urljoin(base, href)
    except ValueError:
        return href
