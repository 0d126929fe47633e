"""The records every spider produces and the archive store consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

EVENT_TYPES = ("listing", "delisting", "maintenance", "promotion", "product", "news", "other")
KINDS = ("announcement", "post")


class ParseError(Exception):
    """The one error a parse function raises: this payload cannot give a whole record.

    The pipeline turns it into a quarantine row; it never stops a crawl.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.reason = reason


class Identity(NamedTuple):
    """What makes a document one document: (source, kind, external_id, language)."""

    source: str
    kind: str
    external_id: str
    language: str

    def ref(self) -> str:
        """The reference `annals history` and `annals diff` take."""
        return ":".join(self)


@dataclass(slots=True)
class RawResponse:
    """The bytes a record was parsed from, kept as a snapshot."""

    url: str
    status: int
    content_type: str | None
    body: bytes
    fetched_at: datetime | None = None


@dataclass(slots=True, frozen=True)
class Link:
    """A link in a document; the target fields are set when it points at a known document."""

    url: str
    target_source: str | None = None
    target_kind: str | None = None
    target_external_id: str | None = None


@dataclass(slots=True)
class Record:
    """One parsed announcement or post, as a spider hands it to the store.

    `event_type` and `symbols` are derived by the store from the fields it stores
    (`archive.symbols.derive`: title, body, HTML, tags, category), the same way
    `annals rederive` recomputes them later. Leave `symbols` None; a list given is
    stored as is (until a rederive). `event_type` is the parser's reading of the
    source's category and does not decide what is stored: the stored category does
    (tests/test_symbols.py checks that the two agree for every category a spider knows).
    `extra` holds source fields that are kept but never versioned on their own
    (view and like counters, raw category ids).
    """

    source: str
    kind: str
    external_id: str
    language: str
    url: str
    title: str | None = None
    body_html: str | None = None
    body_text: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    category: str | None = None
    event_type: str | None = None
    tags: list[str] = field(default_factory=list)
    symbols: list[str] | None = None
    author: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    raw: RawResponse | None = None
    seen_at: datetime | None = None

    @property
    def identity(self) -> Identity:
        return Identity(self.source, self.kind, str(self.external_id), self.language)


@dataclass(slots=True)
class Quarantined:
    """A fetched page that could not be parsed: kept with its error for `annals reparse`."""

    url: str
    spider: str
    error: str
    raw: RawResponse | None = None
    seen_at: datetime | None = None


@dataclass(slots=True)
class Removed:
    """A known document that now answers 404/410: it gets removed_at, nothing is deleted."""

    identity: Identity
    url: str
    seen_at: datetime | None = None


Item = Record | Quarantined | Removed
