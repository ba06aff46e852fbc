"""The one time grammar (genobs.times): every form DESIGN §4 lists, and errors that name the
argument and the accepted forms."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from genobs.evaluators.windows import parse_window
from genobs.times import TimeParseError, format_duration, parse_duration, parse_instant, parse_range

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("5m", 300), ("5min", 300), ("2h", 7200), ("7d", 604800),
                                           ("1w", 604800), ("1.5h", 5400), (" 24H ", 86400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-16T12:00:00Z", datetime(2026, 11, 16, 12, tzinfo=timezone.utc)),
    ("2026-11-16T12:00:00", datetime(2026, 11, 16, 12, tzinfo=timezone.utc)),           # no offset: UTC
    ("2026-11-16T13:00:00+01:00", datetime(2026, 11, 16, 12, tzinfo=timezone.utc)),
    ("2026-11-16", datetime(2026, 11, 16, tzinfo=timezone.utc)),
    ("1763294400", datetime(2025, 11, 16, 12, tzinfo=timezone.utc)),                     # epoch seconds
    ("1763294400000", datetime(2025, 11, 16, 12, tzinfo=timezone.utc)),                  # epoch milliseconds
    ("253402300799", datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),          # 12 digits: seconds
    ("now", NOW),
    ("today", datetime(2026, 11, 22, tzinfo=timezone.utc)),
    ("24h", NOW - timedelta(hours=24)),
])
def test_instants(text: str, expected: datetime) -> None:
    assert parse_instant(text, now=NOW) == expected


def test_ranges() -> None:
    last = parse_range("last 30s", now=NOW)
    assert last.end - last.start == timedelta(seconds=30) and last.contains(NOW)
    assert parse_range("24h", now=NOW).start == parse_range("last 24h", now=NOW).start
    day = parse_range("2026-11-16..2026-11-19", now=NOW)
    assert (day.start, day.end) == (datetime(2026, 11, 16, tzinfo=timezone.utc),
                                    datetime(2026, 11, 20, tzinfo=timezone.utc))  # a date end includes that day
    open_end = parse_range("2026-11-16T12:00Z..", now=NOW)
    assert open_end.end is None and open_end.contains(NOW)
    today = parse_range("today", now=NOW)
    assert today.start == datetime(2026, 11, 22, tzinfo=timezone.utc) and today.contains(NOW)


def test_errors_name_the_argument_and_the_accepted_forms() -> None:
    with pytest.raises(TimeParseError, match=r"--since 'yesterday-ish' is not a time \(expected RFC 3339"):
        parse_instant("yesterday-ish", name="--since")
    with pytest.raises(TimeParseError, match=r"--current 'last week' is not a time range \(expected A\.\.B"):
        parse_range("last week", name="--current")
    with pytest.raises(TimeParseError, match="the end must be after the start"):
        parse_range("2026-11-19..2026-11-16")
    with pytest.raises(TimeParseError, match="positive"):
        parse_duration("0s")


def test_format_duration_round_trips() -> None:
    for text in ("30s", "5m", "2h", "7d", "1w", "90m"):
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_evaluate_and_drift_windows_share_the_grammar() -> None:
    """`genobs evaluate --since 30s` and `genobs drift --current "last 30s"` mean the same span."""
    from genobs.evaluators.runner import parse_time

    since = parse_time("30s")
    assert since is not None and abs((datetime.now(timezone.utc) - since).total_seconds() - 30) < 5
    window = parse_window("last 30s", newest=NOW)
    assert window.end - window.start == timedelta(seconds=30)
    assert parse_window("today", newest=NOW).start == datetime(2026, 11, 22, tzinfo=timezone.utc)
    epoch = parse_window("1763294400..1763380800", newest=NOW)
    assert epoch.end - epoch.start == timedelta(days=1)
