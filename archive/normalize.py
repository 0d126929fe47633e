"""Normalization: readable text from HTML, UTC timestamps, content hashes; a record prepared.

Pure functions, no database and no Scrapy: parsers and the store both call them. Tickers
and event types are derived in archive.symbols from what a version stores.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import orjson
from dateutil import parser as dateparser
from lxml import etree, html

from archive.records import Identity, Record
from archive.symbols import classify_event, derive_event, derive_symbols, extract_symbols

# classify_event and extract_symbols live in archive.symbols; callers import them here too.
__all__ = [
    "Prepared",
    "TimeParseError",
    "classify_event",
    "clean_tags",
    "clean_title",
    "content_hash",
    "extract_symbols",
    "format_time",
    "html_to_text",
    "normalize_text",
    "parse_time",
    "prepare",
    "utcnow",
]

# --- text -----------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "p div section article header footer aside main nav h1 h2 h3 h4 h5 h6 blockquote pre "
    "figure figcaption form fieldset address dl dt dd hr table thead tbody tfoot ul ol".split()
)
_LINE_TAGS = frozenset({"li", "tr", "br"})
_CELL_TAGS = frozenset({"td", "th"})
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "iframe", "svg"})
_PARA, _LINE = "\x00P", "\x00L"
_MARKS = re.compile("(?:\x00[PL])+")
# A NUL that does not start a marker: one search, where counting the NULs and each
# marker took three passes over the text.
_NOT_A_MARKER = re.compile("\x00(?![PL])")
_SPACES = re.compile(r"[^\S\n]+")
_INVISIBLE = re.compile("[\u200b\ufeff]")
_MANY_BREAKS = re.compile(r"\n{3,}")


def normalize_text(text: str | None) -> str:
    """NFC, one space for any run of spaces, no space at a line's ends, at most one blank line."""
    if not text:
        return ""
    if "\x00" in text:  # never text, and PostgreSQL's text type cannot hold it
        text = text.replace("\x00", "")
        if not text:
            return ""
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    # isprintable() is False for every whitespace but " " and for invisible characters.
    if text.isprintable():  # one line: titles, tags, names
        if "  " in text or text[0] == " " or text[-1] == " ":
            return _SPACES.sub(" ", text).strip()
        return text
    if text.replace("\n", "").isprintable() and not (
        text[0] in " \n"
        or text[-1] in " \n"
        or "  " in text
        or " \n" in text
        or "\n " in text
        or "\n\n\n" in text
    ):
        return text  # already tidy paragraphs
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\u200b" in text or "\ufeff" in text:
        text = _INVISIBLE.sub("", text)
    # Each line's runs of spaces as one space, none at its ends (str.split's whitespace
    # is the patterns' \s): a pattern over the whole text cost three times as much.
    text = "\n".join([" ".join(line.split()) for line in text.split("\n")])
    if "\n\n\n" in text:
        text = _MANY_BREAKS.sub("\n\n", text)
    return text.strip()


_PARSERS = threading.local()


def html_parser(**options: bool | str) -> etree.HTMLParser:
    """This thread's lxml HTML parser with these options (html_to_text's has none; Gate's
    article pages have their own). Plain lxml elements, not lxml.html's: its parser looks
    up a Python class for every element a walk touches, which cost as much as the walk.
    One per thread and options, not one per text: lxml makes a parser's libxml2 context
    at its first document, which cost more than parsing a short body, and a parser
    takes one document at a time."""
    parsers: dict[tuple[tuple[str, bool | str], ...], etree.HTMLParser] | None
    parsers = getattr(_PARSERS, "by_options", None)
    if parsers is None:
        parsers = _PARSERS.by_options = {}
    key = tuple(sorted(options.items()))
    parser = parsers.get(key)
    if parser is None:
        parser = parsers[key] = etree.HTMLParser(**options)
    return parser


def html_to_text(markup: str | None) -> str:
    """Readable text of an HTML fragment: paragraphs split by a blank line, list items and
    table rows on their own lines (cells joined by " | "), entities decoded."""
    if not markup or not markup.strip():
        return ""
    try:
        try:
            parts = html.fragments_fromstring(markup, parser=html_parser())
        except AssertionError:  # lxml.html asserts one <body>: a page with none, or two
            parts = _bodies(markup)
    except (etree.ParserError, ValueError):
        return normalize_text(markup)
    chunks: list[str] = []
    for part in parts:  # a leading text, then elements
        if isinstance(part, str):
            chunks.append(part)
        else:
            _walk(part, chunks)
    return _join_chunks(chunks)


def _bodies(markup: str) -> list[str | etree._Element]:
    """What fragments_fromstring gives of one body, for markup that parses to none
    ("<html></html>") or to several ("...</body><body>..."): each body's leading text and
    its elements, the bodies in order."""
    root = etree.fromstring(markup, parser=html_parser())
    parts: list[str | etree._Element] = []
    for body in root.iter("body") if root is not None else ():
        if body.text:
            parts.append(body.text)
        parts.extend(body)
    return parts


# The break marker of each tag that starts and ends one (a <br> only starts one).
_MARKERS = dict.fromkeys(_BLOCK_TAGS, _PARA) | dict.fromkeys(_LINE_TAGS, _LINE)


def _walk(el: etree._Element, out: list[str], number: int = 0) -> None:
    """Append the texts and break markers of `el` and what it holds; `number` is the
    place of `el` among its parent's children (from 1) when the parent is an <ol>."""
    tag = el.tag
    # Of a comment or a processing instruction (tag not a str) only the tail is text.
    if type(tag) is not str or tag in _SKIP_TAGS:
        tail = el.tail
        if tail:
            out.append(tail)
        return
    marker = _MARKERS.get(tag)
    if marker:
        out.append(marker)
        if tag == "li":
            out.append(f"{number}. " if number else "- ")
    elif tag in _CELL_TAGS and el.getprevious() is not None:
        out.append(" | ")
    text = el.text
    if text:
        out.append(text)
    # Most elements have no children: len() says so without the iterator a loop over
    # them makes, which cost a quarter of the walk.
    if len(el):
        numbered = tag == "ol"
        for position, child in enumerate(el, 1):
            _walk(child, out, position if numbered else 0)
    if marker and tag != "br":
        out.append(marker)
    tail = el.tail
    if tail:
        out.append(tail)


def _join_chunks(chunks: list[str]) -> str:
    """The text of a walk: each run of markers between two texts is one break, a blank
    line if a paragraph mark is among them, else a newline; none before the first text
    or after the last. lxml never gives a text with NUL in it (it reads U+FFFD), so no
    text can hold a marker.

    What normalize_text does to the joined text, done to each text alone: its lines
    are the texts (lxml gives no carriage return), and the breaks that meet around a
    text of spaces only add up (two or more newlines are a blank line). Split at the
    markers' NUL, each text is read once: a pattern with a function per run, then
    normalize_text's pass over every line again, cost several times as much."""
    # Source newlines inside a paragraph are layout, not breaks.
    text = "".join(chunks).replace("\n", " ")
    if "\r" in text or _NOT_A_MARKER.search(text):
        # Not a marker, or a line break of its own (never from lxml): the patterns' way.
        return normalize_text(_MARKS.sub(_break, text).strip("\n"))
    if (
        "\u200b" not in text
        and "\ufeff" not in text
        and (text.isascii() or unicodedata.is_normalized("NFC", text))
    ):
        return _plain_lines(text)
    pieces = text.split("\x00")
    lines: list[str] = []
    first = _line(pieces[0])
    if first:
        lines.append(first)
    gap = 0  # newlines since the last text that is not empty
    run = ""  # the kinds of the markers since the last text: "" none, "L" lines, "P" a paragraph
    for piece in pieces[1:]:
        if piece[0] == "P" or not run:
            run = piece[0]
        if len(piece) > 1:
            gap += 2 if run == "P" else 1
            run = ""
            line = _line(piece[1:])
            if line:
                if lines:
                    lines.append("\n" if gap == 1 else "\n\n")
                lines.append(line)
                gap = 0
    return "".join(lines)


# A run of markers with only spaces between them (re's \s is str.split's whitespace).
_RUNS = re.compile("(\x00[PL](?:\\s*\x00[PL])*)")


def _plain_lines(text: str) -> str:
    """_join_chunks of a text that is NFC and holds no invisible character. So is each
    of its texts (a part of an NFC text is NFC: what could compose in it is in the whole
    text too), and _line is str.split's spaces alone. A text of spaces only between two
    markers makes the next break a blank line (its newline adds to the next text's), as
    a paragraph mark does: so each run of markers and such texts is one break, a newline
    if it is line marks alone, else a blank line, and the texts between runs are never
    blank. Split at the runs, the texts are read by str.split (where they are not tidy
    already) and the runs by strip, not one by one in a loop of Python."""
    parts = _RUNS.split(text)  # text, run, text, ..., run, text
    # Each text as it is where str.split's spaces leave it so (its only space is " ",
    # as isprintable() is False for every other, never two together or at its ends),
    # each run as its break, in place: the joined parts are the text, with no list of
    # lines and breaks zipped together again in a loop of Python.
    parts[::2] = [
        part
        if part.isprintable() and "  " not in part and part[:1] != " " and part[-1:] != " "
        else " ".join(part.split())
        for part in parts[::2]
    ]
    parts[1::2] = ["\n\n" if run.strip("\x00L") else "\n" for run in parts[1::2]]
    if not parts[-1]:  # no break after the last text
        del parts[-2:]
    if parts and not parts[0]:  # nor before the first
        del parts[:2]
    return "".join(parts)


def _line(text: str) -> str:
    """One line as normalize_text leaves it: NFC, no invisible characters, each run of
    spaces one space, none at its ends."""
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if "\u200b" in text or "\ufeff" in text:
        text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


def _break(run: re.Match[str]) -> str:
    return "\n\n" if _PARA in run[0] else "\n"


def clean_title(title: str | None) -> str | None:
    """A title as a reader sees it: entities and tags gone, one line, NFC."""
    if title is None:
        return None
    if "<" in title or "&" in title:
        title = html_to_text(title)
    title = normalize_text(title.replace("\n", " "))
    return title or None


# --- time -----------------------------------------------------------------------------------

_PAREN_OFFSET = re.compile(r"\(\s*(?:UTC|GMT)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\s*\)", re.I)
_PAREN_UTC = re.compile(r"\(\s*(?:UTC|GMT)\s*\)", re.I)
_DIGITS = re.compile(r"^\s*\d+(\.\d+)?\s*$")
# 10^11 seconds is in the year 5138; below that a number is seconds, above it milliseconds.
_MS_THRESHOLD = 100_000_000_000
# Below 10^15 a whole number of milliseconds survives parse_time's float arithmetic
# (n / 1000 * 1000 is within 0.5 of n), so its integer reading gives the same time.
_WHOLE_EXACT = 10**15
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # Unix time 0, as every source's epoch fields count


class TimeParseError(ValueError):
    """A value that is not a time annals can read."""


def parse_time(value: object, *, default_tz: timezone = UTC) -> datetime:
    """Parse a source's time into an aware UTC datetime, milliseconds kept.

    Accepts unix seconds or milliseconds (int, float or digit string), ISO-8601,
    "2025-12-16 10:36:50 UTC" and "2026-09-29 10:53 (UTC+8)". A time with no zone
    is read in `default_tz`, the zone the source documents for it.
    """
    if type(value) is int or (type(value) is str and value.isdigit() and value.isascii()):
        # Unix seconds or milliseconds as a whole number (every source's epoch field):
        # integer arithmetic gives what the float path below does, already UTC and
        # to the millisecond, without the float, the pattern and the conversions.
        whole = int(value)
        if 0 < whole < _WHOLE_EXACT:
            try:
                return EPOCH + timedelta(
                    milliseconds=whole if whole >= _MS_THRESHOLD else whole * 1000
                )
            except OverflowError as exc:
                raise TimeParseError(f"time out of range: {value!r}") from exc
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, bool) or value is None:
        raise TimeParseError(f"not a time: {value!r}")
    elif isinstance(value, int | float) or (isinstance(value, str) and _DIGITS.match(value)):
        number = float(value)
        if number <= 0:
            raise TimeParseError(f"not a time: {value!r}")
        seconds = number / 1000 if number >= _MS_THRESHOLD else number
        try:
            dt = datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=round(seconds * 1000))
        except OverflowError as exc:
            raise TimeParseError(f"time out of range: {value!r}") from exc
    elif isinstance(value, str):
        dt = _parse_time_text(value)
    else:
        raise TimeParseError(f"not a time: {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=default_tz)
    dt = dt.astimezone(UTC)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def _parse_time_text(text: str) -> datetime:
    text = text.strip()
    if not text:
        raise TimeParseError("empty time")
    match = _PAREN_OFFSET.search(text)
    if match:
        sign, hours, minutes = match.groups()
        text = f"{text[: match.start()]} {sign}{int(hours):02d}:{minutes or '00'}"
    text = _PAREN_UTC.sub(" UTC", text)
    try:
        return dateparser.parse(text, tzinfos={"UTC": UTC, "GMT": UTC})
    except (ValueError, OverflowError) as exc:
        raise TimeParseError(f"not a time: {text!r}") from exc


@functools.lru_cache(maxsize=8192)
def format_time(dt: datetime) -> str:
    """The stored form of a time: fixed-width ISO-8601 UTC with milliseconds,
    '2026-05-22T07:56:11.000Z', so string order is time order."""
    if dt.tzinfo is not UTC:
        if dt.tzinfo is None:
            raise ValueError(f"naive datetime {dt!r}: annals stores aware UTC times only")
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="milliseconds")[:23] + "Z"


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --- content hash ---------------------------------------------------------------------------


def content_hash(
    title: str | None,
    body_text: str | None,
    category: str | None,
    tags: Iterable[str],
    author: str | None,
    published_at: datetime | None,
) -> str:
    """sha256 over what a reader sees. Counters and fetch times never enter it."""
    payload = [
        title or "",
        body_text or "",
        category or "",
        sorted(set(tags)),
        author or "",
        format_time(published_at) if published_at else "",
    ]
    return hashlib.sha256(orjson.dumps(payload)).hexdigest()


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Tags without '#', NFC, first occurrence kept."""
    seen: dict[str, None] = {}
    for raw in tags:
        tag = normalize_text(str(raw)).lstrip("#＃").strip()
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


# --- a record as the store sees it -----------------------------------------------------------


@dataclass
class Prepared:
    """A record with its reader-visible content normalized and hashed.

    Its symbols and event type are derived when first asked for: the store asks only
    for a new version's, so content it already holds (most of a re-crawl) is hashed and
    compared, never scanned for tickers."""

    record: Record
    identity: Identity
    title: str | None
    body_text: str
    tags: list[str]
    category: str | None
    author: str | None
    content_hash: str
    seen_at: datetime

    @functools.cached_property
    def symbols(self) -> list[str]:
        # Derived from the stored fields only, as `annals rederive` does later.
        if self.record.symbols is not None:
            return list(dict.fromkeys(self.record.symbols))
        return derive_symbols(
            self.record.source, self.title, self.body_text, self.record.body_html, self.tags
        )

    @functools.cached_property
    def event_type(self) -> str:
        return derive_event(self.title, self.category, self.body_text)


def prepare(record: Record, now: datetime | None = None) -> Prepared:
    """Normalize a record and compute its content hash (no database)."""
    title = clean_title(record.title)
    if record.body_text is not None:
        body_text = normalize_text(record.body_text)
    else:
        body_text = html_to_text(record.body_html)
    tags = clean_tags(record.tags)
    category = normalize_text(record.category) or None
    author = normalize_text(record.author) or None
    return Prepared(
        record=record,
        identity=record.identity,
        title=title,
        body_text=body_text,
        tags=tags,
        category=category,
        author=author,
        content_hash=content_hash(title, body_text, category, tags, author, record.published_at),
        seen_at=record.seen_at
        or (record.raw.fetched_at if record.raw else None)
        or now
        or utcnow(),
    )
