"""Time ranges for the dashboards: the one grammar of genobs.times, anchored at the data.

A range like "last 24h" ends at the newest data when the newest data is older than now
(a demo database, a replay, a copy of last month's file): the page then shows data
instead of an empty window, and says where the range ends. On a live system the newest
sample is seconds old, so this is the usual "last 24 h".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

try:  # the shell's grammar (genobs/times.py); the fallback below covers the forms the picker offers
    from genobs.times import TimeParseError, parse_range as _shell_parse_range  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - until genobs/times.py lands on main
    _shell_parse_range = None

    class TimeParseError(ValueError):  # type: ignore[no-redef]
        pass


PRESETS: tuple[str, ...] = ("last 1h", "last 6h", "last 24h", "last 7d", "last 30d")
DEFAULT_RANGE = "last 7d"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _fallback_instant(text: str) -> datetime:
    text = text.strip()
    if re.fullmatch(r"\d{10}(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    if re.fullmatch(r"\d{13}", text):
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TimeParseError(f"not a time: {text!r} (RFC 3339, e.g. 2026-11-18T14:00:00Z)") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _fallback_range(text: str, now: datetime) -> Window:
    spec = text.strip()
    if ".." in spec:
        a, b = spec.split("..", 1)
        return Window(_fallback_instant(a), _fallback_instant(b))
    if spec == "today":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(start, now)
    body = spec[5:] if spec.startswith("last ") else spec
    m = _DURATION.match(body)
    if not m:
        raise TimeParseError(f"not a time range: {text!r} (e.g. 'last 24h', '7d', 'A..B')")
    return Window(now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)]), now)


def parse_window(text: str, *, now: datetime) -> Window:
    """``text`` in genobs's range grammar, relative ranges ending at ``now``."""
    if _shell_parse_range is not None:
        r = _shell_parse_range(text, now=now)
        return Window(r.start, r.end)
    window = _fallback_range(text, now)
    if window.end <= window.start:
        raise TimeParseError(f"empty time range: {text!r} (the end must come after the start)")
    return window


def anchor(newest: datetime | None, wall_clock: datetime | None = None) -> datetime:
    """Where relative ranges end: now, or the newest data when that is older."""
    now = wall_clock or datetime.now(timezone.utc)
    if newest is None:
        return now
    newest = newest if newest.tzinfo else newest.replace(tzinfo=timezone.utc)
    return min(now, newest + timedelta(seconds=1))


def bucket_seconds(window: Window, points: int = 240) -> int:
    """A round bucket width giving at most about ``points`` buckets over the window."""
    for width in (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400):
        if window.seconds / width <= points:
            return width
    return 30 * 86400


def bucket_label(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"
