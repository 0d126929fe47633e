"""The times a user writes on the command line: one parser behind every time option.

Deliberately narrower than `normalize.parse_time`, which reads whatever an exchange
sends (unix seconds, "2026-09-29 10:53 (UTC+8)", ...). On a command line a bare
number is ambiguous (2026 is a year to a person and 1970-01-01T00:33:46Z to
`parse_time`) and a word such as "tuesday" is a guess: both are refused, never read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

ACCEPTED = (
    "a date (2026-05-01, UTC midnight), an ISO time with its zone "
    "(2026-05-01T12:00Z, 2026-05-01T14:00+02:00) or a time ago (30m, 24h, 7d, 2w)"
)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Extended ISO 8601 only: `datetime.fromisoformat` also takes 20260101 and 2026-05-01T12.
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?P<zone>Z|[+-]\d{2}:\d{2})?",
    re.IGNORECASE,
)
_AGO = re.compile(r"(?P<count>\d{1,6})(?P<unit>[smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TimeArgumentError(ValueError):
    """Not a time this command line accepts; the message lists the forms it does."""


def parse_time_argument(text: str, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from what a user typed, or TimeArgumentError.

    A time ago counts back from `now` (the current time by default).
    """
    value = text.strip()
    if _DATE.fullmatch(value):
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError as exc:
            raise _refused(text, str(exc)) from None
    match = _DATETIME.fullmatch(value)
    if match:
        zone = match["zone"]
        if not zone:
            raise _refused(text, "a time needs its zone, Z for UTC")
        if zone.upper() != "Z" and (int(zone[1:3]) > 23 or int(zone[4:]) > 59):
            raise _refused(text, f"no zone is {zone}")
        try:
            return datetime.fromisoformat(value.upper()).astimezone(UTC)
        except ValueError as exc:
            raise _refused(text, str(exc)) from None
    match = _AGO.fullmatch(value.lower())
    if match:
        ago = timedelta(**{_UNITS[match["unit"]]: int(match["count"])})
        try:
            return (now or datetime.now(UTC)).astimezone(UTC) - ago
        except OverflowError:
            raise _refused(text, "too far back") from None
    raise _refused(text, "a bare number is ambiguous" if value.isdigit() else None)


def _refused(text: str, reason: str | None) -> TimeArgumentError:
    why = f" ({reason})" if reason else ""
    return TimeArgumentError(f"not a time: {text!r}{why}; give {ACCEPTED}")


def parse_duration(text: str) -> timedelta:
    """A duration as a time ago is written (30m, 1h, 7d, 2w, 90s), or TimeArgumentError."""
    match = _AGO.fullmatch(text.strip().lower())
    if not match:
        raise TimeArgumentError(f"not a duration: {text!r}; give a number and s, m, h, d or w")
    return timedelta(**{_UNITS[match["unit"]]: int(match["count"])})
