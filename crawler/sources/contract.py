"""The contract between a source and the spiders that walk it.

Every source is one frozen value. Its `Facts` (which source and spider it is, the hosts
it talks to, its block waits) name its spider (AnnalsSpider's `facts`). A source read
from its website's pages is a `Site` (Gate's, in crawler.sources.gate, adds its list
endpoint and sitemap). An exchange with a JSON announcement list is a `Source`, walked by
one navigator (crawler.spiders.api): its facts as data (endpoint, paging, language,
envelope, categories, politeness) and the little behaviour that truly differs as two
functions, `items` (where an answer keeps its list, and whether more pages follow) and
`record` (one item as a Record). Building URLs and headers, checking the envelope,
reading the items and dating the next page are written here once, for every source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypedDict, Unpack
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from archive.normalize import EPOCH
from archive.records import Link, ParseError, Record
from crawler.blocks import ThrottleSign
from crawler.sources.parsing import (
    Category,
    EnvelopeError,
    ListPage,
    UnusableItemError,
    int_or_none,
    load_json,
    read_items,
    same_code,
)

QueryPart = Literal["language", "category", "paging"]  # the parts of a list request's query


class Checks(Protocol):
    """What a source's answers are checked with before their items are read."""

    def check(self, data: Any, url: str) -> None:
        """ParseError when the answer is not the source's shape; EnvelopeError when it
        says failure (rate_limited when it means "slow down")."""


@dataclass(frozen=True)
class Bare:
    """Answers with no envelope (a bare list, or the list's own object): nothing to check
    here; the source's `items` refuses a wrong shape."""

    def check(self, data: Any, url: str) -> None:
        return None


@dataclass(frozen=True)
class Envelope:
    """Where an answer says whether it succeeded: a code field, and its value on success."""

    ok: str  # the code of success ("0", "00000", "200000")
    code: str = "code"  # the field holding the code
    messages: tuple[str, ...] = ("msg",)  # fields holding the failure message, first set wins
    rate_limit_codes: frozenset[str] = frozenset()  # codes that mean "slow down and retry"
    # A boolean field that may say failure too, and may stand in for the code (Binance).
    success: str | None = None

    def check(self, data: Any, url: str) -> None:
        """ParseError when the answer is no envelope; EnvelopeError when it says failure."""
        fields = [self.code] + ([self.success] if self.success else [])
        if not isinstance(data, Mapping) or not any(f in data for f in fields):
            raise ParseError(url, f"answer has no {' or '.join(fields)}")
        code = data.get(self.code)
        failed = self.success is not None and data.get(self.success) is False
        if failed or (code is not None and not same_code(code, self.ok)):
            message = next((str(data[m]) for m in self.messages if data.get(m)), "")
            limited = any(same_code(code, c) for c in self.rate_limit_codes)
            raise EnvelopeError(url, str(code), message, rate_limited=limited)


@dataclass(frozen=True)
class PageNumbers:
    """Pages by number, from 1: `number` is its query parameter, `size` the page size's
    (None: the API has a fixed size and takes none)."""

    number: str
    size: str | None = None

    def query(self, page: int, size: int, window: Mapping[str, int]) -> dict[str, int]:
        if page < 1:
            raise ValueError(f"pages start at 1, not {page} (the API numbers them from 1)")
        if window:
            raise ValueError(f"this source pages by number, not by time window {dict(window)}")
        return {self.number: page} | ({self.size: size} if self.size else {})

    def has_more(
        self, url: str, count: int, size: int, *, total: int | None = None, pages: int | None = None
    ) -> bool:
        """Whether the page after `url`, which held `count` items, may hold more: up to the
        answer's count of `pages` or of `total` items where it gives one, else while pages
        come full (`size`: the source's own, when the URL names none)."""
        query = parse_qs(urlsplit(url).query)
        page = int_or_none((query.get(self.number) or ["1"])[0]) or 1
        if self.size:
            size = int_or_none((query.get(self.size) or [""])[0]) or size
        if not count:
            return False
        if pages is not None:
            return page < pages
        if total is not None:
            return (page - 1) * size + count < total
        return count >= size


@dataclass(frozen=True)
class TimeWindows:
    """Newest first within a window of times in ms, `start` and `end` its query
    parameters: the API has no page numbers, a walk moves the window back (`next_window`).

    The next window ends at the time of the page's last item, inclusive, so an
    announcement sharing that millisecond is not lost; the page after may repeat items
    (harmless to the store). The last item, not the oldest: an old announcement pinned
    above the newest ones would move the window past every item listed under it. When a
    window brings nothing older than its own end, the end steps back one millisecond so
    the walk always moves; an empty page ends it.
    """

    start: str | None  # None: the API takes only an end, a cursor (Deribit, Bitfinex)
    end: str
    size: str | None = None  # the query parameter of the page size, where it takes one

    def query(self, page: int, size: int, window: Mapping[str, int]) -> dict[str, int]:
        if page != 1:
            raise ValueError("this source pages by time window: use next_window, not page numbers")
        names = {"end_time": self.end} | ({"start_time": self.start} if self.start else {})
        unknown = set(window) - set(names)
        if unknown:
            raise ValueError(f"a time window here has {', '.join(names)}, not {unknown}")
        sized = {self.size: size} if self.size and size else {}
        return {names[key]: window[key] for key in names if window.get(key) is not None} | sized

    @staticmethod
    def next_window(
        page: ListPage, window: Mapping[str, int] | None = None
    ) -> dict[str, int] | None:
        """The window after `page` (which `window` gave; {} or None for the first), or None
        when the walk is over. A `start_time` is carried over."""
        times = [r.published_at for r in page.records if r.published_at is not None]
        if not times:
            return None
        end = (times[-1] - EPOCH) // timedelta(milliseconds=1)
        previous_end = (window or {}).get("end_time")
        if previous_end is not None and end >= previous_end:
            end = previous_end - 1
        following = {"end_time": end}
        start = (window or {}).get("start_time")
        if start is not None:
            if end < start:
                return None
            following["start_time"] = start
        return following


@dataclass(frozen=True)
class OnePage:
    """One answer holds the whole list (Crypto.com, Bithumb): no page numbers; `size` is
    the query parameter of how many items it answers, where it takes one."""

    size: str | None = None

    def query(self, page: int, size: int, window: Mapping[str, int]) -> dict[str, int]:
        if page != 1 or window:
            raise ValueError("this source answers its whole list on one page")
        return {self.size: size} if self.size and size else {}


Paging = PageNumbers | TimeWindows | OnePage


@dataclass(frozen=True)
class Items:
    """What a source's `items` reads from a list answer: its items, and whether a further
    page may hold more (the navigator also stops on an empty page)."""

    items: list[Any]
    has_more: bool


class Fields(TypedDict, total=False):
    """The Record fields a source's `record` sets besides identity, language and URL."""

    title: str
    body_html: str | None
    body_text: str | None
    published_at: datetime
    updated_at: datetime | None
    category: str | None
    event_type: str | None
    tags: list[str]
    extra: dict[str, Any]
    links: list[Link]


@dataclass(frozen=True)
class Detail:
    """An article endpoint, for sources whose list lacks the body (Binance): `url` with
    the article's id in the query parameter `param`, or in the URL's path where it holds
    `{id}` (and `{language}`, the API's language); `parse` turns the envelope's data into
    the record to archive, given the list record that led there (None when reparsed
    alone)."""

    url: str
    param: str | None
    parse: Callable[[Any, str, str, Record | None], Record]


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What annals knows of every source, however it lists its announcements."""

    source: str  # documents.source, e.g. "binance"
    spider: str  # the spider's name, e.g. "binance_announcements"
    hosts: tuple[str, ...]  # hosts the spider talks to; base_url replaces them in tests
    # Least wait before retrying a block of this kind (crawler.blocks), as documented.
    block_waits: Mapping[str, float] = field(default_factory=dict)
    # What the source answers a burst with besides a 429 (crawler.blocks.classify): a
    # redirect (never followed) or an empty answer, each a block, never "nothing listed".
    throttle_signs: frozenset[ThrottleSign] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Site(Facts):
    """A source read from its website's pages: every URL it stores is on `origin`,
    whichever of its hosts served the page."""

    origin: str  # e.g. "https://www.gate.com"


@dataclass(frozen=True, kw_only=True)
class Source(Facts):
    """Everything annals knows about one exchange's JSON announcement list."""

    # Absolute URL of the list endpoint, without query. It may hold `{language}` (the
    # API's language, where `language_in` is "path") and `{category}` (the category
    # asked, then not sent in the query).
    endpoint: str
    paging: Paging
    envelope: Checks
    items: Callable[[Any, str], Items]  # (envelope data, URL) -> the answer's items
    # (item, language) -> its record, or UnusableItemError saying what it lacks.
    record: Callable[[Mapping[str, Any], str], Record]
    # The size production asks: the largest the API documents (0: it takes none).
    page_size: int
    categories: dict[str, Category]  # by Category.key
    category_param: str  # the query parameter of a category filter
    # annals' languages -> the API's; sent in the header or query parameter `language_key`.
    languages: dict[str, str]
    language_in: Literal["header", "query", "path"]
    language_key: str  # the header or query parameter; unused where the path holds it
    # Every size a list request may ask (`-a page_size=N`); empty: the API takes no size.
    page_sizes: frozenset[int] = frozenset()
    category_default: str | None = None  # the filter asked when none is (KuCoin's catch-all)
    # True: the API has no unfiltered list, so a crawl walks every category unless told
    # which (HTX); False: it walks the unfiltered list.
    walk_categories: bool = False
    headers_sent: Mapping[str, str] = field(default_factory=dict)  # on every request
    # HTTP statuses whose answers are the source's to read, not errors (Kraken's 400
    # past the last page); `items` says what they hold.
    answer_statuses: frozenset[int] = frozenset()
    fixed_query: Mapping[str, str] = field(default_factory=dict)  # sent before the rest
    # Where the query's parts go, fixed_query first; the default suits most APIs.
    query_order: tuple[QueryPart, ...] = ("language", "category", "paging")
    detail: Detail | None = None
    # The `extra` key where a list record keeps when the item last changed, where the
    # list says so and is ordered by it (Upbit's listed_at, moved by every edit or
    # re-pin): a page then reaches back to its last item's change, not its publication,
    # and a known item's detail is asked again only when the value (or the title) differs
    # from the archive's, instead of while the item is young. None: neither.
    changed_key: str | None = None
    # Politeness from the exchange's documented limits.
    download_delay: float = 0.5
    concurrency: int = 1
    article_url: str = ""  # public article URL template, e.g. ".../announcement/{code}"

    def check_page_size(self, size: int | None) -> int:
        """`size` if the API takes it, the production size when None; else ValueError."""
        if size is None:
            return self.page_size
        if size not in self.page_sizes:
            allowed = ", ".join(map(str, sorted(self.page_sizes))) or "none (it has no size)"
            raise ValueError(f"{self.source} takes page sizes {allowed}, not {size}")
        return size

    def api_language(self, language: str) -> str:
        """The exchange's own name for one of annals' languages ("zh" -> "zh-CN")."""
        try:
            return self.languages[language]
        except KeyError:
            raise ValueError(f"{self.source} has no {language!r} announcements") from None

    def language_of(self, url: str) -> str:
        """annals' language of a list or detail URL: read from the query or the path where
        the API takes it there; where a header chooses it, which a stored answer does not
        keep, the first language."""
        first = next(iter(self.languages))
        if self.language_in == "header":
            return first
        if self.language_in == "path":
            given = urlsplit(url).path.split("/")
        else:
            given = (parse_qs(urlsplit(url).query).get(self.language_key) or [""])[:1]
        return next((ours for ours, theirs in self.languages.items() if theirs in given), first)

    def headers(self, language: str = "en") -> dict[str, str]:
        """Headers a request needs: the source's own, and the language where the API
        picks it by a header."""
        api = self.api_language(language)
        chosen = {self.language_key: api} if self.language_in == "header" else {}
        return dict(self.headers_sent) | chosen

    def list_url(
        self,
        page: int = 1,
        *,
        category: str | None = None,
        language: str = "en",
        size: int | None = None,
        **window: int,
    ) -> str:
        """The list request of page `page` (or the time `window`: start_time, end_time) of
        one category (None: the unfiltered list), in `language`, of `size` items (default:
        the production size). A header-chosen language is not in the URL: send `headers`."""
        api = self.api_language(language)
        filtered = category or self.category_default
        in_path = "{category}" in self.endpoint
        parts: dict[QueryPart, Mapping[str, str | int]] = {
            "language": {self.language_key: api} if self.language_in == "query" else {},
            "category": {self.category_param: filtered} if filtered and not in_path else {},
            "paging": self.paging.query(page, self.check_page_size(size), window),
        }
        query: dict[str, str | int] = dict(self.fixed_query)
        for part in self.query_order:
            query |= parts[part]
        endpoint = _fill(self.endpoint, language=api, category=filtered or "")
        return f"{endpoint}?{urlencode(query)}" if query else endpoint

    def detail_url(self, external_id: str, language: str = "en") -> str:
        """The detail request of one article (sources with a `detail` endpoint only)."""
        if self.detail is None:
            raise ValueError(f"{self.source} has no detail endpoint")
        url = _fill(self.detail.url, id=external_id, language=self.api_language(language))
        if self.detail.param is None:
            return url
        return f"{url}?{urlencode({self.detail.param: external_id})}"

    def is_detail(self, url: str) -> bool:
        if self.detail is None:
            return False
        return _path_pattern(self.detail.url).fullmatch(urlsplit(url).path) is not None

    def parse_list(self, body: bytes | str, url: str, language: str = "en") -> ListPage:
        """One list answer: a record per usable item, newest first as given, and what the
        others lacked (ParseError when no item is usable or the shape is wrong)."""
        data = load_json(body, url)
        self.envelope.check(data, url)
        page = self.items(data, url)
        records, unusable = read_items(
            page.items, url, self.source, lambda item: self.record(_object(item), language)
        )
        return ListPage(records=records, has_more=page.has_more, unusable=unusable)

    def parse_detail(
        self, body: bytes | str, url: str, language: str = "en", listed: Record | None = None
    ) -> Record:
        """The archived record of one article's detail answer."""
        if self.detail is None:
            raise ValueError(f"{self.source} has no detail endpoint")
        data = load_json(body, url)
        self.envelope.check(data, url)
        return self.detail.parse(data, url, language, listed)

    def announcement(
        self, language: str, external_id: str, url: str, **fields: Unpack[Fields]
    ) -> Record:
        """A Record of this source: the event type is the known category's, unless given."""
        if "event_type" not in fields:
            known = self.categories.get(fields.get("category") or "")
            fields["event_type"] = known.event_type if known else None
        return Record(
            source=self.source,
            kind="announcement",
            external_id=external_id,
            language=language,
            url=url,
            **fields,
        )


def _fill(template: str, **values: str) -> str:
    """`template` with its `{name}` parts replaced by `values`, each quoted as one path
    segment (a template without braces is returned as it is)."""
    if "{" not in template:
        return template
    return template.format(**{name: quote(value, safe="") for name, value in values.items()})


def _path_pattern(template: str) -> re.Pattern[str]:
    """The paths a URL template's path stands for: each `{name}` one segment."""
    parts = re.split(r"\{\w+\}", urlsplit(template).path)
    return re.compile("[^/]+".join(map(re.escape, parts)))


def _object(item: Any) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise UnusableItemError("not an object")
    return item
