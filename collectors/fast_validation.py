"""Validation of a few samples in plain Python: the small-batch path of the ingest pipeline.

The vectorised query of collectors/validation.py costs tens of milliseconds to plan, which
dominates a request that carries one record. For small inputs the pipeline checks the
records here instead, from the same specs (genobs/records.py), with the same lenient and
strict rules, the same messages, defaults, price-table cost, unknown keys kept as
attributes and the same redaction patterns (collectors/redaction.py, run with Python's
``re``).

Exact agreement with the SQL path matters more than coverage: whenever a record holds
something whose DuckDB reading this module does not reproduce exactly (invalid JSON or
UTF-8, duplicate keys, a timestamp that is not plain RFC 3339 or epoch, a number in an
unusual spelling, very large numbers, a string holding JSON, long runs that Python's regex
engine would scan slowly...), ``check_lines`` returns ``None`` and the caller uses the SQL
path for the whole input. tests/test_validation_paths.py feeds the same corpus through
both paths and compares every column, error and count.
"""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from genobs import jsontext
from genobs.collectors import redaction
from genobs.collectors.validation import TIMESTAMP_RANGE_TEXT
from genobs.records import (
    EPOCH_MS_FROM,
    IDENTIFIER_BAD_CHARS_PY,
    MAX_EPOCH_US,
    MAX_EXACT_INTEGER,
    MAX_NESTING_DEPTH,
    WHITESPACE_ONLY_PY,
    REDACTED_LIST_FIELDS,
    REDACTED_TEXT_FIELDS,
    SAMPLE_FIELDS,
    FieldSpec,
    Kind,
)


class _Decline(Exception):
    """This input needs the SQL path."""


@dataclass
class CheckedRow:
    line: int
    values: dict[str, Any]          # the samples columns (timestamp as epoch microseconds)
    errors: list[str]
    pii: bool
    raw: str


@dataclass
class CheckedBatch:
    rows: list[CheckedRow] = field(default_factory=list)   # non-blank lines, in order


_KNOWN = frozenset(spec.name for spec in SAMPLE_FIELDS)
_RE2_NON_SPACE = re.compile(r"[^\t\n\f\r ]")
_RISKY_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Every character DuckDB's text-to-DOUBLE cast may accept (digits, signs, point, exponent,
# digit separators, whitespace it trims, inf/infinity/nan in any case).
_NUMBER_CHARS = frozenset("0123456789+-._eEinfatyINFATY \t\n\r\v\f")
_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_EPOCH_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT64 = 2**63
_EXACT_INT = 2**53
_NUMERIC_TYPES = ("UBIGINT", "BIGINT", "DOUBLE", "HUGEINT")
_BAD_IDENTIFIER = re.compile(IDENTIFIER_BAD_CHARS_PY)
_WHITESPACE_ONLY = re.compile(WHITESPACE_ONLY_PY)
TOO_DEEP_MESSAGE = f"record: nested deeper than {MAX_NESTING_DEPTH} levels (the limit for objects and arrays)"


def _identifier_errors(name: str, value: str, errors: list[str]) -> None:
    """What validation.py's identifier checks say, in the same order."""
    if value.isprintable() and not value.isspace():
        # The common case, two calls in C: every character the two classes name is a
        # control, format or separator character, which str.isprintable refuses, except the
        # plain space (tests/test_hardening.py checks this of every code point). So a
        # printable value holds no bad character, and is whitespace only if all spaces.
        return
    if _BAD_IDENTIFIER.search(value):
        errors.append(f"{name}: contains a control or bidirectional-formatting character")
    if _WHITESPACE_ONLY.search(value):
        errors.append(f"{name}: only whitespace")


# -- JSON as DuckDB's reader sees it ------------------------------------------------------

def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Decline("duplicate keys")   # DuckDB keeps the first, Python the last
    return obj


def _int(text: str) -> int:
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise _Decline("integer beyond 64 bits")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Decline("non-finite number")
    return value


def _constant(text: str) -> Any:
    raise _Decline(f"JSON constant {text}")


_decoder = json.JSONDecoder(object_pairs_hook=_pairs, parse_int=_int, parse_float=_float,
                            parse_constant=_constant)


def _json_type(value: Any) -> str | None:
    """DuckDB's json_type of a value (None: absent or null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, str):
        return "VARCHAR"
    if isinstance(value, int):
        return "UBIGINT" if value >= 0 else "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, dict):
        return "OBJECT"
    return "ARRAY"


def _float_text(value: float) -> str:
    """A DOUBLE as DuckDB prints it (shortest round trip, Python's repr for these ranges)."""
    return repr(value)


def _json_float_text(value: float) -> str:
    """A float inside serialised JSON (yyjson): only ranges where it writes Python's repr."""
    magnitude = abs(value)
    if magnitude >= 1e15 or (magnitude < 1e-4 and value != 0.0):
        raise _Decline("float written differently by yyjson")
    return repr(value)


_LOWER_HEX_ESCAPE = re.compile(r"(\\+)u00([0-9a-f]{2})")


def _json_string(text: str) -> str:
    """A JSON string as yyjson writes it: like Python's, but \\u escapes in upper-case hex."""
    out = json.dumps(text, ensure_ascii=False)
    if "\\u00" in out:
        out = _LOWER_HEX_ESCAPE.sub(
            lambda m: m.group(0) if len(m.group(1)) % 2 == 0 else f"{m.group(1)}u00{m.group(2).upper()}", out)
    return out


def _dumps(value: Any) -> str:
    """Compact JSON text as DuckDB's JSON writer makes it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float_text(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_string(k)}:{_dumps(v)}" for k, v in value.items()) + "}"
    return "[" + ",".join(_dumps(v) for v in value) + "]"


def _raw(value: Any) -> str:
    """The field as written, for messages: left(CAST(json_extract(...) AS VARCHAR), 80)."""
    text = _dumps(value)
    if not text.isascii():
        raise _Decline("non-ASCII text in a message")   # left() counts what Python may not
    return text[:80]


def _as_varchar(value: Any) -> str:
    """json_transform to VARCHAR."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    return _dumps(value)


def _as_double(value: Any) -> float | None:
    """json_transform to DOUBLE, for the values this module reads (others decline)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) >= _EXACT_INT:
            raise _Decline("integer beyond double precision")
        return float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        if _NUMBER_TEXT.fullmatch(value):
            number = float(value)
            if not math.isfinite(number):
                raise _Decline("non-finite number")
            return number
        if not set(value) <= _NUMBER_CHARS:
            return None                 # a character no spelling of a number has
        raise _Decline("a string DuckDB may read as a number")
    return None


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 as DuckDB's json_merge_patch (yyjson) does it: the target's keys that the
    patch leaves alone first, then the patch's keys in its order; a null removes a key."""
    if not isinstance(patch, dict):
        return patch
    base = target if isinstance(target, dict) else {}
    result = {k: v for k, v in base.items() if k not in patch}
    for key, value in patch.items():
        if value is not None:
            result[key] = _merge_patch(base.get(key), value)
    return result


# -- fields ---------------------------------------------------------------------------------

def _timestamp_us(value: Any, t: str) -> int | None:
    """Epoch microseconds, or None where the SQL path finds no time (an error)."""
    if t == "VARCHAR":
        match = _RFC3339.fullmatch(value)
        if match:
            year, hour, minute, second, zone = match.group(1, 4, 5, 6, 8)
            if hour > "23" or minute > "59" or second > "59":     # two digits each
                raise _Decline("time field out of range")
            if zone and zone != "Z":
                if zone[1:3] > "23" or zone[4:6] > "59":
                    raise _Decline("offset out of range")
                if year in ("0001", "9999"):
                    raise _Decline("an offset at the edge of the calendar")
            try:
                moment = datetime.fromisoformat(value)   # the regex has checked the form
            except ValueError:
                raise _Decline("not a calendar date") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            delta = moment - _UNIX_EPOCH
            return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
        if _EPOCH_TEXT.fullmatch(value):
            return _epoch_us(float(value))
        lowered = value.lower()
        if _WORDS.fullmatch(value) and not any(w in lowered for w in ("inf", "nan", "epoch")):
            return None
        raise _Decline("a time in a form only DuckDB reads")
    # A JSON number: DuckDB reads its text as a time first (never succeeds for plain
    # numbers), then as epoch seconds/milliseconds.
    if isinstance(value, int):
        if abs(value) >= _EXACT_INT:
            raise _Decline("integer beyond double precision")
        return _epoch_us(float(value))
    if "e" in repr(value):
        raise _Decline("number in exponent form")
    return _epoch_us(value)


_OUT_OF_RANGE_US = -(10**18)   # an epoch number outside the range (validation.py's _OUT_OF_RANGE)


def _epoch_us(x: float) -> int | None:
    if not math.isfinite(x):
        return None
    if not 0 <= x < EPOCH_MS_FROM * 1000:
        return _OUT_OF_RANGE_US
    if x == math.floor(x):      # whole: exact integer microseconds, as validation.py
        return int(x) * (1_000_000 if x < EPOCH_MS_FROM else 1000)
    seconds = x if x < EPOCH_MS_FROM else x / 1000.0
    micros = seconds * 1000000.0
    return round(micros)       # half to even, as DuckDB's double -> BIGINT cast


def _in_range(micros: int) -> bool:
    return 0 <= micros < MAX_EPOCH_US


def _check_field(spec: FieldSpec, value: Any, errors: list[str]) -> Any:
    """The column value of one field (before defaults); appends its errors in SQL order."""
    name, kind = spec.name, spec.kind
    t = _json_type(value)
    present = t is not None

    if kind in (Kind.STRING, Kind.ENUM):
        v = None if value is None else _as_varchar(value)
        out = v if t not in ("OBJECT", "ARRAY") else None
        if t in ("OBJECT", "ARRAY"):
            errors.append(f"{name}: expected a string, got {t.lower()}")
        if spec.max_length and v is not None and len(v) > spec.max_length and len(v.encode()) > spec.max_length:
            errors.append(f"{name}: {len(v)} characters, over the limit of {spec.max_length}")
        if spec.identifier and v is not None:
            _identifier_errors(name, v, errors)
        if kind is Kind.ENUM:
            lowered = v.lower() if v is not None else None
            if lowered is not None and not lowered.isascii():
                raise _Decline("non-ASCII enum value")
            if present and lowered not in spec.choices:
                errors.append(f"{name}: {_raw(value)} is not one of {', '.join(spec.choices)}")
            out = lowered if lowered in spec.choices else None
        if spec.required:
            if not present:
                errors.append(f"{name}: missing (required)")
            elif v == "":
                errors.append(f"{name}: empty (required)")
        return out

    if kind in (Kind.NUMBER, Kind.INTEGER, Kind.FEEDBACK):
        v = None if value is None else _as_double(value)
        number = v if (t in _NUMERIC_TYPES or t == "VARCHAR") else None
        if present and number is None:
            errors.append(f"{name}: expected a number, got {_raw(value)}")
        if kind is Kind.INTEGER:
            if v is not None and v != math.floor(v):
                errors.append(f"{name}: expected an integer, got {_float_text(v)}")
            if v is not None and abs(v) > MAX_EXACT_INTEGER:
                errors.append(f"{name}: {_raw(value)} is outside the integer range "
                              f"-{MAX_EXACT_INTEGER}..{MAX_EXACT_INTEGER}")
            out = int(number) if (number is not None and v == math.floor(v) and abs(v) <= MAX_EXACT_INTEGER) else None
        elif kind is Kind.FEEDBACK:
            if v is not None and v not in (-1.0, 0.0, 1.0):
                errors.append(f"{name}: must be -1, 0 or 1, got {_float_text(v)}")
            out = int(number) if (number is not None and v in (-1.0, 0.0, 1.0)) else None
        else:
            out = number
        if spec.minimum is not None and v is not None and v < spec.minimum:
            errors.append(f"{name}: must be >= {spec.minimum:g}, got {_float_text(v)}")
        if spec.required and not present:
            errors.append(f"{name}: missing (required)")
        return out

    if kind is Kind.BOOLEAN:
        out = None
        if t == "BOOLEAN":
            out = value
        elif present:
            word = _as_varchar(value).strip(" ").lower()
            if word in ("true", "yes", "1", "1.0"):
                out = True
            elif word in ("false", "no", "0", "0.0"):
                out = False
        if present and out is None:
            errors.append(f"{name}: expected true or false, got {_raw(value)}")
        return out

    if kind is Kind.TIMESTAMP:
        out = None
        if t == "VARCHAR" or t in _NUMERIC_TYPES:
            out = _timestamp_us(value, t)
        if present and out is None:
            errors.append(f"{name}: {_raw(value)} is not an RFC 3339 time or epoch seconds/milliseconds")
        elif present and not _in_range(out):
            errors.append(f"{name}: {_raw(value)} is outside the accepted range {TIMESTAMP_RANGE_TEXT}")
            out = None
        if spec.required and not present:
            errors.append(f"{name}: missing (required)")
        return out

    if kind is Kind.STRING_LIST:
        out = None
        if t == "ARRAY":
            if not all(x is None or isinstance(x, str) for x in value):
                raise _Decline("list of non-strings")
            out = list(value)
        elif t == "VARCHAR":
            if value.lstrip().startswith("["):
                raise _Decline("a string holding a JSON array")
            out = [value]
        if present and out is None:
            errors.append(f"{name}: expected a list of strings")
        if spec.max_length and t == "ARRAY":
            sizes = [len(x.encode()) for x in value if x is not None]
            if sizes and sum(sizes) > spec.max_length:
                errors.append(f"{name}: {sum(sizes)} bytes in all, over the limit of {spec.max_length}")
        return out

    if kind is Kind.OBJECT:
        out = None
        if t == "OBJECT":
            out = value
        elif t == "VARCHAR" and value.lstrip().startswith("{"):
            raise _Decline("a string holding a JSON object")
        if present and out is None:
            errors.append(f"{name}: expected an object, got {t.lower()}")
        return out

    raise AssertionError(f"unhandled kind {kind}")


def _fast_checker(spec: FieldSpec) -> Callable[[Any, list[str]], Any]:
    """A checker for the common, valid case of one field; anything else goes to _check_field
    (which then finds the same value, or the errors in the same order)."""
    name, kind, max_length, minimum = spec.name, spec.kind, spec.max_length, spec.minimum

    def slow(value: Any, errors: list[str]) -> Any:
        return _check_field(spec, value, errors)

    if kind is Kind.STRING:
        required, identifier = spec.required, spec.identifier

        def string(value: Any, errors: list[str]) -> Any:
            if type(value) is not str:
                return _check_field(spec, value, errors)
            if max_length and len(value) > max_length and len(value.encode()) > max_length:
                errors.append(f"{name}: {len(value)} characters, over the limit of {max_length}")
            if identifier and (not value.isprintable() or value.isspace()):   # _identifier_errors' test, inlined
                _identifier_errors(name, value, errors)
            if required and value == "":
                errors.append(f"{name}: empty (required)")
            return value
        return string
    if kind is Kind.ENUM and not spec.required:
        choices = frozenset(spec.choices)

        def enum(value: Any, errors: list[str]) -> Any:
            if type(value) is str and value in choices:
                return value
            return _check_field(spec, value, errors)
        return enum
    if kind is Kind.NUMBER and not spec.required:
        low = float("-inf") if minimum is None else minimum

        def number(value: Any, errors: list[str]) -> Any:
            t = type(value)
            if t is float and value >= low:
                return value
            if t is int and value >= low and -_EXACT_INT < value < _EXACT_INT:
                return float(value)
            return _check_field(spec, value, errors)
        return number
    if kind is Kind.INTEGER and not spec.required:
        low = float("-inf") if minimum is None else minimum

        def integer(value: Any, errors: list[str]) -> Any:
            if type(value) is int and value >= low and -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER:
                return value
            return _check_field(spec, value, errors)
        return integer
    if kind is Kind.BOOLEAN:
        def boolean(value: Any, errors: list[str]) -> Any:
            return value if type(value) is bool else _check_field(spec, value, errors)
        return boolean
    if kind is Kind.TIMESTAMP:
        def timestamp(value: Any, errors: list[str]) -> Any:
            if type(value) is str:
                micros = _timestamp_us(value, "VARCHAR")
                if micros is not None and 0 <= micros < MAX_EPOCH_US:     # _in_range, inlined
                    return micros
            return _check_field(spec, value, errors)
        return timestamp
    return slow


# (name, required, checker) per sample field, in order; the fields with a default.
_CHECKERS: tuple[tuple[str, bool, Callable[[Any, list[str]], Any]], ...] = tuple(
    (spec.name, spec.required, _fast_checker(spec)) for spec in SAMPLE_FIELDS
)
_DEFAULTS: tuple[tuple[str, Any], ...] = tuple(
    (spec.name, spec.default) for spec in SAMPLE_FIELDS if spec.default is not None
)


def _check_object(obj: dict[str, Any], prices: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []
    values: dict[str, Any] = {}
    get = obj.get
    for name, required, check in _CHECKERS:
        value = get(name)
        if value is None:                       # absent (or null): only "required" to say
            if required:
                errors.append(f"{name}: missing (required)")
            values[name] = None
        else:
            values[name] = check(value, errors)

    extra_keys = obj.keys() - _KNOWN
    attributes = values["attributes"]
    if extra_keys:
        extra = {k: v for k, v in obj.items() if k in extra_keys}   # in the record's order
        for key in extra:
            if not key or '"' in key or "\\" in key or not key.isprintable():
                raise _Decline("an unusual key")
        attributes = _merge_patch(attributes, extra)
    values["attributes"] = None if attributes is None else _dumps(attributes)

    if prices and values["cost_usd"] is None and not errors:
        price = prices.get(values["model"])
        tokens_in = None if obj.get("input_tokens") is None else _as_double(obj["input_tokens"])
        tokens_out = None if obj.get("output_tokens") is None else _as_double(obj["output_tokens"])
        if price is not None and (tokens_in is not None or tokens_out is not None):
            values["cost_usd"] = ((tokens_in or 0.0) * float(price.input_per_mtok)
                                  + (tokens_out or 0.0) * float(price.output_per_mtok)) / 1e6
    for name, default in _DEFAULTS:
        if values[name] is None:
            values[name] = default
    return values, errors


_REDACTED_TEXTS = operator.itemgetter(*REDACTED_TEXT_FIELDS, "attributes")


def _texts(values: dict[str, Any]) -> list[str]:
    """The texts redaction reads: the text fields, attributes (JSON text), list items."""
    texts = [x for x in _REDACTED_TEXTS(values) if x is not None]
    for n in REDACTED_LIST_FIELDS:
        if values[n]:
            texts.extend(x for x in values[n] if x is not None)
    return texts


# -- a cheap prefilter for the redaction patterns -----------------------------------------
# Python's backtracking engine tries the combined pattern (redaction.PY_ANY_PATTERN) at
# every position of the text: over 100 us for a record of a few hundred characters, more
# than all the rest of its checks. Every pattern needs something rare in ordinary text,
# found here by substring tests in C and one small regex: a text none of them has skips
# the search, and one that has some is searched with those patterns' own regexes only
# (a search of an alternation finds a match exactly when one of its branches does).
# Each test is a necessary condition of its pattern; tests/test_validation_paths.py checks
# pii_found against the combined search on the corpus and on generated text.
_GH_TOKEN = re.compile(r"gh[pousr]_")
# One translation of the UTF-8 bytes: digits to "0", the separators of card, SSN and phone
# numbers to "-" (a superset: "." is no card separator), capital letters to "A". A North
# American phone number holds "000-0000" then, an SSN "000-00-0000", a bare national
# number "0000000000", an IBAN "AA00", and a card number 13 digits with at most one
# separator between two: 13 "0" in a row once the separators are taken out.
_SHAPES = bytes.maketrans(b"0123456789 .-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                          b"0000000000---" + b"A" * 26)
_CARD_RUN = b"0" * 13
_PY_REGEX = {p.name: rx for p, rx in redaction.PY_PATTERNS}
_GATED = ("aws_secret_key", "api_key", "bearer_token", "email", "iban", "card_number", "ssn", "phone")
# Every pattern has its condition below (a new one needs its own, or it would never run).
if set(_PY_REGEX) != set(_GATED):
    raise AssertionError(f"redaction patterns without a prefilter condition: {set(_PY_REGEX) - set(_GATED)}")
_AWS_SECRET, _API_KEY, _BEARER, _EMAIL, _IBAN, _CARD, _SSN, _PHONE = (_PY_REGEX[name] for name in _GATED)


def _pii_candidates(text: str) -> list["re.Pattern[str]"]:
    """The regexes of the redaction patterns that may match ``text`` (each one's necessary
    condition holds); the others cannot. Straight-line substring tests: this runs for
    every record, so each Python operation counts."""
    found: list["re.Pattern[str]"] = []
    # (a one-character test, a memchr, guards each longer one: most texts lack the rare
    # character, and the substring search costs several times more)
    akia = "K" in text and "AKIA" in text
    lowered = text.lower()           # (?i:...) is ASCII case-insensitive (re.ASCII)
    if akia or "secret" in lowered:
        found.append(_AWS_SECRET)
    if (akia or "sk-" in text or ("x" in text and "xox" in text) or ("z" in text and "AIza" in text)
            or ("J" in text and "eyJ" in text)
            or ("_" in text and ("hf_" in text or "github_pat_" in text or _GH_TOKEN.search(text)))):
        found.append(_API_KEY)
    if "bearer" in lowered:
        found.append(_BEARER)
    if "@" in text:
        found.append(_EMAIL)
    shapes = text.encode("utf-8", "surrogatepass").translate(_SHAPES)
    if b"0" in shapes:
        if b"AA00" in shapes:
            found.append(_IBAN)
        if shapes.count(b"0") >= len(_CARD_RUN) and _CARD_RUN in shapes.replace(b"-", b""):
            found.append(_CARD)
        if b"000-00-0000" in shapes:
            found.append(_SSN)
        if "+" in text or b"000-0000" in shapes or b"0000000000" in shapes:   # +CC... phones
            found.append(_PHONE)
    return found


def may_have_pii(text: str) -> bool:
    """False only when no redaction pattern can match ``text``."""
    return bool(_pii_candidates(text))


def pii_found(text: str) -> bool:
    """Whether a redaction pattern matches ``text``: redaction.has_pii, searching only the
    patterns that may match."""
    for regex in _pii_candidates(text):
        if regex.search(text):
            return True
    return False


def check_lines(
    lines: Sequence[bytes], first_line: int, *, redact: bool, prices: Mapping[str, Any] | None = None,
    max_text_chars: int = 1 << 20,
) -> CheckedBatch | None:
    """Check JSON object texts (``first_line`` numbers the first); None: use the SQL path.

    ``prices``: model -> an object with ``input_per_mtok`` and ``output_per_mtok``.
    """
    batch = CheckedBatch()
    try:
        for offset, raw in enumerate(lines):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _Decline("not UTF-8") from None
            if not _RE2_NON_SPACE.search(text):
                continue                    # a blank line is no record
            # (a record with no more brackets than the limit cannot nest deeper: two counts
            # in C spare the scan of almost every record)
            if (text.count("{") + text.count("[") > MAX_NESTING_DEPTH
                    and jsontext.is_too_deep(text, MAX_NESTING_DEPTH)):
                # rejected as a whole, before any parse (which would recurse that deep)
                batch.rows.append(CheckedRow(first_line + offset, {"request_id": None}, [TOO_DEEP_MESSAGE],
                                             False, text))
                continue
            if "\x00" in text or ("\\u" in text and _RISKY_ESCAPE.search(text)):
                raise _Decline("NUL or surrogate escapes")
            try:
                obj = _decoder.decode(text)
            except ValueError:
                raise _Decline("not JSON as Python reads it") from None
            if not isinstance(obj, dict):
                raise _Decline("not an object")
            values, errors = _check_object(obj, prices or {})
            pii = False
            if redact and not errors:
                # One scan of the texts joined by \x01, which no pattern matches across.
                joined = "\x01".join(_texts(values))
                if len(joined) > max_text_chars:
                    raise _Decline("long texts: RE2 scans them faster")
                if redaction.PY_UNSAFE_RUN.search(joined):
                    raise _Decline("a long run of token characters")
                pii = pii_found(joined)
            batch.rows.append(CheckedRow(first_line + offset, values, errors, pii, text))
    except _Decline:
        return None
    return batch


def redact_row(values: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """The row with PII replaced; adds its per-pattern counts (on the original text) to ``counts``."""
    out = dict(values)
    for text in _texts(values):
        for name, n in redaction.count_matches(text).items():
            counts[name] = counts.get(name, 0) + n
    for n in REDACTED_TEXT_FIELDS:
        out[n] = redaction.redact_text(values[n])
    for n in REDACTED_LIST_FIELDS:
        if values[n] is not None:
            out[n] = [redaction.redact_text(x) for x in values[n]]
    out["attributes"] = redaction.redacted_json(values["attributes"], redaction.redact_text(values["attributes"]))
    return out
