"""Last checks before a record is archived: a record that fails one is quarantined instead,
so no junk ever becomes a version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from archive.normalize import utcnow
from archive.records import EVENT_TYPES, KINDS, Record

# Exchanges publish nothing before Bitcoin's first block, and nothing from the future:
# a small allowance covers clock skew and announcements dated a little ahead.
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)


def problem(record: Record, now: datetime | None = None) -> str | None:
    """Why this record must not be archived, or None."""
    if not (record.source and record.external_id and record.language):
        return "incomplete identity (source, external_id, language)"
    if record.kind not in KINDS:
        return f"unknown kind {record.kind!r}"
    if not record.url.startswith(("https://", "http://")):
        return f"not a web address: {record.url!r}"
    if record.event_type is not None and record.event_type not in EVENT_TYPES:
        return f"unknown event type {record.event_type!r}"
    if not (record.title or record.body_text or record.body_html):
        return "neither a title nor a body"
    latest = (now or utcnow()) + FUTURE_SLACK
    for name in ("published_at", "updated_at"):
        value = getattr(record, name)
        if value is None:
            continue
        if value.tzinfo is None:
            return f"{name} has no time zone"
        if not EARLIEST <= value <= latest:
            return f"{name} {value.isoformat()} is not a plausible time"
    for name in ("title", "body_text", "body_html", "author"):
        value = getattr(record, name)
        if value and "\ufffd" in value:
            return f"{name} holds undecodable bytes (U+FFFD): wrong charset or invalid UTF-8"
    return None
