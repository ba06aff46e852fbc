"""Drift windows: which samples form the reference and which the current side.

Accepted forms (``--reference`` / ``--current``):

* ``2026-11-16..2026-11-19`` — a time range; a date-only end includes that whole day, a
  date-time end is exclusive. Times without an offset are UTC.
* ``last 24h`` or ``24h`` — the span ending at the newest sample (units s, m, h, d, w).

Times and durations are genobs' one grammar (genobs.times): RFC 3339, dates, epoch s/ms.
* ``7d before`` — (reference only) the span right before the current window's start.
* ``version:v1.4`` — every sample of that model_version.
* ``all`` — every sample.

Defaults: current = ``last 24h``, reference = ``7d before``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from genobs import times
from typing import Any

DEFAULT_CURRENT = "last 24h"
DEFAULT_REFERENCE = "7d before"

class WindowError(times.TimeParseError):
    """A window specification that cannot be understood (message says what is accepted)."""


@dataclass(frozen=True)
class Window:
    """A set of samples: a time range [start, end) and/or a model version."""

    spec: str
    start: datetime | None = None
    end: datetime | None = None
    version: str | None = None

    def where(self, alias: str = "") -> tuple[str, list[Any]]:
        """A SQL predicate over samples (parameterized) selecting this window."""
        prefix = f"{alias}." if alias else ""
        parts: list[str] = []
        params: list[Any] = []
        if self.start is not None:
            parts.append(f"{prefix}timestamp >= ?")
            params.append(self.start)
        if self.end is not None:
            parts.append(f"{prefix}timestamp < ?")
            params.append(self.end)
        if self.version is not None:
            parts.append(f"{prefix}model_version = ?")
            params.append(self.version)
        return (" AND ".join(parts) or "TRUE"), params

    def describe(self) -> str:
        """What is stored in drift_results.reference / .current."""
        if self.version is not None and self.start is None:
            return f"version:{self.version}"
        if self.start is None and self.end is None:
            return "all"
        start = self.start.isoformat() if self.start else ""
        end = self.end.isoformat() if self.end else ""
        text = f"{start}..{end}"
        return f"version:{self.version}@{text}" if self.version else text


def parse_duration(text: str) -> timedelta:
    try:
        return times.parse_duration(text)
    except times.TimeParseError as exc:
        raise WindowError(str(exc)) from None


def _parse_instant(text: str, *, end: bool) -> datetime:
    if not text.strip():
        raise WindowError("empty date in a time range")
    try:
        return times.parse_instant(text, end=end)
    except times.TimeParseError as exc:
        raise WindowError(str(exc)) from None


def parse_window(spec: str, *, newest: datetime | None, current: Window | None = None) -> Window:
    """Turn a window specification into a Window. ``newest``: the newest sample's timestamp
    (for ``last …``); ``current``: the current window (for ``… before``)."""
    text = (spec or "").strip()
    lowered = text.lower()
    if not text:
        raise WindowError("empty window (expected e.g. 'last 24h', '2026-11-16..2026-11-19', 'version:v1.4')")
    if lowered == "all":
        return Window(text)
    if lowered.startswith("version:"):
        version = text.split(":", 1)[1].strip()
        if not version:
            raise WindowError(f"{text!r}: name a model version, e.g. version:v1.4")
        return Window(text, version=version)
    if ".." in text:
        left, right = text.split("..", 1)
        start, end = _parse_instant(left, end=False), _parse_instant(right, end=True)
        if end <= start:
            raise WindowError(f"{text!r}: the end must be after the start")
        return Window(text, start=start, end=end)
    if lowered == "today":
        today = times.parse_range("today", now=newest)
        return Window(text, start=today.start, end=today.end)
    if lowered.endswith(" before"):
        if current is None or current.start is None:
            raise WindowError(
                f"{text!r} needs a current window with a start time (a time range or 'last …'); "
                "give --reference explicitly when --current is a model version"
            )
        span = parse_duration(lowered[: -len(" before")])
        return Window(text, start=current.start - span, end=current.start)
    duration_text = lowered[len("last "):] if lowered.startswith("last ") else lowered
    try:
        span = parse_duration(duration_text)
    except WindowError:
        raise WindowError(
            f"{text!r} is not a window: use 'A..B' (dates or date-times), 'last 24h' / '24h', "
            "'7d before', 'version:NAME' or 'all'"
        ) from None
    if newest is None:
        raise WindowError(f"{text!r}: there are no samples to count back from")
    end = newest + timedelta(microseconds=1)  # include the newest sample itself
    return Window(text, start=end - span, end=end)


def resolve_windows(reference: str | None, current: str | None, newest: datetime | None) -> tuple[Window, Window]:
    """(reference, current) with the defaults filled in."""
    cur = parse_window(current or DEFAULT_CURRENT, newest=newest)
    ref = parse_window(reference or DEFAULT_REFERENCE, newest=newest, current=cur)
    return ref, cur
