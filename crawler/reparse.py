"""Parse quarantined pages again from their stored responses, without fetching
(`annals reparse`): after a parser fix, what parses now is archived with its original
fetch time and its quarantine row is resolved; what still fails stays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from archive.quarantine import Stored, pending, resolve
from archive.records import ParseError, Record
from archive.store import BatchResult, Store
from archive.validate import problem
from crawler.sources.parsing import EnvelopeError


@dataclass
class ReparseReport:
    pages: int = 0  # unresolved quarantined pages that kept their response
    resolved: list[int] = field(default_factory=list)  # their quarantine ids
    still_failing: list[str] = field(default_factory=list)  # "URL: error", one per page
    written: BatchResult = field(default_factory=BatchResult)


def reparse_quarantine(
    engine: Engine, spiders: Mapping[str, type[Any]], spider: str | None = None
) -> ReparseReport:
    """Parse every unresolved quarantined page (only `spider`'s, when given) with the
    spider that fetched it (`spiders`: the project's, by name), archive what parses and
    mark it resolved; the rest is reported."""
    store = Store(engine)
    stored_items = list(pending(engine, spider))  # read whole before the writes begin
    report = ReparseReport(pages=len(stored_items))
    for stored in stored_items:
        try:
            records = parse_again(stored, spiders)
        except (ParseError, EnvelopeError, NotImplementedError) as exc:
            report.still_failing.append(f"{stored.raw.url}: {exc}")
            continue
        report.written.add(store.write(records))
        report.resolved.append(stored.key)
    resolve(engine, report.resolved)
    return report


def parse_again(stored: Stored, spiders: Mapping[str, type[Any]]) -> list[Record]:
    """The valid records the stored response gives today, stamped with its fetch; a
    parse that fails, or a record that breaks a rule, raises."""
    name = stored.spider or "?"
    spider_cls = spiders.get(name)
    if spider_cls is None:
        raise NotImplementedError(f"no spider named {name!r}")
    if not hasattr(spider_cls, "parse_snapshot"):
        raise NotImplementedError(f"{name} cannot reparse stored responses")
    records: list[Record] = spider_cls.parse_snapshot(stored.raw)
    reasons = [r for r in map(problem, records) if r]
    if reasons:
        raise ParseError(stored.raw.url, reasons[0])
    for record in records:
        record.raw, record.seen_at = stored.raw, stored.raw.fetched_at
    return records
