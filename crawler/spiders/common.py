"""Types every source module shares: its data mapping, list pages, envelope errors.

Per-exchange facts (hosts, endpoints, page sizes, categories, rate limits) live in
one `ApiSource` value per exchange module, never in branches on a spider's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archive.records import Record


@dataclass(frozen=True)
class Category:
    """One of an exchange's announcement categories."""

    key: str  # the exchange's own key or id, as text ("48", "delistings")
    name: str  # its display name ("Delisting")
    event_type: str | None = None  # what it says about archive.records.EVENT_TYPES, if anything


@dataclass(frozen=True)
class ApiSource:
    """Everything annals knows about one exchange's announcement endpoint."""

    source: str  # documents.source, e.g. "binance"
    spider: str  # the spider's name, e.g. "binance_announcements"
    hosts: tuple[str, ...]  # hosts the spider talks to; base_url replaces them in tests
    list_url: str  # absolute URL of the list endpoint, without query
    page_size: int
    categories: dict[str, Category]  # by Category.key
    languages: dict[str, str] = field(default_factory=lambda: {"en": "en_US"})  # annals -> API
    detail_url: str | None = None  # for sources whose list lacks the body (Binance)
    # Politeness from the exchange's documented limits.
    download_delay: float = 0.5
    concurrency: int = 1
    rate_limit_codes: frozenset[str] = frozenset()  # envelope codes that mean "slow down"
    # Least wait before retrying a block of this kind (crawler.blocks), as documented.
    block_waits: dict[str, float] = field(default_factory=dict)
    article_url: str = ""  # public article URL template, e.g. ".../announcement/{code}"


@dataclass
class ListPage:
    """What one list answer holds."""

    records: list[Record]  # newest first, as the endpoint gives them
    has_more: bool  # a further page may hold more (the spider also stops on an empty page)
    total: int | None = None  # the endpoint's own total, when it gives one


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
