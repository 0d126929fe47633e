"""`annals crawl` and `annals demo`: the commands that need Scrapy, added to the CLI
through the "annals.commands" entry point."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from scrapy.crawler import AsyncCrawlerProcess, Crawler
from scrapy.settings import Settings
from scrapy.spiderloader import SpiderLoader

from archive import db as dbmod
from archive.cli import DbOption, Exit, archive_errors, fail
from crawler.context import run_context
from crawler.extensions import worst
from crawler.lock import LockHeldError, crawl_lock
from crawler.stopping import SignalStop

SUMMARY_COUNTERS = (
    "requests",
    "pages",
    "new_documents",
    "new_versions",
    "unchanged",
    "quarantined",
    "blocked",
)


def project_settings() -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    return settings


def spider_names(settings: Settings) -> list[str]:
    return sorted(SpiderLoader.from_settings(settings).list())


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise fail(f"{option} takes NAME=VALUE, not {value!r}", Exit.USAGE)
        pairs[name] = rest
    return pairs


def summary_line(name: str, status: str, run_id: int | None, counters: dict[str, Any]) -> str:
    parts = ", ".join(f"{counters.get(c, 0)} {c.replace('_', ' ')}" for c in SUMMARY_COUNTERS)
    run = f"run {run_id}" if run_id is not None else "no run recorded"
    return f"{name}: {status} ({run}): {parts}"


def run_spiders(
    names: list[str], settings: Settings, spider_args: dict[str, str]
) -> list[tuple[str, str, int | None, dict[str, Any]]]:
    """Run the spiders in this process; return (name, status, run id, counters) for each."""
    process = AsyncCrawlerProcess(settings)
    crawlers: list[tuple[str, Crawler]] = []
    for name in names:
        crawler = process.create_crawler(name)
        process.crawl(crawler, **spider_args)
        crawlers.append((name, crawler))
    # SIGINT/SIGTERM stop within ANNALS_STOP_GRACE seconds and record "interrupted".
    stopper = SignalStop(process, [c for _, c in crawlers], settings.getfloat("ANNALS_STOP_GRACE"))
    stopper.install()
    try:
        process.start(install_signal_handlers=False)
    finally:
        stopper.uninstall()
    results: list[tuple[str, str, int | None, dict[str, Any]]] = []
    for name, crawler in crawlers:
        context = None
        with contextlib.suppress(RuntimeError):  # a crawl that failed before its extensions
            context = run_context(crawler)
        if context is None or context.status is None:
            results.append((name, "failed", getattr(context, "run_id", None), {}))
        else:
            results.append((name, context.status, context.run_id, context.counters))
    return results


def exit_code(statuses: list[str]) -> Exit:
    """The exit code of the worst run (extensions.PRECEDENCE): 3 only when being blocked
    is the worst that happened, 1 for failed, interrupted or partial, 0 when all finished."""
    outcome = worst(statuses)
    if outcome == "finished":
        return Exit.OK
    return Exit.BLOCKED if outcome == "blocked" else Exit.FAILED


def crawl(
    spiders: Annotated[
        list[str] | None, typer.Argument(help="Spiders to run (see --list).", show_default=False)
    ] = None,
    db: DbOption = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Send every request to this origin (a local mirror)."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Walk every page, not only what is new.")
    ] = False,
    arg: Annotated[
        list[str] | None,
        typer.Option("-a", "--arg", help="NAME=VALUE for every spider, as `scrapy crawl -a`."),
    ] = None,
    setting: Annotated[
        list[str] | None, typer.Option("-s", "--set", help="A Scrapy setting, NAME=VALUE.")
    ] = None,
    all_spiders: Annotated[bool, typer.Option("--all", help="Run every spider.")] = False,
    list_spiders: Annotated[bool, typer.Option("--list", help="List the spiders.")] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Scrapy's log level on stderr.")
    ] = "WARNING",
) -> None:
    """Crawl sources into the archive, one process, one summary line per spider.

    Incremental by default: listings are read newest first and paging stops at the
    first page that brings nothing new. A lock beside the archive makes an
    overlapping run (cron) exit at once with code 4. Exit code 0 only when every
    spider finished without failure or block (3: blocked, 1: failed).

    Example:

        annals crawl gate_announcements gate_square --db annals.db -a lang=en,zh
    """
    settings = project_settings()
    names = spider_names(settings)
    if list_spiders:
        loader = SpiderLoader.from_settings(settings)
        for name in names:
            doc = (loader.load(name).__doc__ or "").strip().splitlines()
            typer.echo(f"{name:24} {doc[0] if doc else ''}")
        return
    wanted = names if all_spiders else list(spiders or [])
    if not wanted:
        raise fail("name the spiders to run, or --all (see --list)", Exit.USAGE)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise fail(f"unknown spider {', '.join(unknown)}; known: {', '.join(names)}", Exit.USAGE)
    spider_args = _pairs(arg, "-a")
    if base_url:
        spider_args["base_url"] = base_url
    if full:
        spider_args["full"] = "1"
    url = dbmod.resolve_url(db)
    for name, value in _pairs(setting, "-s").items():
        settings.set(name, value, priority="cmdline")
    settings.set("ANNALS_DATABASE_URL", url, priority="cmdline")
    settings.set("ANNALS_EXCLUSIVE", True, priority="cmdline")  # it holds the crawl lock
    settings.set("LOG_LEVEL", log_level.upper(), priority="cmdline")
    try:
        with archive_errors():
            dbmod.refuse_foreign(url)  # before the lock file is made beside someone's file
        with crawl_lock(url, settings), archive_errors():
            dbmod.open_archive(url, create=True).dispose()
            results = run_spiders(wanted, settings, spider_args)
    except LockHeldError as exc:
        raise fail(str(exc), Exit.LOCKED) from None
    for name, status, run_id, counters in results:
        typer.echo(summary_line(name, status, run_id, counters))
    code = exit_code([status for _, status, _, _ in results])
    if code:
        raise typer.Exit(int(code))


# The bundled mirrors (recorded page shapes) and the spiders that crawl each.
MIRRORS = Path(__file__).with_name("mirrors")
DEMO_SPIDERS = {
    "gate": ("gate_announcements", "gate_square"),
    "binance": ("binance_announcements",),
    "okx": ("okx_announcements",),
    "bybit": ("bybit_announcements",),
    "bitget": ("bitget_announcements",),
    "kucoin": ("kucoin_announcements",),
}
DEMO_SETTINGS = {
    # A local mirror needs no politeness; blocks are retried quickly to keep it short.
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "ANNALS_BLOCK_BACKOFF": 0.2,
}
DEMO_QUERY = """
SELECT d.source, d.published_at, v.event_type, v.title
FROM documents d JOIN versions v ON v.document_id = d.id AND v.version = d.current_version
WHERE d.kind = 'announcement' AND {listing_only} IS NULL
ORDER BY d.published_at DESC LIMIT 8
""".strip()
# The one dialect difference in the sample query: reading a member of a JSON column.
LISTING_ONLY = {"sqlite": "json_extract(v.extra, '$.listing_only')"}
LISTING_ONLY_PG = "v.extra ->> 'listing_only'"


def demo(
    db: Annotated[
        str, typer.Option("--db", help="Archive to fill (created if missing).")
    ] = "annals-demo.db",
) -> None:
    """Crawl the bundled mirrors of all six sources offline and show what landed.

    Serves recorded pages and API answers of Gate, Binance, OKX, Bybit, Bitget and KuCoin
    on 127.0.0.1 (a free port), crawls them with the real spiders, prints one summary
    line per spider and a sample query. Run it twice: the second run finds nothing new
    and creates no version. Gate's mirror blocks two articles on purpose (an Akamai 403
    and an EdgeOne challenge): they are never archived, and that run ends "blocked".

    Example:

        annals demo --db /tmp/demo.db
    """
    from crawler.mirror import Mirror, MirrorServer

    folders = [MIRRORS / source for source in DEMO_SPIDERS]
    names = [name for source in DEMO_SPIDERS for name in DEMO_SPIDERS[source]]
    settings = project_settings()
    for name, value in DEMO_SETTINGS.items():
        settings.set(name, value, priority="cmdline")
    url = dbmod.resolve_url(db)
    settings.set("ANNALS_DATABASE_URL", url, priority="cmdline")
    settings.set("ANNALS_EXCLUSIVE", True, priority="cmdline")
    settings.set("LOG_LEVEL", "ERROR", priority="cmdline")
    with MirrorServer(Mirror(*folders)) as server, archive_errors():
        typer.echo(f"serving the recorded pages of {', '.join(DEMO_SPIDERS)} at {server.url}")
        with crawl_lock(url, settings):
            dbmod.open_archive(url, create=True).dispose()
            results = run_spiders(names, settings, {"base_url": server.url})
    for name, status, run_id, counters in results:
        typer.echo(summary_line(name, status, run_id, counters))
    where = dbmod.display(url)
    typer.echo(f"\nThe archive is {where}. A sample query:\n")
    backend = sa.engine.make_url(url).get_backend_name()
    sample = DEMO_QUERY.format(listing_only=LISTING_ONLY.get(backend, LISTING_ONLY_PG))
    typer.echo(f'annals query --db {where} "{" ".join(sample.split())}"\n')
    from archive.cli import query

    query(sample, db=url, fmt="table")
    typer.echo(
        f"\nNext: annals history gate:announcement:51322:en --db {where}, "
        f"annals export --db {where} | head -1, annals stats --db {where}"
    )


def reparse(
    db: DbOption = None,
    spider: Annotated[
        str | None, typer.Option("--spider", help="Only what this spider fetched.")
    ] = None,
) -> None:
    """Re-run the parsers over quarantined pages' stored responses, without fetching.

    After a parser fix, every unresolved page in `quarantine` is parsed again from its
    snapshot: one that parses now is archived (with its original fetch time) and its
    quarantine row gets `resolved_at`; one that still fails stays, and its error is
    printed.

    Example:

        annals reparse --db annals.db --spider gate_announcements
    """
    from archive.quarantine import pending, resolve
    from archive.records import ParseError
    from archive.store import BatchResult, Store
    from archive.validate import problem
    from crawler.sources.parsing import EnvelopeError

    settings = project_settings()
    loader = SpiderLoader.from_settings(settings)
    known_spiders = set(loader.list())
    url = dbmod.resolve_url(db)
    resolved: list[int] = []
    still: list[str] = []
    written = BatchResult()
    try:
        with crawl_lock(url, settings), archive_errors():
            engine = dbmod.open_archive(url)
            store = Store(engine)
            stored_items = list(pending(engine, spider))
            for stored in stored_items:
                name = stored.spider or "?"
                try:
                    if name not in known_spiders:
                        raise NotImplementedError(f"no spider named {name!r}")
                    spider_cls = loader.load(name)
                    if not hasattr(spider_cls, "parse_snapshot"):
                        raise NotImplementedError(f"{name} cannot reparse stored responses")
                    records = spider_cls.parse_snapshot(stored.raw)
                    reasons = [r for r in map(problem, records) if r]
                    if reasons:
                        raise ParseError(stored.raw.url, reasons[0])
                except (ParseError, EnvelopeError, NotImplementedError) as exc:
                    still.append(f"{stored.raw.url}: {exc}")
                    continue
                for record in records:
                    record.raw, record.seen_at = stored.raw, stored.raw.fetched_at
                written.add(store.write(records))
                resolved.append(stored.key)
            resolve(engine, resolved)
    except LockHeldError as exc:
        raise fail(str(exc), Exit.LOCKED) from None
    for line in still:
        typer.echo(f"still failing: {line}")
    typer.echo(
        f"{len(stored_items)} quarantined pages: {len(resolved)} parsed "
        f"({written.new_documents} new documents, {written.new_versions} new versions), "
        f"{len(still)} still failing"
    )


def register(app: typer.Typer) -> None:
    app.command()(crawl)
    app.command()(demo)
    app.command()(reparse)
