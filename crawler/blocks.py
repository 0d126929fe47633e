"""Recognising block, challenge and rate-limit answers, so they are never parsed or archived."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Literal

from archive.normalize import utcnow

if TYPE_CHECKING:
    from scrapy.http import Headers, Response

# What the WAFs in front of exchange sites answer (SOURCES.md: Akamai, EdgeOne,
# Cloudflare-style "Just a moment..." pages).
_AKAMAI = re.compile(rb"Access Denied|errors\.edgesuite\.net|Reference&#32;&#35;|Reference #", re.I)
_CHALLENGE = re.compile(
    rb"Just a moment\.\.\.|Checking your browser|cf-chl|challenge-platform|captcha"
    rb"|verify you are human|function challenge\(|EdgeOne",
    re.I,
)
# Bybit's answer for too many requests: its documentation says the ban lasts 10 minutes.
_TOO_FREQUENT = re.compile(rb"access too frequent", re.I)
_TAGS = re.compile(rb"<script\b.*?</script>|<style\b.*?</style>|<[^>]+>", re.S | re.I)
_VISIBLE_MIN = 80  # characters of visible text a real page has at least
_CHALLENGE_TEXT_MAX = 600  # a WAF interstitial says a sentence or two


# What a source may answer a burst with instead of a 429 (`Facts.throttle_signs`).
ThrottleSign = Literal["redirect", "empty"]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_EMPTY_BODIES = (b"", b"[]")  # nothing, or an empty JSON array (whitespace aside)


def classify(
    status: int, headers: Mapping[str, str], body: bytes, signs: frozenset[str] = frozenset()
) -> str | None:
    """The kind of block this answer is, or None for an answer worth parsing.

    "rate_limited" (429), "banned" (418: Upbit's, and Binance's, ban of an IP that went on
    after its 429s), "edgeone" (HTTP 567), "too_frequent" (a 403 that says "access too
    frequent"), "akamai" / "forbidden" (other 403s),
    "challenge" (a page that is only a script: a 200 or 503 with no page text; or any
    answer Cloudflare marks `cf-mitigated: challenge`, a 403 for its managed challenge).
    Where the source's `signs` say so: "redirect" (any redirect: Bithumb answers bursts
    with a 302) and "empty" (a 200 with no body, or an empty JSON array).
    """
    if status == 429:
        return "rate_limited"
    if status == 418:
        return "banned"
    if "redirect" in signs and status in _REDIRECTS:
        return "redirect"
    if "empty" in signs and status == 200 and _is_empty(body):
        return "empty"
    if status == 567:
        return "edgeone"
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return "challenge"  # Cloudflare's own mark of a challenge page, whatever its status
    if status == 403:
        if _TOO_FREQUENT.search(body[:4096]):
            return "too_frequent"
        server = headers.get("server", "").lower()
        return "akamai" if "akamai" in server or _AKAMAI.search(body[:4096]) else "forbidden"
    if status in (200, 503) and _looks_like_html(headers, body) and _is_challenge(body):
        return "challenge"
    return None


def _is_empty(body: bytes) -> bool:
    return len(body) < 1024 and b"".join(body.split()) in _EMPTY_BODIES


def _looks_like_html(headers: Mapping[str, str], body: bytes) -> bool:
    content_type = headers.get("content-type", "").lower()
    return "html" in content_type or body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))


def _is_challenge(body: bytes) -> bool:
    """A page with (almost) no text a reader could see: only scripts, or a WAF's
    "checking your browser" line. Real pages carry data or prose, so a page that
    merely mentions a captcha is not taken for a challenge."""
    # Next.js writes its data after the page's markup: found sooner from the end.
    if body.rfind(b"__NEXT_DATA__") >= 0:
        return False
    head = body[:65536]
    visible = len(b"".join(_TAGS.sub(b" ", head).split()))
    if visible < _VISIBLE_MIN and b"<script" in head.lower():
        return True
    return visible < _CHALLENGE_TEXT_MAX and bool(_CHALLENGE.search(head))


def retry_after(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, min((when - utcnow()).total_seconds(), cap))


def headers_of(response: Response) -> Mapping[str, str]:
    """A response's headers as classify() and retry_after() read them: lower-case names."""
    return ResponseHeaders(response.headers)


class ResponseHeaders(Mapping[str, str]):
    """Scrapy's Headers by lower-case name, several values joined with ", ", each one
    decoded only when it is read: every answer is classified, on one or two headers."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def __getitem__(self, name: str) -> str:
        if name not in self._headers:
            raise KeyError(name)
        return b", ".join(self._headers.getlist(name)).decode("latin-1")

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        # Mapping's own get goes through a KeyError for every header an answer lacks.
        return self[name] if name in self._headers else default

    def __iter__(self) -> Iterator[str]:
        return (key.decode("latin-1").lower() for key in self._headers)

    def __len__(self) -> int:
        return len(self._headers)
