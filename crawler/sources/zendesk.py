"""Announcements kept in a Zendesk help center (XT, Deepcoin): the parser they share.

An exchange that publishes its announcements in a Zendesk help center is read through
Zendesk's documented Help Center API, not its HTML pages. Its module (crawler.sources.xt,
deepcoin) holds only its facts, a `HelpCenter`; `help_center` makes the `Source`.

Endpoint: `GET https://<host>/api/v2/help_center/<locale>/categories/<category>/articles.json
?sort_by=created_at&sort_order=desc&page=<n>&per_page=100` (Zendesk's "List Articles";
anonymous callers get the public articles and must name the locale, which is the path's
language segment). Without `sort_by` Zendesk orders by `position`, the help center's
manual order, so the order is asked for: newest first by creation, whatever an article's
pinning (`promoted`) or position. `per_page` is at most 100.

Paging: by number. The answer is Zendesk's own object, no envelope (`Bare`):
`{count, next_page, page, page_count, per_page, previous_page, articles, sort_by,
sort_order}`; `next_page` is a full URL, null on the last page, and a page past the last
answers an empty `articles`. A walk asks `page + 1` while `next_page` is set (the pages
it asks are the ones `next_page` names, on the crawl's own base URL).

Identity: the article `id` (an integer, kept as its digits). `html_url`, the public page,
is the record's URL: its slug follows the title, so it is never the identity.
Time: `created_at` (ISO-8601 UTC, whole seconds) is the publication; `edited_at`, which
moves when the title or body is edited, is the version's `updated_at`. `updated_at` is
not used: it moves on any change, votes included. Times written inside bodies ("10:00
(UTC)", "(UTC+8)", "(HKT)") are text, never the publication time.
Body: `body`, HTML, in the list itself (no detail request): sanitized by the allow-list
of crawler.sources.nodetree; `body_text` is its text; the links it keeps are the record's
`links`. Title: `title`, entities decoded. Tags: `label_names`. Category: the name of
the article's section, where the answer sideloads its sections (`include=sections`, asked
on every page; an answer without them leaves it empty). Extra: `section_id` (the
article's section in the category), `author_id` and `locale`, which an unchanged article
keeps. Counters and placement (`vote_sum`, `vote_count`, `position`, `promoted`,
`updated_at`) are stored nowhere: a vote gives no version.

Errors: Zendesk's rate limit is HTTP 429 (`text/plain` "Number of allowed API requests per
minute exceeded", `Retry-After` in seconds), which BlockMiddleware retries after the
host's backoff; an unknown path is a 404 (`{"error": "RecordNotFound"}`), an HTTP error.
An answer that is not the list object (bad JSON, no `articles` list, an `error` object)
raises `ParseError`. A single article without an id, title or readable `created_at`, or
with a body that is not readable HTML, is left out and listed in `ListPage.unusable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from archive.normalize import clean_title
from archive.records import Link, ParseError, Record
from crawler.sources import nodetree
from crawler.sources.contract import Bare, Items, PageNumbers, Source
from crawler.sources.parsing import (
    UnusableItemError,
    first_time,
    int_or_none,
    need,
    text_or_none,
    time_or_none,
)

PAGES = PageNumbers("page", size="per_page")
PAGE_SIZE = 100  # the largest `per_page` Zendesk documents (its default is 30)
# Zendesk budgets API requests per minute per account (200 on the smallest plan, up to
# 700), shared with every other caller of the exchange's help center; a crawl asks one or
# two pages, so one request a second stays far inside it.
DOWNLOAD_DELAY = 1.0


@dataclass(frozen=True)
class HelpCenter:
    """One exchange's help center: what differs between them is data."""

    source: str  # documents.source, e.g. "xt"
    spider: str  # e.g. "xt_announcements"
    host: str  # e.g. "xtsupport.zendesk.com"
    category: str  # the id of the category that holds the announcements
    locales: dict[str, str]  # annals' languages -> Zendesk locales; the first is the default


def help_center(center: HelpCenter) -> Source:
    """The `Source` of one help center's announcement category."""

    def record(item: Mapping[str, Any], language: str) -> Record:
        return _record(source, item, language)

    source = Source(
        source=center.source,
        spider=center.spider,
        hosts=(center.host,),
        endpoint=(
            f"https://{center.host}/api/v2/help_center/{{language}}"
            f"/categories/{center.category}/articles.json"
        ),
        paging=PAGES,
        page_size=PAGE_SIZE,
        page_sizes=frozenset(range(1, PAGE_SIZE + 1)),
        envelope=Bare(),
        items=_items,
        record=record,
        categories={},  # one category, in the endpoint's path
        category_param="",
        languages=dict(center.locales),
        language_in="path",
        language_key="locale",
        headers_sent={"Accept": "application/json"},
        # Publication order, not the help center's manual order (Zendesk's default);
        # the articles' sections sideloaded, for their names (List Articles' sideloads).
        fixed_query={"sort_by": "created_at", "sort_order": "desc", "include": "sections"},
        download_delay=DOWNLOAD_DELAY,
        article_url=f"https://{center.host}/hc/{{locale}}/articles/{{id}}",
    )
    return source


def _items(data: Any, url: str) -> Items:
    """A page's articles, and whether `next_page` names a page after it."""
    if not isinstance(data, Mapping) or not isinstance(data.get("articles"), list):
        error = data.get("error") if isinstance(data, Mapping) else None
        if error:  # {"error": "RecordNotFound", "description": "Not found"}, or an object
            said = " ".join(str(part) for part in (error, data.get("description")) if part)
            raise ParseError(url, f"Zendesk error answer: {said}")
        raise ParseError(url, "answer has no articles list")
    articles: list[Any] = data["articles"]
    names = _section_names(data.get("sections"))
    if names:  # each article carries its section's name to its record
        articles = [
            {**a, SECTION_NAME: names.get(str(a.get("section_id")))}
            if isinstance(a, Mapping)
            else a
            for a in articles
        ]
    if "next_page" in data:
        more = bool(articles) and bool(data["next_page"])
    else:  # not in the documented shape: fall back on the count of pages
        pages = int_or_none(data.get("page_count"))
        more = PAGES.has_more(url, len(articles), PAGE_SIZE, pages=pages)
    return Items(articles, more)


SECTION_NAME = "annals_section_name"  # the sideloaded section's name, on its article


def _section_names(sections: Any) -> dict[str, str]:
    """Section id -> name, from an answer's sideloaded `sections` (absent: none)."""
    if not isinstance(sections, list):
        return {}
    named = (s for s in sections if isinstance(s, Mapping))
    return {str(s.get("id")): name for s in named if (name := text_or_none(s.get("name")))}


def _record(source: Source, item: Mapping[str, Any], language: str) -> Record:
    article = _article_id(item)
    title = clean_title(need(item, "title", article))
    if not title:
        raise UnusableItemError(f"{article}: no title")
    published_at, _ = first_time(item, ("created_at",), article)
    url = text_or_none(item.get("html_url")) or source.article_url.format(
        locale=source.api_language(language), id=article
    )
    body_html, body_text, hrefs = nodetree.item_body(item.get("body"), url, article)
    extra: dict[str, Any] = {
        name: text
        for name in ("section_id", "author_id", "locale")
        if (text := text_or_none(item.get(name))) is not None
    }
    return source.announcement(
        language,
        article,
        url,
        title=title,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        updated_at=time_or_none(item.get("edited_at")),
        category=text_or_none(item.get(SECTION_NAME)),
        tags=_labels(item.get("label_names")),
        extra=extra,
        links=[Link(urljoin(url, href)) for href in hrefs],
    )


def _article_id(item: Mapping[str, Any]) -> str:
    """The article's id as its digits; Zendesk's ids are integers."""
    value = item.get("id")
    text = str(value).strip() if isinstance(value, int | str) else ""
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()):
        raise UnusableItemError(f"no article id ({value!r})")
    return str(int(text))


def _labels(value: Any) -> list[str]:
    values = value if isinstance(value, list) else []
    return [label for label in (text_or_none(v) for v in values) if label]
