"""The one time grammar of genobs (DESIGN §4): every CLI option and API parameter that takes
a time or a window parses it here, so `--since 30s`, `--current "last 30s"`, an SLO's
`window: 28d` and `?since=...` on the API all mean the same thing.

Instants
    RFC 3339 / ISO 8601 date-times (``2026-11-16T12:00:00Z``; no offset means UTC), dates
    (``2026-11-16``: midnight UTC, or the end of that day when it closes a range), epoch
    seconds or milliseconds (``1763251200``, ``1763251200000``: below 253402300800, i.e.
    10000-01-01 in seconds, a number is seconds, from there on milliseconds; the rule of
    ingested records, genobs.records.EPOCH_MS_FROM), ``now``, ``today`` (midnight UTC), and a duration back from now (``24h``).
Durations
    a number and a unit: ``s``, ``m``/``min``, ``h``, ``d``, ``w`` (``30s``, ``5m``, ``2h``,
    ``7d``, ``1w``, ``1.5h``).
Ranges [start, end)
    ``A..B`` (either side may be empty: open), ``last 24h`` (or ``24h``: the span ending now),
    ``today`` (midnight UTC until now).

"now" is the caller's choice: the wall clock by default, the newest sample for drift windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from genobs.records import EPOCH_MS_FROM

INSTANT_FORMS = ("RFC 3339 (2026-11-16T12:00:00Z)", "a date (2026-11-16)", "epoch s or ms (1763251200)",
                 "now", "today", "a duration back from now (24h)")
DURATION_FORMS = ("30s", "5m", "2h", "7d", "1w")
RANGE_FORMS = ("A..B", "last 24h", "24h", "today")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_EPOCH = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Epochs below 10000-01-01 in seconds are seconds, from there on milliseconds: the same
# rule as ingested records (docs/ingest.md), so one number means one instant everywhere.
_EPOCH_MS_FROM = EPOCH_MS_FROM


class TimeParseError(ValueError):
    """A time, duration or range that is not in the grammar; the message names the argument
    and lists the accepted forms."""


@dataclass(frozen=True)
class TimeRange:
    """[start, end); None on a side means open."""

    start: datetime | None
    end: datetime | None
    spec: str = ""

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)

    def __str__(self) -> str:
        start = self.start.isoformat() if self.start else ""
        end = self.end.isoformat() if self.end else ""
        return f"{start}..{end}"


def _label(name: str | None) -> str:
    return f"{name} " if name else ""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_duration(text: str, *, name: str | None = None) -> timedelta:
    """``30s``, ``5m``, ``2h``, ``7d``, ``1w`` (decimals allowed)."""
    match = _DURATION.match(text or "")
    if not match:
        raise TimeParseError(f"{_label(name)}{text!r} is not a duration (expected e.g. {', '.join(DURATION_FORMS)})")
    amount, unit = float(match.group(1)), match.group(2).lower()
    if amount <= 0:
        raise TimeParseError(f"{_label(name)}{text!r}: a duration must be positive")
    return timedelta(seconds=amount * _UNIT_SECONDS[unit])


def format_duration(span: timedelta) -> str:
    """The shortest exact form in the grammar (``90m`` -> ``90m``, ``2d`` -> ``2d``)."""
    seconds = int(span.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def epoch_to_datetime(value: float, *, name: str | None = None) -> datetime:
    """Epoch seconds (below EPOCH_MS_FROM) or milliseconds (from there on)."""
    seconds = value / 1000.0 if abs(value) >= _EPOCH_MS_FROM else value
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise TimeParseError(f"{_label(name)}{value!r}: epoch out of range") from None


def parse_instant(text: str | datetime, *, now: datetime | None = None, end: bool = False,
                  name: str | None = None) -> datetime:
    """One instant, as an aware UTC datetime. ``end``: a bare date means the end of that day
    (for the right side of a range)."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    raw = (text or "").strip()
    lowered = raw.lower()
    reference = now or utc_now()
    if not raw:
        raise TimeParseError(f"{_label(name)}is empty (expected {', '.join(INSTANT_FORMS)})")
    if lowered == "now":
        return reference
    if lowered == "today":
        return _midnight(reference) + (timedelta(days=1) if end else timedelta())
    if _EPOCH.match(raw):
        return epoch_to_datetime(float(raw), name=name)
    if _DURATION.match(raw):
        return reference - parse_duration(raw, name=name)
    try:
        if _DATE.match(raw):
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimeParseError(f"{_label(name)}{raw!r} is not a time (expected {', '.join(INSTANT_FORMS)})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_range(text: str, *, now: datetime | None = None, name: str | None = None) -> TimeRange:
    """``A..B``, ``last 24h`` / ``24h``, ``today``."""
    raw = (text or "").strip()
    lowered = raw.lower()
    reference = now or utc_now()
    if not raw:
        raise TimeParseError(f"{_label(name)}is empty (expected {', '.join(RANGE_FORMS)})")
    if ".." in raw:
        left, right = raw.split("..", 1)
        start = parse_instant(left, now=reference, name=name) if left.strip() else None
        stop = parse_instant(right, now=reference, end=True, name=name) if right.strip() else None
        if start is not None and stop is not None and stop <= start:
            raise TimeParseError(f"{_label(name)}{raw!r}: the end must be after the start")
        return TimeRange(start, stop, raw)
    if lowered == "today":
        return TimeRange(_midnight(reference), reference + timedelta(microseconds=1), raw)
    span_text = lowered[len("last "):] if lowered.startswith("last ") else lowered
    try:
        span = parse_duration(span_text, name=name)
    except TimeParseError:
        raise TimeParseError(
            f"{_label(name)}{raw!r} is not a time range (expected {', '.join(RANGE_FORMS)}; "
            f"A and B: {', '.join(INSTANT_FORMS)})") from None
    stop = reference + timedelta(microseconds=1)  # include "now" itself (e.g. the newest sample)
    return TimeRange(stop - span, stop, raw)


def parse_optional_instant(text: str | datetime | None, *, now: datetime | None = None, end: bool = False,
                           name: str | None = None) -> datetime | None:
    """None stays None (an option that was not given)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    return parse_instant(text, now=now, end=end, name=name)
