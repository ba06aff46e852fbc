"""Generated sample records, valid and mutated, and the oracle that checks what the store
made of them (tests/test_ingest_fuzz.py runs them bounded; bench/fuzz_ingest.py longer).

A valid record is built from values whose stored form is known (a timestamp in range,
integers within ±(2^53-1), text that may hold PII snippets); a mutated record is a valid
one with one field replaced by a value of a class that must be rejected (or a line that is
not a record at all), with the field the rejection must name. The oracle:

- every valid record reads back equal to what was sent, its text fields as the redactor
  makes them (collectors/redaction.redact_text) and no PII snippet left in clear;
- every mutated record is in ``dead_letter`` with an error naming the field, and the PII
  snippets in it are redacted there too;
- nothing else is stored, and no request answers 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from genobs.collectors import redaction

# PII that must never be at rest in clear (each is matched by a redaction pattern).
PII_SNIPPETS: tuple[str, ...] = (
    "alice@example.com",
    "4111 1111 1111 1111",
    "+49 (0)30 123456",
    "(415) 555-2671",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
)
# The parts of the snippets that identify a person or grant access.
SECRETS: tuple[str, ...] = (
    "alice@example.com", "4111 1111 1111 1111", "(0)30 123456", "555-2671", "3704 0044 0532",
    "123-45-6789", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
)

_LOW = datetime(1970, 1, 2, tzinfo=timezone.utc)
_HIGH = datetime(9999, 12, 30, tzinfo=timezone.utc)
# Words and digits that cannot complete a PII pattern around a snippet (no digits next to
# it: a digit beside a card number changes what it is).
_PLAIN = st.text(alphabet="abcdefghij klmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ éü中文🙂,;!?", max_size=30)
_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=20)


@st.composite
def text_with_pii(draw: st.DrawFn) -> str:
    before, after = draw(_PLAIN), draw(_PLAIN)
    if draw(st.booleans()):
        return f"{before} {draw(st.sampled_from(PII_SNIPPETS))} {after}"
    return before + after


@st.composite
def timestamp_value(draw: st.DrawFn) -> tuple[Any, datetime]:
    """(the value as sent, the instant it must be stored as)."""
    moment = draw(st.datetimes(min_value=_LOW.replace(tzinfo=None), max_value=_HIGH.replace(tzinfo=None),
                               timezones=st.just(timezone.utc)))
    form = draw(st.sampled_from(["rfc3339", "offset", "seconds", "millis"]))
    if form == "rfc3339":
        return moment.isoformat().replace("+00:00", "Z"), moment
    if form == "offset":
        local = moment.astimezone(timezone(timedelta(hours=2)))
        if local.year > 9999:
            return moment.isoformat(), moment
        return local.isoformat(), moment
    if form == "seconds":
        whole = moment.replace(microsecond=0)
        return int(whole.timestamp()), whole
    if moment.year >= 1979:   # before 1978-01-11 a millisecond count reads as seconds (documented)
        millis = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        return int(millis.timestamp()) * 1000 + millis.microsecond // 1000, millis
    whole = moment.replace(microsecond=0)
    return int(whole.timestamp()), whole


_ATTRIBUTE_VALUES = st.one_of(
    st.integers(min_value=-(10**8), max_value=10**8),
    st.floats(min_value=-1e5, max_value=1e5, allow_nan=False),
    st.booleans(),
    st.text(alphabet="abcdefghij klmnop", max_size=12),
)


@st.composite
def valid_record(draw: st.DrawFn, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the record, what each of its fields must read back as)."""
    sent_ts, stored_ts = draw(timestamp_value())
    record: dict[str, Any] = {
        "request_id": request_id,
        "timestamp": sent_ts,
        "model": draw(_LABEL),
        "model_version": draw(_LABEL),
    }
    expected: dict[str, Any] = {"request_id": request_id, "timestamp": stored_ts}
    if draw(st.booleans()):
        record["service"] = draw(_LABEL)
    if draw(st.booleans()):
        record["tenant"] = draw(text_with_pii()).strip() or "t"
    for name in ("prompt", "response"):
        if draw(st.booleans()):
            record[name] = draw(text_with_pii())
    if draw(st.booleans()):
        record["context"] = draw(st.lists(text_with_pii(), max_size=3))
    if draw(st.booleans()):
        record["latency_ms"] = draw(st.floats(min_value=0, max_value=1e9, allow_nan=False))
    if draw(st.booleans()):
        record["input_tokens"] = draw(st.integers(min_value=0, max_value=2**53 - 1))
    if draw(st.booleans()):
        record["attributes"] = draw(st.dictionaries(st.text(alphabet="abcdefgh_", min_size=1, max_size=8),
                                                    _ATTRIBUTE_VALUES, max_size=4))
    for name in ("model", "model_version", "service", "tenant", "prompt", "response"):
        if name in record:
            expected[name] = redaction.redact_text(record[name])
    if "context" in record:
        expected["context"] = [redaction.redact_text(x) for x in record["context"]]
    for name in ("latency_ms", "input_tokens"):
        if name in record:
            expected[name] = record[name]
    if record.get("attributes"):
        expected["attributes"] = record["attributes"]
    return record, expected


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


# (field to replace, bad value, what the rejection must name); None as the value: removed
MUTATIONS: tuple[tuple[str, Any, str], ...] = (
    ("timestamp", "not-a-time", "timestamp"),
    ("timestamp", "0000-12-31T00:00:00Z", "timestamp"),
    ("timestamp", "10000-01-01T00:00:00Z", "timestamp"),
    ("timestamp", -1, "timestamp"),
    ("timestamp", -62135596801, "timestamp"),
    ("timestamp", 1e300, "timestamp"),
    ("timestamp", 253402300800000, "timestamp"),
    ("input_tokens", 2**63 - 1, "input_tokens"),
    ("input_tokens", 2**64, "input_tokens"),
    ("input_tokens", 2**53, "input_tokens"),
    ("input_tokens", -1, "input_tokens"),
    ("input_tokens", 1.5, "input_tokens"),
    ("input_tokens", "many", "input_tokens"),
    ("latency_ms", -5, "latency_ms"),
    ("latency_ms", "fast", "latency_ms"),
    ("request_id", " ", "request_id"),
    ("request_id", "\x00", "request_id"),
    ("request_id", "a\u202eb", "request_id"),
    ("request_id", "", "request_id"),
    ("model", {"name": "m"}, "model"),
    ("model", None, "model"),
    ("tenant", "acme\u2066x", "tenant"),
    ("status", "weird", "status"),
    ("attributes", {"deep": _deep(80)}, "nested deeper"),
    ("context", [_deep(70)], "nested deeper"),
    ("prompt", _deep(200), "nested deeper"),
    ("", "", "a key is empty"),
)
# Unknown top-level keys that must be kept as attributes, whatever their characters.
ODD_KEYS: tuple[str, ...] = ("a*", "*", "[*]", "a/b", "a~b", "$", "$.x", "a.b", 'a"b', "a\\b", "..", "é", " ")
# Lines that are no record at all (NDJSON / JSONL only): (text, what the error names)
BAD_LINES: tuple[tuple[str, str], ...] = (
    ('{"request_id": "x", "prompt": "alice@example.com", "timestamp": ', "invalid JSON"),
    ('{"request_id": "x", "prompt": "\\ud800 4111 1111 1111 1111", "timestamp": 1, "model": "m", '
     '"model_version": "v"}', "lone UTF-16 surrogate"),
    ("[" * 1500 + "]" * 1500, "nested deeper"),
    ('["alice@example.com"]', "expected a JSON object"),
)


@dataclass
class Case:
    """One input: its lines, and per line what must become of it."""

    lines: list[bytes] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)   # request_id -> expected
    rejected: dict[int, str] = field(default_factory=dict)              # line -> what the error names


@st.composite
def case(draw: st.DrawFn, prefix: str, max_records: int = 6, bad_lines: bool = True) -> Case:
    """A mix of valid records, mutated records and (optionally) lines that are not records."""
    out = Case()
    count = draw(st.integers(min_value=1, max_value=max_records))
    for index in range(count):
        line = index + 1
        request_id = f"{prefix}-{index}"
        kind = draw(st.sampled_from(["valid", "valid", "mutated", "bad_line"] if bad_lines
                                    else ["valid", "valid", "mutated"]))
        if kind == "bad_line":
            text, names = draw(st.sampled_from(BAD_LINES))
            out.lines.append(text.encode())
            out.rejected[line] = names
            continue
        record, expected = draw(valid_record(request_id))
        if kind == "valid" and "attributes" not in record and draw(st.booleans()):
            key = draw(st.sampled_from(ODD_KEYS))
            record[key] = "kept"
            expected["attributes"] = {key: "kept"}
        if kind == "mutated":
            name, value, names = draw(st.sampled_from(MUTATIONS))
            if name == "":
                record[""] = value
            elif value is None:
                record.pop(name, None)
            else:
                record[name] = value
            if name != "prompt" and draw(st.booleans()):
                record["prompt"] = f"see {draw(st.sampled_from(PII_SNIPPETS))} here"
            out.rejected[line] = names
        else:
            out.accepted[request_id] = expected
        out.lines.append(json.dumps(record, ensure_ascii=draw(st.booleans())).encode())
    return out


def _as_utc(value: Any) -> Any:
    return value.astimezone(timezone.utc) if isinstance(value, datetime) else value


def check_stored(store: Any, case: Case, source: str) -> None:
    """The oracle (see the module docstring) for one input written under ``source``."""
    ids = list(case.accepted)
    columns = ["request_id", "timestamp", "model", "model_version", "service", "tenant", "prompt",
               "response", "context", "latency_ms", "input_tokens", "attributes"]
    rows = {r[0]: dict(zip(columns, r)) for r in store.fetchall(
        f"SELECT {', '.join(columns)} FROM samples WHERE request_id IN (SELECT unnest(?::VARCHAR[]))", [ids])}
    assert set(rows) == set(ids), f"accepted records missing: {set(ids) - set(rows)}"
    for rid, expected in case.accepted.items():
        row = rows[rid]
        for name, value in expected.items():
            got = row[name]
            if name == "attributes":
                got = json.loads(got)
            if name == "timestamp":
                got = _as_utc(got)
            assert got == value, (rid, name, got, value)
    dead = store.fetchall("SELECT line, raw, error FROM dead_letter WHERE source = ? ORDER BY line", [source])
    by_line = {line: (raw, error) for line, raw, error in dead}
    assert set(by_line) == set(case.rejected), (sorted(by_line), sorted(case.rejected), dead)
    for line, names in case.rejected.items():
        raw, error = by_line[line]
        assert names in error, (line, names, error)
    for raw, error in by_line.values():
        for secret in SECRETS:
            assert secret not in (raw or "") and secret not in error, (secret, raw, error)
