"""The SLO engine's call site of the one time grammar (DESIGN §4).

``genobs.times`` is the shell's grammar; until every checkout has it, the few forms the SLO
engine needs (durations, RFC 3339, epoch seconds/milliseconds, ``now``) are read here the
same way, so switching is one import.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

try:  # the shell's grammar, when present
    from genobs.times import TimeParseError, parse_duration, parse_instant  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - exercised only on a shell without genobs.times
    class TimeParseError(ValueError):  # type: ignore[no-redef]
        """A time or duration that does not parse."""

    _DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)
    _UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

    def parse_duration(text: str) -> timedelta:  # type: ignore[no-redef]
        match = _DURATION.match(str(text))
        if not match:
            raise TimeParseError(f"{text!r} is not a duration (expected e.g. 30s, 5m, 2h, 7d, 1w)")
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])

    def parse_instant(text: str, *, now: datetime | None = None) -> datetime:  # type: ignore[no-redef]
        raw = str(text).strip()
        if raw.lower() == "now":
            return now or datetime.now(timezone.utc)
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            value = float(raw)
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=timezone.utc)
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise TimeParseError(f"{raw!r} is not a time (expected RFC 3339, epoch seconds/ms or 'now')") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC (DuckDB hands TIMESTAMPTZ back aware; tests may pass naive UTC)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def format_duration(span: timedelta) -> str:
    """The shortest exact form: 300s -> 5m, 86400s -> 1d."""
    seconds = int(span.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


__all__ = ["TimeParseError", "parse_duration", "parse_instant", "utcnow", "as_utc", "format_duration"]
