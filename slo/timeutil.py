"""The SLO engine's times: the shell's one grammar (genobs.times, DESIGN §4) and helpers."""

from __future__ import annotations

from datetime import datetime, timezone

from genobs.times import TimeParseError, format_duration, parse_duration, parse_instant


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC (DuckDB hands TIMESTAMPTZ back aware; tests may pass naive UTC)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


__all__ = ["TimeParseError", "parse_duration", "parse_instant", "utcnow", "as_utc", "format_duration"]
