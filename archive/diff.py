"""Edit history of one document: its versions, and unified diffs between them.

Not every version after the first is an edit: a version marked `extra.completes_push`
is the article page completing a record that `annals watch` archived from a push
channel (title, brief, time: crawler.push). History and diff label it a completion
and leave it out of the edits they count, as the `edited_after_publication` query of
`annals serve` and the alerts of `--notify-edits` do."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from archive.db import ArchiveError
from archive.models import TABLES
from archive.normalize import format_time
from archive.records import Identity

documents, versions = TABLES["documents"], TABLES["versions"]


class UnknownDocument(ArchiveError):  # noqa: N818 - reads as what happened
    pass


class NothingToCompare(ArchiveError):  # noqa: N818
    """The document has one version: there is no older one to diff against."""


@dataclass
class VersionInfo:
    version: int
    seen_at: datetime
    content_hash: str
    title: str | None
    body_text: str | None
    crawl_run_id: int | None
    reverted_at: list[str]
    pushed: bool = False  # archived from a push channel (extra.pushed: its channel)
    completes_push: bool = False  # the article completing a pushed record: no edit

    @property
    def is_edit(self) -> bool:
        """A change of the document's text after its first version, not its completion."""
        return self.version > 1 and not self.completes_push


@dataclass
class History:
    identity: Identity
    url: str
    current_version: int | None
    published_at: datetime | None
    removed_at: datetime | None
    versions: list[VersionInfo]

    def get(self, number: int) -> VersionInfo:
        for info in self.versions:
            if info.version == number:
                return info
        have = ", ".join(str(v.version) for v in self.versions)
        raise UnknownDocument(f"{self.identity.ref()} has no version {number} (it has {have})")


def parse_ref(ref: str) -> tuple[str, str, str, str | None]:
    """'gate:announcement:51322[:en]' -> its parts; the language may be left out."""
    parts = ref.split(":")
    if len(parts) not in (3, 4) or not all(parts):
        raise UnknownDocument(
            f"not a document reference: {ref!r}; write SOURCE:KIND:EXTERNAL_ID[:LANG], "
            "e.g. gate:announcement:51322:en"
        )
    return parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else None


def load_history(engine: Engine, ref: str) -> History:
    source, kind, external_id, language = parse_ref(ref)
    query = sa.select(documents).where(
        documents.c.source == source,
        documents.c.kind == kind,
        documents.c.external_id == external_id,
    )
    if language:
        query = query.where(documents.c.language == language)
    with engine.connect() as conn:
        docs = conn.execute(query).all()
        if not docs:
            raise UnknownDocument(f"no document {ref} in the archive")
        if len(docs) > 1:
            refs = ", ".join(f"{source}:{kind}:{external_id}:{d.language}" for d in docs)
            raise UnknownDocument(f"{ref} is in several languages; name one: {refs}")
        doc = docs[0]
        rows = conn.execute(
            sa.select(versions).where(versions.c.document_id == doc.id).order_by(versions.c.version)
        ).all()
    return History(
        identity=Identity(doc.source, doc.kind, doc.external_id, doc.language),
        url=doc.url,
        current_version=doc.current_version,
        published_at=doc.published_at,
        removed_at=doc.removed_at,
        versions=[
            VersionInfo(
                version=r.version,
                seen_at=r.seen_at,
                content_hash=r.content_hash,
                title=r.title,
                body_text=r.body_text,
                crawl_run_id=r.crawl_run_id,
                reverted_at=list((r.extra or {}).get("reverted_at", [])),
                # A completion keeps the push's marks (the store merges extras).
                pushed=bool((r.extra or {}).get("pushed"))
                and not (r.extra or {}).get("completes_push"),
                completes_push=bool((r.extra or {}).get("completes_push")),
            )
            for r in rows
        ],
    )


def _text(info: VersionInfo) -> list[str]:
    return [info.title or "", "", *(info.body_text or "").split("\n")]


def compared_versions(history: History, old: int | None, new: int | None) -> tuple[int, int]:
    """The versions `annals diff` compares: by default the current one (else the last)
    and the one before it."""
    if new is None:
        new = history.current_version or history.versions[-1].version
    if old is None:
        old = new - 1
    if old < 1:
        raise NothingToCompare(
            f"{history.identity.ref()} has only version {new}: nothing to compare"
        )
    return old, new


def unified_diff(history: History, old: int, new: int, context: int = 3) -> str:
    a, b = history.get(old), history.get(new)
    ref = history.identity.ref()
    lines = difflib.unified_diff(
        _text(a),
        _text(b),
        fromfile=f"{ref} v{a.version} (seen {format_time(a.seen_at)})",
        tofile=f"{ref} v{b.version} (seen {format_time(b.seen_at)})",
        lineterm="",
        n=context,
    )
    return "\n".join(lines)


def completion_notes(history: History, old: int, new: int) -> list[str]:
    """What `annals diff` says before the diff of old -> new: each version of the range
    that completes a pushed record rather than edits it."""
    low, high = sorted((old, new))
    return [
        f"v{v.version} completes the pushed record (article fetched): not an edit"
        for v in history.versions
        if low < v.version <= high and v.completes_push
    ]


def edits(history: History) -> int:
    """How many of the document's versions are edits (completions are not)."""
    return sum(v.is_edit for v in history.versions)


def history_rows(history: History) -> list[dict[str, Any]]:
    return [
        {
            "version": v.version,
            "current": v.version == history.current_version,
            "seen_at": format_time(v.seen_at),
            "content_hash": v.content_hash,
            "title": v.title,
            "crawl_run_id": v.crawl_run_id,
            "reverted_at": v.reverted_at,
            "pushed": v.pushed,
            "completes_push": v.completes_push,
            "edit": v.is_edit,
        }
        for v in history.versions
    ]
