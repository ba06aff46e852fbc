"""The SLO engine's times: the shell's one grammar (genobs.times, DESIGN §4) and helpers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from genobs.times import TimeParseError, parse_duration, parse_instant


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
