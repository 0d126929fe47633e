"""What every source module shares: categories, list pages, envelope errors, and the
helpers that read JSON answers and their fields.

Per-exchange facts (hosts, endpoints, page sizes, categories, rate limits) live in one
value per exchange module (crawler.sources.contract.Source for the JSON lists), never
in branches on a spider's name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from archive.normalize import TimeParseError, format_time, parse_time
from archive.records import ParseError, Record
from archive.urls import url_parts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Category:
    """One of an exchange's announcement categories."""

    key: str  # the exchange's own key or id, as text ("48", "delistings")
    name: str  # its display name ("Delisting")
    event_type: str | None = None  # what it says about archive.records.EVENT_TYPES, if anything


@dataclass(frozen=True)
class Unusable:
    """A list item that could not become a record: where it was and why."""

    index: int  # its place in the answer's list
    reason: str


@dataclass
class ListPage:
    """What one list answer holds."""

    records: list[Record]  # newest first, as the endpoint gives them
    has_more: bool  # a further page may hold more (the spider also stops on an empty page)
    # Items of the answer that could not be read: the spider counts and quarantines them.
    unusable: list[Unusable] = field(default_factory=list)


class EnvelopeError(Exception):
    """An answer whose own code says failure: never archived.

    `rate_limited` marks the codes that mean "slow down and retry".
    """

    def __init__(self, url: str, code: str, message: str, *, rate_limited: bool = False) -> None:
        kind = "rate limited" if rate_limited else "error"
        super().__init__(f"{kind} answer code {code}: {message or 'no message'} ({url})")
        self.url = url
        self.code = code
        self.message = message
        self.rate_limited = rate_limited


# --- helpers the JSON parsers share ---------------------------------------------------------

HTML_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*\b[^>]*|/[a-zA-Z][a-zA-Z0-9]*\s*)>")


# Deeper than this, a JSON answer is not an announcement list or page data but an attack
# or a broken server. The guard is one for every parser: orjson refuses more than 1024
# levels itself, but Python code walking a tree recursively (Binance's detail body of
# nodes) would hit the interpreter's recursion limit (1000) before that, inside a crawl
# already a few hundred frames deep.
MAX_JSON_DEPTH = 200


def load_json(body: bytes | str, url: str, what: str = "answer") -> Any:
    """Parsed JSON, or ParseError (not JSON, or nested deeper than MAX_JSON_DEPTH):
    never a RecursionError, so the spider quarantines the bytes."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            raise ParseError(url, f"{what} is nested deeper than {MAX_JSON_DEPTH} levels") from exc
        raise ParseError(url, f"{what} is not JSON: {exc}") from exc
    if _openings(body) > MAX_JSON_DEPTH and json_depth(data) > MAX_JSON_DEPTH:
        raise ParseError(url, f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def _openings(body: bytes | str) -> int:
    """How many "[" and "{" the text holds: as deep as its JSON can nest at most. Most
    answers (a page of a list, an article's page data) hold fewer than MAX_JSON_DEPTH,
    and are then not walked at all."""
    if isinstance(body, bytes):
        return body.count(b"[") + body.count(b"{")
    return body.count("[") + body.count("{")


def json_depth(data: Any) -> int:
    """How deep objects and arrays nest in parsed JSON (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH:  # deeper is refused anyway: no need to walk it all
            stack.extend((child, depth) for child in children)
    return deepest


def text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, bool | Mapping | list):
        return None
    text = str(value).strip()
    return text or None


def time_or_none(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except TimeParseError:
        return None


def iso_time_or_none(value: Any) -> str | None:
    """A time field as `extra` keeps it (ISO, UTC, as archive.normalize writes times), or
    None when it does not read as a time."""
    moment = time_or_none(value)
    return format_time(moment) if moment is not None else None


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def split_body(description: Any) -> tuple[str | None, str | None]:
    """(body_html, body_text): a description is plain text unless it holds tags."""
    text = description if isinstance(description, str) else None
    if text and HTML_TAG.search(text):
        return text, None
    return None, text


def _code_key(code: Any) -> str:
    """Codes compare as numbers when they are digits: 0 and "0" are one code."""
    text = str(code).strip()
    return str(int(text)) if text.isdigit() else text


def same_code(code: Any, expected: str) -> bool:
    return _code_key(code) == _code_key(expected)


class UnusableItemError(Exception):
    """One list item that cannot become a record; the rest of the page still can."""


def unusable_reason(unusable: list[Unusable]) -> str:
    """The quarantine error of an answer with unusable items: how many, which, and why."""
    shown = "; ".join(f"item {u.index}: {u.reason}" for u in unusable[:5])
    more = f"; and {len(unusable) - 5} more" if len(unusable) > 5 else ""
    return f"{len(unusable)} unusable items ({shown}{more})"


def read_items(
    items: list[Any], url: str, source: str, make: Callable[[Any], Record]
) -> tuple[list[Record], list[Unusable]]:
    """A record per usable item, in order, and what the others lacked (the spider counts
    them as `unusable_items` and quarantines the answer). A page where none is usable
    raises ParseError (the format has changed)."""
    records: list[Record] = []
    unusable: list[Unusable] = []
    for index, item in enumerate(items):
        try:
            records.append(make(item))
        except UnusableItemError as skip:
            logger.warning("%s: unusable item %d on %s: %s", source, index, url, skip)
            unusable.append(Unusable(index, str(skip)))
    if items and not records:
        raise ParseError(url, f"none of the {len(items)} items could be read")
    return records, unusable


def need(item: Mapping[str, Any], name: str, ref: str | None = None) -> str:
    """An item's text field, or UnusableItemError saying which (and, as `ref`, whose) lacks it."""
    text = text_or_none(item.get(name))
    if not text:
        raise UnusableItemError(f"{ref}: no {name}" if ref else f"no {name}")
    return text


def need_url(item: Mapping[str, Any], name: str) -> tuple[str, str]:
    """An item's article URL and the URL's last path segment (the slug or id the page's
    address ends in), or UnusableItemError when it has no URL with a path."""
    url = text_or_none(item.get(name))
    parts = url_parts(url) if url else None
    segments = [s for s in parts.path.split("/") if s] if parts else []
    if not url or not segments:
        raise UnusableItemError(f"no article URL ({item.get(name)!r})")
    return url, segments[-1]


def first_time(item: Mapping[str, Any], fields: tuple[str, ...], ref: str) -> tuple[datetime, str]:
    """The first of an item's documented time fields that reads as a time, and its name:
    a source that leaves out its main time still dates the item by the next one. None
    reads: UnusableItemError naming `ref` (the item) and what each field held."""
    for name in fields:
        moment = time_or_none(item.get(name))
        if moment is not None:
            return moment, name
    held = ", ".join(f"{name} {item.get(name)!r}" for name in fields)
    raise UnusableItemError(f"{ref}: no readable time ({held})")
