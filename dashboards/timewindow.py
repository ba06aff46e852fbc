"""Time ranges for the dashboards: the one grammar of genobs.times, anchored at the data.

A range like "last 24h" ends at the newest data when the newest data is older than now
(a demo database, a replay, a copy of last month's file): the page then shows data
instead of an empty window, and says where the range ends. On a live system the newest
sample is seconds old, so this is the usual "last 24 h".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from genobs.times import TimeParseError, parse_range

__all__ = ["TimeParseError", "Window", "parse_window", "anchor", "bucket_seconds", "bucket_label", "PRESETS"]

PRESETS: tuple[str, ...] = ("last 1h", "last 6h", "last 24h", "last 7d", "last 30d")
DEFAULT_RANGE = "last 7d"



@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def parse_window(text: str, *, now: datetime) -> Window:
    """``text`` in genobs's range grammar (genobs.times), relative ranges ending at ``now``."""
    r = parse_range(text, now=now)
    return Window(r.start, r.end)


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
