"""`annals crawl`, `annals demo` and `annals reparse`: the commands that need Scrapy,
added to the CLI through the "annals.commands" entry point.

Scrapy is imported when one of them runs, not when they are registered, so the other
`annals` commands start without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
import typer

from archive import db as dbmod
from archive.cliutil import DbOption, Exit, archive_errors, fail, started, starting_up
from crawler.lock import LockHeldError, crawl_lock

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

    from crawler.spiders.base import AnnalsSpider
    from crawler.watch import PollInterval

# A spider's run: its name, status, run id (None when none was recorded) and counters.
Outcome = tuple[str, str, int | None, dict[str, Any]]

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
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    return settings


def import_downloader_first() -> None:
    """Import Scrapy's TLS modules before the spiders and the engine do. They make
    deprecated aliases with `create_deprecated_class`, which calls inspect.stack(): each
    import frame on the stack is looked for in every module imported so far. Imported by
    the engine's start, deep in the reactor's stack with every spider and the archive
    imported, that was a tenth of a second of every crawl's start-up."""
    import scrapy.core.downloader.contextfactory  # noqa: F401  (and .tls)


class Spiders(Mapping[str, "type[Spider]"]):
    """The spiders of SPIDER_MODULES by name, in name order, each imported when it is
    first looked up (the project's SPIDER_LOADER_CLASS imports only its module): a
    crawl of one spider does not import the others."""

    def __init__(self, settings: Settings) -> None:
        from scrapy.spiderloader import get_spider_loader

        self._loader = get_spider_loader(settings)
        self._names = sorted(self._loader.list())
        self._loaded: dict[str, type[Spider]] = {}

    def __getitem__(self, name: str) -> type[Spider]:
        if name not in self._loaded:
            if name not in self._names:
                raise KeyError(name)
            self._loaded[name] = self._loader.load(name)
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def project_spiders(settings: Settings) -> Spiders:
    """The spiders of SPIDER_MODULES by name, in name order (imported when looked up)."""
    return Spiders(settings)


def annals_spider(spider_cls: type[Spider]) -> type[AnnalsSpider]:
    """A spider of SPIDER_MODULES as the annals spider every one of them is."""
    from crawler.spiders.base import AnnalsSpider

    if not issubclass(spider_cls, AnnalsSpider):
        raise TypeError(f"{spider_cls.__name__} is not an annals spider (crawler.spiders.base)")
    return spider_cls


def crawl_settings(url: str, overrides: dict[str, Any], log_level: str) -> Settings:
    """The project's settings for a crawl into the archive at `url`, under the command's
    lock, with the command line's settings on top."""
    settings = project_settings()
    for name, value in overrides.items():
        settings.set(name, value, priority="cmdline")
    settings.set("ANNALS_DATABASE_URL", url, priority="cmdline")
    settings.set("ANNALS_EXCLUSIVE", True, priority="cmdline")  # it holds the crawl lock
    settings.set("LOG_LEVEL", log_level.upper(), priority="cmdline")
    return settings


@contextmanager
def locked_archive(url: str, settings: Settings) -> Iterator[None]:
    """Hold the archive's crawl lock (exit 4 when another crawl holds it), with the
    archive's errors as one line."""
    try:
        with crawl_lock(url, settings), archive_errors():
            yield
    except LockHeldError as exc:
        raise fail(str(exc), Exit.LOCKED) from None


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
    if counters.get("unarchived"):  # a write to the archive failed: what it did not take
        parts += f", {counters['unarchived']} unarchived"
    run = f"run {run_id}" if run_id is not None else "no run recorded"
    return f"{name}: {status} ({run}): {parts}"


def run_spiders(names: list[str], settings: Settings, spider_args: dict[str, str]) -> list[Outcome]:
    """Run the spiders in this process; return (name, status, run id, counters) for each."""
    from scrapy.crawler import AsyncCrawlerProcess

    from crawler.context import run_context
    from crawler.stopping import SignalStop

    process = AsyncCrawlerProcess(settings)
    crawlers: list[tuple[str, Crawler]] = []
    for name in names:
        crawler = process.create_crawler(name)
        process.crawl(crawler, **spider_args)
        crawlers.append((name, crawler))
    # SIGINT/SIGTERM stop within ANNALS_STOP_GRACE seconds and record "interrupted".
    stopper = SignalStop(process, [c for _, c in crawlers], settings.getfloat("ANNALS_STOP_GRACE"))
    stopper.install()
    started()  # what start-up made is frozen; the collector runs again (archive.cliutil)
    try:
        process.start(install_signal_handlers=False)
    finally:
        stopper.uninstall()
    results: list[Outcome] = []
    for name, crawler in crawlers:
        context = None
        with contextlib.suppress(RuntimeError):  # a crawl that failed before its extensions
            context = run_context(crawler)
        if context is None or context.status is None:
            results.append((name, "failed", getattr(context, "run_id", None), {}))
        else:
            results.append((name, context.status, context.run_id, context.counters))
    return results


def crawl_archive(
    url: str, names: list[str], settings: Settings, spider_args: dict[str, str]
) -> list[Outcome]:
    """Under the archive's crawl lock, create the archive when missing and run the spiders."""
    with locked_archive(url, settings):
        dbmod.open_archive(url, create=True).dispose()
        return run_spiders(names, settings, spider_args)


# The --notify options, declared once for every command that archives (crawl, watch).
# Options `annals crawl` and `annals watch` share.
ArgOption = Annotated[
    list[str] | None,
    typer.Option("-a", "--arg", help="NAME=VALUE for every spider, as `scrapy crawl -a`."),
]
SettingOption = Annotated[
    list[str] | None, typer.Option("-s", "--set", help="A Scrapy setting, NAME=VALUE.")
]
LogLevelOption = Annotated[str, typer.Option("--log-level", help="Scrapy's log level on stderr.")]
NotifyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--notify",
        help="An Apprise URL to alert (repeatable; else $ANNALS_NOTIFY, whitespace or"
        " comma separated): one alert per new document.",
        show_default=False,
    ),
]
NotifyOnOption = Annotated[
    list[str] | None,
    typer.Option(
        "--notify-on", help="Only these event types, e.g. listing,delisting.", show_default=False
    ),
]
NotifySourceOption = Annotated[
    list[str] | None,
    typer.Option("--notify-source", help="Only this source (repeatable).", show_default=False),
]
NotifySymbolOption = Annotated[
    list[str] | None,
    typer.Option(
        "--notify-symbol", help="Only documents about this symbol (repeatable).", show_default=False
    ),
]
NotifyEditsOption = Annotated[
    bool, typer.Option("--notify-edits", help="Also one alert per new version (an edit).")
]
NotifyMaxAgeOption = Annotated[
    str,
    typer.Option(
        "--notify-max-age",
        help="Only documents published this recently (30m, 1h, 2d): no alerts for a backfill.",
    ),
]


def print_summaries(results: list[Outcome], *, alerts: bool = False) -> None:
    for name, status, run_id, counters in results:
        line = summary_line(name, status, run_id, counters)
        if alerts:
            line += (
                f", {counters.get('alerts_sent', 0)} alerts sent,"
                f" {counters.get('alerts_failed', 0)} alerts failed"
            )
        typer.echo(line)


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for v in values or [] for part in v.split(",") if part.strip()]


def notify_settings(
    known: Mapping[str, type[Spider]],
    urls: list[str] | None,
    event_types: list[str] | None,
    sources: list[str] | None,
    symbols: list[str] | None,
    edits: bool,
    max_age: str,
) -> dict[str, Any]:
    """The ANNALS_NOTIFY_* settings of the command line's --notify options, or a usage
    error (exit 2) naming what is wrong."""
    from archive.records import EVENT_TYPES
    from archive.timearg import TimeArgumentError, parse_duration

    out: dict[str, Any] = {}
    if urls:
        out["ANNALS_NOTIFY"] = _split(urls)
    kinds = _split(event_types)
    if bad := [k for k in kinds if k not in EVENT_TYPES]:
        raise fail(f"--notify-on takes {', '.join(EVENT_TYPES)}; not {', '.join(bad)}", Exit.USAGE)
    names = _split(sources)
    # Every spider's source, looked up (every spider module imported) only when asked.
    all_sources = sorted({annals_spider(cls).source for cls in known.values()}) if names else []
    if bad := [s for s in names if s not in all_sources]:
        raise fail(
            f"unknown --notify-source {', '.join(bad)}; known: {', '.join(all_sources)}",
            Exit.USAGE,
        )
    try:
        age = parse_duration(max_age)
    except TimeArgumentError as exc:
        raise fail(f"--notify-max-age: {exc}", Exit.USAGE) from None
    out.update(
        ANNALS_NOTIFY_ON=kinds,
        ANNALS_NOTIFY_SOURCES=names,
        ANNALS_NOTIFY_SYMBOLS=[s.upper() for s in _split(symbols)],
        ANNALS_NOTIFY_EDITS=edits,
        ANNALS_NOTIFY_MAX_AGE=age.total_seconds(),
    )
    return out


def check_notify(settings: Settings) -> bool:
    """Whether the crawl alerts; a usage error (exit 2) for a URL Apprise cannot send to,
    or without Apprise, before anything is crawled."""
    from crawler.alerts import NotifyConfigError, notify_urls, targets_of

    urls = notify_urls(settings.get("ANNALS_NOTIFY"))
    if not urls:
        return False
    try:
        targets_of(urls)
    except NotifyConfigError as exc:
        raise fail(str(exc), Exit.USAGE) from None
    return True


def exit_code(statuses: list[str]) -> Exit:
    """The exit code of the worst run (extensions.PRECEDENCE): 3 only when being blocked
    is the worst that happened, 1 for failed, interrupted or partial, 0 when all finished."""
    from crawler.extensions import worst

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
    arg: ArgOption = None,
    setting: SettingOption = None,
    all_spiders: Annotated[bool, typer.Option("--all", help="Run every spider.")] = False,
    list_spiders: Annotated[bool, typer.Option("--list", help="List the spiders.")] = False,
    log_level: LogLevelOption = "WARNING",
    notify: NotifyOption = None,
    notify_on: NotifyOnOption = None,
    notify_source: NotifySourceOption = None,
    notify_symbol: NotifySymbolOption = None,
    notify_edits: NotifyEditsOption = False,
    notify_max_age: NotifyMaxAgeOption = "1h",
) -> None:
    """Crawl sources into the archive, one process, one summary line per spider.

    Incremental by default: listings are read newest first and paging stops at the
    first page that brings nothing new. A lock beside the archive makes an
    overlapping run (cron) exit at once with code 4. Exit code 0 only when every
    spider finished without failure or block (3: blocked, 1: failed).

    Example:

        annals crawl gate_announcements gate_square --db annals.db -a lang=en,zh
    """
    starting_up()
    import_downloader_first()
    known = project_spiders(project_settings())
    if list_spiders:
        for name, spider_cls in known.items():
            typer.echo(f"{name:24} {_first_line(spider_cls.__doc__)}")
            for arg_name, form, text in annals_spider(spider_cls).describe_arguments():
                typer.echo(f"    -a {arg_name + '=' + form:22} {text}")
        return
    wanted = _chosen(known, spiders, all_spiders)
    spider_args = _spider_arguments(known, wanted, arg, base_url, full)
    url = dbmod.resolve_url(db)
    settings, notifying = _run_settings(
        url,
        known,
        setting,
        log_level,
        (notify, notify_on, notify_source, notify_symbol, notify_edits, notify_max_age),
    )
    with archive_errors():
        dbmod.refuse_foreign(url)  # before the lock file is made beside someone's file
    results = crawl_archive(url, wanted, settings, spider_args)
    print_summaries(results, alerts=notifying)
    code = exit_code([status for _, status, _, _ in results])
    if code:
        raise typer.Exit(int(code))


def _chosen(known: Mapping[str, type[Spider]], spiders: list[str] | None, every: bool) -> list[str]:
    wanted = list(known) if every else list(spiders or [])
    if not wanted:
        raise fail("name the spiders to run, or --all (see --list)", Exit.USAGE)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise fail(f"unknown spider {', '.join(unknown)}; known: {', '.join(known)}", Exit.USAGE)
    return wanted


def _spider_arguments(
    known: Mapping[str, type[Spider]],
    wanted: list[str],
    arg: list[str] | None,
    base_url: str | None,
    full: bool,
) -> dict[str, str]:
    """The spiders' -a arguments, refused before anything runs, not by a crawl that then
    exits 1."""
    spider_args = _pairs(arg, "-a")
    if base_url:
        spider_args["base_url"] = base_url
    if full:
        spider_args["full"] = "1"
    for name in wanted:
        try:
            known[name](**spider_args)
        except ValueError as exc:
            raise fail(str(exc), Exit.USAGE) from None
    return spider_args


def _run_settings(
    url: str,
    known: Mapping[str, type[Spider]],
    setting: list[str] | None,
    log_level: str,
    notify: tuple[
        list[str] | None, list[str] | None, list[str] | None, list[str] | None, bool, str
    ],
    **extra: Any,
) -> tuple[Settings, bool]:
    """A crawl's or a watch's settings (`extra`, the --notify options, then `-s`, which has
    the last word), and whether it alerts; a usage error (exit 2) before anything runs."""
    overrides = {**extra, **notify_settings(known, *notify)}
    overrides.update(_pairs(setting, "-s"))
    settings = crawl_settings(url, overrides, log_level)
    notifying = check_notify(settings)
    _, on, sources, symbols, edits, _ = notify
    if not notifying and (on or sources or symbols or edits):
        raise fail("the --notify-* filters need --notify URL (or $ANNALS_NOTIFY)", Exit.USAGE)
    return settings, notifying


def watch(
    spiders: Annotated[
        list[str] | None,
        typer.Argument(help="Spiders to run (see `annals crawl --list`).", show_default=False),
    ] = None,
    db: DbOption = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Send every request to this origin (a local mirror); WebSockets to ws:// there.",
        ),
    ] = None,
    interval: Annotated[
        list[str] | None,
        typer.Option(
            "--interval",
            help=f"Seconds between two polls of a source (default {DEFAULT_INTERVAL:g}), or"
            " SPIDER=SECONDS for one spider (repeatable); never faster than its limit.",
            show_default=False,
        ),
    ] = None,
    arg: ArgOption = None,
    setting: SettingOption = None,
    all_spiders: Annotated[bool, typer.Option("--all", help="Watch every source.")] = False,
    log_level: LogLevelOption = "WARNING",
    notify: NotifyOption = None,
    notify_on: NotifyOnOption = None,
    notify_source: NotifySourceOption = None,
    notify_symbol: NotifySymbolOption = None,
    notify_edits: NotifyEditsOption = False,
    notify_max_age: NotifyMaxAgeOption = "1h",
) -> None:
    """Keep the archive current until stopped: poll each source's newest list page
    every --interval seconds, and archive Deribit's and Gate's pushed announcements as
    they come, and Binance's and Upbit's when their API keys are in the environment
    (ANNALS_BINANCE_API_KEY and ANNALS_BINANCE_API_SECRET; ANNALS_UPBIT_ACCESS_KEY and
    ANNALS_UPBIT_SECRET_KEY).

    `--interval okx_announcements=10` (or -s ANNALS_WATCH_INTERVALS='{"okx_announcements":
    10}') polls one spider at another interval. No source is polled faster than its
    documented limit allows: a round that asks N list pages at one request every D
    seconds repeats every N*D seconds at the most. The first lines on stderr say, per
    spider, whether it is pushed or polled and how often, and why when that is not what
    was asked (a keyed channel whose keys are not set, a limit).

    Each poll follows `annals crawl`'s incremental rules (paging stops at the first page
    with nothing new); each new record is committed within a second. The WebSocket
    channels are read instead of polling while they are up; after
    every reconnect its list is polled once, so nothing pushed meanwhile is lost. One run
    per spider is recorded for the whole watch (`annals stats`). SIGTERM or Ctrl-C stops
    within seconds with everything received committed; stopped between polls, the runs
    end "finished" (exit 0). It holds the archive's crawl lock: `annals crawl` on the same
    archive exits 4 meanwhile.

    Example:

        annals watch --all --db annals.db --interval 30 --interval okx_announcements=10
    """
    every, some = _intervals(interval)
    starting_up()
    import_downloader_first()
    known = project_spiders(project_settings())
    wanted = _chosen(known, spiders, all_spiders)
    spider_args = _spider_arguments(known, wanted, arg, base_url, full=False)
    url = dbmod.resolve_url(db)
    settings, notifying = _run_settings(
        url,
        known,
        setting,
        log_level,
        (notify, notify_on, notify_source, notify_symbol, notify_edits, notify_max_age),
        ANNALS_WATCH_INTERVAL=every,
        ANNALS_WATCH_INTERVALS=some,
        DUPEFILTER_CLASS="crawler.watch.RoundDupeFilter",
    )
    plan = _poll_plan(known, wanted, spider_args, settings, every, some)
    # The Watch of each crawl reads the interval resolved here (crawler.watch).
    settings.set("ANNALS_WATCH_INTERVALS", {n: p.used for n, p in plan.items()}, priority="cmdline")
    with archive_errors():
        dbmod.refuse_foreign(url)
    typer.echo(f"watching into {dbmod.display(url)} (SIGTERM or Ctrl-C stops):", err=True)
    for line in watch_lines(plan):
        typer.echo(f"  {line}", err=True)
    results = crawl_archive(url, wanted, settings, spider_args)
    print_summaries(results, alerts=notifying)
    code = exit_code([status for _, status, _, _ in results])
    if code:
        raise typer.Exit(int(code))


DEFAULT_INTERVAL = 30.0  # seconds between two polls of a source (issue 14)


def _intervals(values: list[str] | None) -> tuple[float, dict[str, float]]:
    """The --interval options: the interval of every spider (the last plain SECONDS,
    else the default) and those given as SPIDER=SECONDS; a usage error for a value that
    is not a number of seconds above 0."""
    from crawler.watch import seconds

    every, some = DEFAULT_INTERVAL, {}
    try:
        for value in values or []:
            name, sep, number = value.partition("=")
            if sep:
                some[name] = seconds(number, f"--interval {name}")
            else:
                every = seconds(value, "--interval")
    except ValueError as exc:
        raise fail(str(exc), Exit.USAGE) from None
    return every, some


def _poll_plan(
    known: Mapping[str, type[Spider]],
    wanted: list[str],
    spider_args: dict[str, str],
    settings: Settings,
    every: float,
    some: dict[str, float],
) -> dict[str, PollInterval]:
    """Each watched spider's interval: asked (--interval SPIDER=SECONDS and
    ANNALS_WATCH_INTERVALS, which -s sets, over the plain --interval), and the floor of
    its source's limit (its DOWNLOAD_DELAY, as the spider's own settings make it, times
    the list requests a round begins with). A usage error for an unknown spider name or
    a value that is not seconds, before anything runs."""
    from crawler.watch import PollInterval, round_requests, spider_intervals

    try:
        given = {**some, **settings.getdict("ANNALS_WATCH_INTERVALS")}
    except (ValueError, TypeError) as exc:
        raise fail(
            f"ANNALS_WATCH_INTERVALS takes a JSON object of spider names and seconds ({exc})",
            Exit.USAGE,
        ) from None
    try:
        asked = spider_intervals(given, known, "--interval / ANNALS_WATCH_INTERVALS")
    except ValueError as exc:
        raise fail(str(exc), Exit.USAGE) from None
    plan = {}
    for name in wanted:
        spider_settings = settings.copy()
        known[name].update_settings(spider_settings)
        plan[name] = PollInterval(
            asked.get(name, every),
            round_requests(known[name](**spider_args)),
            spider_settings.getfloat("DOWNLOAD_DELAY"),
        )
    return plan


def watch_lines(plan: dict[str, PollInterval]) -> list[str]:
    """One line per spider for the watch's start: pushed, or polled how often, and why
    when that is not what the user asked (a keyed channel's keys not set, a limit)."""
    from crawler.push import CHANNELS

    lines = []
    width = max(map(len, plan), default=0)
    for name, poll in plan.items():
        every = f"every {poll.used:g}s"
        channel = CHANNELS.get(name)
        missing = channel.missing_keys() if channel is not None else []
        if channel is not None and not missing:
            how = f"push (polled {every} while its channel is down)"
        elif channel is not None:
            how = f"polled {every} (keys not set: {', '.join(missing)})"
        else:
            how = f"polled {every}"
        why = poll.why()
        lines.append(f"{name:{width}}  {how}" + (f" ({why})" if why else ""))
    return lines


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


# The bundled mirrors (recorded page shapes) and the spiders that crawl each.
MIRRORS = Path(__file__).with_name("mirrors")
DEMO_SPIDERS = {
    "gate": ("gate_announcements", "gate_square"),
    "binance": ("binance_announcements",),
    "okx": ("okx_announcements",),
    "bybit": ("bybit_announcements",),
    "bitget": ("bitget_announcements",),
    "kucoin": ("kucoin_announcements",),
    "upbit": ("upbit_announcements",),
    "bithumb": ("bithumb_announcements",),
    "htx": ("htx_announcements",),
    "mexc": ("mexc_announcements",),
    "cryptocom": ("cryptocom_announcements",),
    "kraken": ("kraken_announcements",),
    "bitfinex": ("bitfinex_announcements",),
    "deribit": ("deribit_announcements",),
    "bingx": ("bingx_announcements",),
    "xt": ("xt_announcements",),
    "deepcoin": ("deepcoin_announcements",),
}
DEMO_SETTINGS = {
    # A local mirror needs no politeness; blocks are retried quickly to keep it short.
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "ANNALS_BLOCK_BACKOFF": 0.2,
    # Recorded pages alert nobody, whatever $ANNALS_NOTIFY says.
    "ANNALS_NOTIFY": "",
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
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Run `annals watch --all` against the mirrors while new announcements are"
            " pushed and listed, one line per arrival, until Ctrl-C.",
        ),
    ] = False,
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds",
            help="With --watch: publish for this many seconds, wait for what was published,"
            " then stop.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Crawl the bundled mirrors of every source offline and show what landed.

    Serves recorded pages and API answers of every source (`annals crawl --list` names
    their spiders) on 127.0.0.1 (a free port), crawls them with the real spiders, prints
    one summary line per spider and a sample query. Run it twice: the second run finds nothing new
    and creates no version. Gate's mirror blocks two articles on purpose (an Akamai 403
    and an EdgeOne challenge): they are never archived, and that run ends "blocked".

    With --watch, `annals watch --all` keeps the archive current instead, with Gate's
    and Deribit's push channels served too; every few seconds a made-up announcement is
    pushed on Deribit's channel and another put on OKX's first list page (polled every
    2 s), and each arrival is printed with its lag from publication to commit. Ctrl-C
    or SIGTERM stops it, or --seconds; it exits 1 if something published never arrived.

    Example:

        annals demo --db /tmp/demo.db

        annals demo --watch --db demo.db --seconds 30
    """
    from crawler.mirror import Mirror, MirrorServer

    folders = [MIRRORS / source for source in DEMO_SPIDERS]
    names = [name for source in DEMO_SPIDERS for name in DEMO_SPIDERS[source]]
    url = dbmod.resolve_url(db)
    if seconds is not None and (not watch or seconds <= 0):
        raise fail("--seconds takes a number of seconds above 0, with --watch", Exit.USAGE)
    if watch:
        _demo_watch(url, folders, seconds)
        return
    settings = crawl_settings(url, DEMO_SETTINGS, "ERROR")
    with MirrorServer(Mirror(*folders)) as server:
        typer.echo(f"serving the recorded pages of {', '.join(DEMO_SPIDERS)} at {server.url}")
        results = crawl_archive(url, names, settings, {"base_url": server.url})
    print_summaries(results)
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


def _demo_watch(url: str, folders: list[Path], seconds: float | None) -> None:
    from crawler import demo_watch

    with archive_errors():
        dbmod.refuse_foreign(url)
    code = demo_watch.run(url, folders, DEMO_SETTINGS, typer.echo, seconds)
    where = dbmod.display(url)
    typer.echo(f"\nThe archive is {where}. Next: annals stats --db {where}")
    if code:
        raise typer.Exit(code)


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
    from crawler.reparse import reparse_quarantine

    settings = project_settings()
    spiders = project_spiders(settings)
    url = dbmod.resolve_url(db)
    with locked_archive(url, settings):
        report = reparse_quarantine(dbmod.open_archive(url), spiders, spider)
    for line in report.still_failing:
        typer.echo(f"still failing: {line}")
    typer.echo(
        f"{report.pages} quarantined pages: {len(report.resolved)} parsed "
        f"({report.written.new_documents} new documents, "
        f"{report.written.new_versions} new versions), "
        f"{len(report.still_failing)} still failing"
    )


def register(app: typer.Typer) -> None:
    app.command()(crawl)
    app.command()(watch)
    app.command()(demo)
    app.command()(reparse)
