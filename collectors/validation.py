"""Vectorised validation of samples: one DuckDB query turns JSON texts into typed sample
rows plus, per row, the list of what is wrong with it.

The query reads ``_genobs_input(line BIGINT, text VARCHAR)``, one JSON object per row
(``text`` NULL when the input line was not valid UTF-8). Each object is parsed once by
DuckDB's JSON reader, never by Python, into a struct that reads every field as text (a
number, a boolean or an object too), a list of strings or JSON, plus once more for its
keys (``json_keys``: unknown keys are kept as attributes, and a key's presence is told
from a null). Numbers are cast from their text; only a text that starts like an object or
array is looked at again (``json_type``) to tell which it was. Every check is then a SQL
expression over those columns, and the list of a row's errors is only built for rows that
fail one, so a file ingests close to DuckDB's own speed.

Lenient where it is unambiguous (a number given as a numeric string, a version given as a
number, ``"OK"`` for ``"ok"``), strict where it is not (a word where a number belongs, an
object where text belongs, a negative latency, an unknown status).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from genobs.id_index import hash_sql
from genobs.records import (
    EPOCH_MS_FROM,
    IDENTIFIER_BAD_CHARS_RE2,
    MAX_EXACT_INTEGER,
    MAX_TIMESTAMP_TEXT,
    MIN_TIMESTAMP_TEXT,
    SAMPLE_FIELDS,
    WHITESPACE_CLASS_RE2,
    WHITESPACE_ONLY_RE2,
    FieldSpec,
    Kind,
)

# Pseudo-fields a user may map (with --map) to derive timestamp and latency_ms from an
# export that records each call's start and end times.
DERIVED_TIME_FIELDS = ("start_time", "end_time")
ROW_HASH = "@row_hash"  # --map request_id=@row_hash: a stable id made from the row's content

NUMERIC = "('UBIGINT', 'BIGINT', 'DOUBLE', 'HUGEINT')"

# How the one parse of a row reads each kind (every other kind as VARCHAR: a number, a
# boolean, an object come as their text, checked and converted in SQL).
_PARSE_TYPE = {
    Kind.STRING_LIST: "VARCHAR[]",
    Kind.OBJECT: "JSON",
}
_NUMBER_KINDS = (Kind.NUMBER, Kind.INTEGER, Kind.FEEDBACK)

@dataclass(frozen=True)
class FieldMapping:
    """Where each sample field comes from in the input (``--map`` and ``--set``)."""

    columns: dict[str, str] = field(default_factory=dict)    # sample field -> input key
    constants: dict[str, str] = field(default_factory=dict)  # sample field -> value when absent

    def source_key(self, name: str) -> str:
        return self.columns.get(name, name)


class SqlParams:
    """Collects named parameters so user-supplied values are never spliced into SQL."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value: object) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def sql_literal(text: str) -> str:
    """A SQL string literal, for the few places DuckDB needs a constant (JSON paths and
    structures): quotes are doubled, so any text is safe."""
    return "'" + text.replace("'", "''") + "'"


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class _Field:
    """SQL for one field: its converted value and its checks (messages or NULL)."""

    value: str
    errors: list[str]


def _json_type_sql(json_text: str) -> str:
    """DuckDB's json_type of a JSON text (NULL for absent or null), from its first
    character; a number's text says which numeric type it is (for messages only)."""
    j = json_text
    number = (f"CASE WHEN regexp_matches({j}, '[.eE]') THEN 'DOUBLE' "
              f"WHEN left({j}, 1) = '-' THEN CASE WHEN TRY_CAST({j} AS BIGINT) IS NULL THEN 'DOUBLE' ELSE 'BIGINT' END "
              f"WHEN TRY_CAST({j} AS UBIGINT) IS NULL THEN 'DOUBLE' ELSE 'UBIGINT' END")
    return (f"CASE left({j}, 1) WHEN '\"' THEN 'VARCHAR' WHEN '{{' THEN 'OBJECT' "
            f"WHEN '[' THEN 'ARRAY' WHEN 't' THEN 'BOOLEAN' WHEN 'f' THEN 'BOOLEAN' WHEN 'n' THEN NULL "
            f"WHEN '' THEN NULL ELSE CASE WHEN {j} IS NOT NULL THEN {number} END END")


def _raw(path: str) -> str:
    # The field as written, for error messages only (evaluated on failing rows).
    return f"left(CAST(json_extract(text, {sql_literal(path)}) AS VARCHAR), 80)"


# An epoch number outside the accepted range parses to this (itself out of range), so it
# is told apart from text that is no time at all.
_OUT_OF_RANGE = "TIMESTAMPTZ '1000-01-01 00:00:00+00'"
_TS_LOW = f"TIMESTAMPTZ {sql_literal(MIN_TIMESTAMP_TEXT)}"
_TS_HIGH = "TIMESTAMPTZ '10000-01-01 00:00:00+00'"
TIMESTAMP_RANGE_TEXT = f"{MIN_TIMESTAMP_TEXT} to {MAX_TIMESTAMP_TEXT}"


def _timestamp(v: str) -> str:
    """RFC 3339 text, or epoch seconds/milliseconds as a number or numeric text (seconds
    below EPOCH_MS_FROM, milliseconds from there on; see genobs/records.py), not yet
    checked against the accepted range."""
    return (
        f"coalesce(TRY_CAST({v} AS TIMESTAMPTZ), list_transform([TRY_CAST(trim({v}) AS DOUBLE)], x -> "
        f"CASE WHEN x IS NULL OR NOT isfinite(x) THEN NULL "
        f"WHEN NOT (x >= 0 AND x < {EPOCH_MS_FROM * 1000}) THEN {_OUT_OF_RANGE} "
        # a whole number in integer microseconds (a double would round milliseconds)
        f"WHEN x = floor(x) THEN make_timestamptz(CAST(x AS BIGINT) * "
        f"CASE WHEN x < {EPOCH_MS_FROM} THEN 1000000 ELSE 1000 END) "
        f"ELSE to_timestamp(CASE WHEN x < {EPOCH_MS_FROM} THEN x ELSE x / 1000.0 END) END)[1])"
    )


# The identifier checks, two regexes per identifier field, cost more than all the other
# checks of a row together. One scan of the row's identifiers joined by "|" finds every row
# where one of them may fail (a bad character anywhere, or a field of whitespace only
# between two separators: a "|" inside a field can only add rows); only those rows run the
# exact per-field checks.
IDENTIFIER_SUSPECT = (f"{IDENTIFIER_BAD_CHARS_RE2}|(?:^|\\|){WHITESPACE_CLASS_RE2}+(?:\\||$)")
IDENTIFIER_SUSPECT_COLUMN = "identifier_suspect"


def _field_sql(spec: FieldSpec, v: str, t: str, path: str) -> _Field:
    """``v``: the value as json_transform read it; ``t``: its JSON type (NULL if absent)."""
    name = spec.name
    present = f"({t} IS NOT NULL)"
    errors: list[str] = []
    kind = spec.kind

    if kind in (Kind.STRING, Kind.ENUM):
        value = f"CASE WHEN {t} NOT IN ('OBJECT', 'ARRAY') THEN {v} END"
        errors.append(f"CASE WHEN {t} IN ('OBJECT', 'ARRAY') THEN '{name}: expected a string, got ' || lower({t}) END")
        if spec.max_length:
            errors.append(
                f"CASE WHEN strlen({v}) > {spec.max_length} AND length({v}) > {spec.max_length} THEN "
                f"'{name}: ' || length({v}) || ' characters, over the limit of {spec.max_length}' END"
            )
        if spec.identifier:
            # only in rows where the one scan of all identifiers (IDENTIFIER_SUSPECT) found something
            errors.append(f"CASE WHEN {IDENTIFIER_SUSPECT_COLUMN} AND "
                          f"regexp_matches({v}, {sql_literal(IDENTIFIER_BAD_CHARS_RE2)}) THEN "
                          f"'{name}: contains a control or bidirectional-formatting character' END")
            errors.append(f"CASE WHEN {IDENTIFIER_SUSPECT_COLUMN} AND "
                          f"regexp_matches({v}, {sql_literal(WHITESPACE_ONLY_RE2)}) THEN '{name}: only whitespace' END")
        if kind is Kind.ENUM:
            choices = "[" + ", ".join(sql_literal(c) for c in spec.choices) + "]"
            errors.append(
                f"CASE WHEN {present} AND NOT list_contains({choices}, lower({v})) THEN "
                f"'{name}: ' || {_raw(path)} || ' is not one of {', '.join(spec.choices)}' END"
            )
            value = f"CASE WHEN list_contains({choices}, lower({v})) THEN lower({v}) END"
        if spec.required:
            errors.append(f"CASE WHEN NOT {present} THEN '{name}: missing (required)' "
                          f"WHEN {v} = '' THEN '{name}: empty (required)' END")
        return _Field(value, errors)

    if kind in (Kind.NUMBER, Kind.INTEGER, Kind.FEEDBACK):
        number = f"CASE WHEN {t} IN {NUMERIC} OR {t} = 'VARCHAR' THEN {v} END"
        errors.append(f"CASE WHEN {present} AND ({number}) IS NULL THEN "
                      f"'{name}: expected a number, got ' || {_raw(path)} END")
        errors.append(f"CASE WHEN NOT isfinite({v}) THEN '{name}: not a finite number' END")
        if kind is Kind.INTEGER:
            errors.append(f"CASE WHEN {v} <> floor({v}) THEN '{name}: expected an integer, got ' || {v} END")
            errors.append(f"CASE WHEN abs({v}) > {MAX_EXACT_INTEGER} THEN '{name}: ' || {_raw(path)} "
                          f"|| ' is outside the integer range -{MAX_EXACT_INTEGER}..{MAX_EXACT_INTEGER}' END")
            value = f"CASE WHEN {v} = floor({v}) AND abs({v}) <= {MAX_EXACT_INTEGER} THEN CAST(({number}) AS BIGINT) END"
        elif kind is Kind.FEEDBACK:
            errors.append(f"CASE WHEN {v} NOT IN (-1, 0, 1) THEN '{name}: must be -1, 0 or 1, got ' || {v} END")
            value = f"CASE WHEN {v} IN (-1, 0, 1) THEN CAST(({number}) AS TINYINT) END"
        else:
            value = f"CASE WHEN isfinite({v}) THEN {number} END"
        if spec.minimum is not None:
            errors.append(f"CASE WHEN {v} < {spec.minimum} THEN '{name}: must be >= {spec.minimum:g}, got ' || {v} END")
        if spec.required:
            errors.append(f"CASE WHEN NOT {present} THEN '{name}: missing (required)' END")
        return _Field(value, errors)

    if kind is Kind.BOOLEAN:
        value = (f"CASE WHEN {t} = 'BOOLEAN' THEN {v} = 'true' "
                 f"WHEN lower(trim({v})) IN ('true', 'yes', '1', '1.0') THEN true "
                 f"WHEN lower(trim({v})) IN ('false', 'no', '0', '0.0') THEN false END")
        errors.append(f"CASE WHEN {present} AND ({value}) IS NULL THEN "
                      f"'{name}: expected true or false, got ' || {_raw(path)} END")
        return _Field(value, errors)

    if kind is Kind.TIMESTAMP:
        parsed = f"CASE WHEN {t} = 'VARCHAR' OR {t} IN {NUMERIC} THEN {_timestamp(v)} END"
        value = f"list_transform([{parsed}], p -> CASE WHEN p >= {_TS_LOW} AND p < {_TS_HIGH} THEN p END)[1]"
        errors.append(f"CASE WHEN {present} AND ({parsed}) IS NULL THEN '{name}: ' || {_raw(path)} "
                      f"|| ' is not an RFC 3339 time or epoch seconds/milliseconds' "
                      f"WHEN {present} AND ({value}) IS NULL THEN '{name}: ' || {_raw(path)} "
                      f"|| ' is outside the accepted range {TIMESTAMP_RANGE_TEXT}' END")
        if spec.required:
            errors.append(f"CASE WHEN NOT {present} THEN '{name}: missing (required)' END")
        return _Field(value, errors)

    if kind is Kind.STRING_LIST:
        # A JSON array of strings; a single string is a one-element list; a string that
        # holds a JSON array (a CSV cell) is that array.
        text = f"json_extract_string(text, {sql_literal(path)})"
        value = (f"CASE WHEN {t} = 'ARRAY' THEN {v} WHEN {t} = 'VARCHAR' THEN CASE "
                 f"WHEN json_valid({text}) AND json_type(CAST({text} AS JSON)) = 'ARRAY' "
                 f"THEN try(json_transform(CAST({text} AS JSON), '[\"VARCHAR\"]')) ELSE [{text}] END END")
        errors.append(f"CASE WHEN {present} AND ({value}) IS NULL THEN '{name}: expected a list of strings' END")
        if spec.max_length:
            total = f"list_sum(list_transform({v}, x -> strlen(x)))"
            errors.append(f"CASE WHEN {total} > {spec.max_length} THEN '{name}: ' || {total} "
                          f"|| ' bytes in all, over the limit of {spec.max_length}' END")
        return _Field(value, errors)

    if kind is Kind.OBJECT:
        # An object, or (a CSV cell) a string holding one.
        text = f"json_extract_string(text, {sql_literal(path)})"
        value = (f"CASE WHEN {t} = 'OBJECT' THEN {v} WHEN {t} = 'VARCHAR' AND json_valid({text}) "
                 f"AND json_type(CAST({text} AS JSON)) = 'OBJECT' THEN CAST({text} AS JSON) END")
        errors.append(f"CASE WHEN {present} AND ({value}) IS NULL THEN "
                      f"'{name}: expected an object, got ' || lower({t}) END")
        return _Field(value, errors)

    raise AssertionError(f"unhandled kind {kind}")


def build_validation_sql(mapping: FieldMapping, params: SqlParams, with_prices: bool) -> str:
    """The query that checks and types every row of ``_genobs_input(line, text)``.

    Output: line, request_id... (one column per samples field, defaults applied, cost
    computed from ``_genobs_prices(model, input_per_mtok, output_per_mtok)`` when
    ``with_prices``), ``errors`` (VARCHAR[], empty when the row is good) and
    ``request_hash`` (the request_id's 64-bit hash, as genobs/id_index.py makes it).
    """
    specs: dict[str, FieldSpec] = {spec.name: spec for spec in SAMPLE_FIELDS}
    derived = all(d in mapping.columns for d in DERIVED_TIME_FIELDS)
    if derived:
        for name in DERIVED_TIME_FIELDS:
            specs[name] = FieldSpec(name, Kind.TIMESTAMP)
    row_hash = mapping.source_key("request_id") == ROW_HASH
    read = {name: mapping.source_key(name) for name in specs if not (name == "request_id" and row_hash)}

    # One struct entry per input key, read as text (numbers, booleans, objects too), as a
    # list of strings, or as JSON.
    keys = sorted(set(read.values()))
    kind_of_key = {read[name]: specs[name].kind for name in read}
    structure = json.dumps({f"{key}": _PARSE_TYPE.get(kind_of_key[key], "VARCHAR") for key in keys})
    known = "[" + ", ".join(params.add(k) for k in keys) + "]::VARCHAR[]"

    def member(name: str) -> str:
        return f"s[{sql_literal(read[name])}]"

    def value_of(name: str) -> str:
        if name == "request_id" and row_hash:
            return "md5(rtrim(text, chr(13) || chr(10)))"
        expr = member(name)
        if name in mapping.constants:
            expr = f"coalesce({expr}, {params.add(mapping.constants[name])})"
        if specs[name].kind in _NUMBER_KINDS:
            expr = f"TRY_CAST({expr} AS DOUBLE)"
        return expr

    def type_of(name: str) -> str:
        if name == "request_id" and row_hash:
            return "'VARCHAR'"
        kind = specs[name].kind
        key = read[name]
        precise = f"nullif(json_type(text, {sql_literal(_json_path(key))}), 'NULL')"
        m = member(name)
        if kind is Kind.OBJECT:
            expr = _json_type_sql(m)
        elif kind is Kind.STRING_LIST:
            # NULL when absent, null or not an array: the JSON says which.
            expr = f"CASE WHEN {m} IS NOT NULL THEN 'ARRAY' WHEN list_contains(keys, {params.add(key)}) THEN {precise} END"
        else:
            # Read as text: only a text that may be an object or array needs a second look.
            expr = (f"CASE WHEN {m} IS NULL THEN NULL WHEN starts_with({m}, '{{') OR starts_with({m}, '[') "
                    f"THEN {precise} ELSE 'VARCHAR' END")
        if name in mapping.constants:
            expr = f"coalesce({expr}, 'VARCHAR')"
        return expr

    a_cols = [f'{value_of(n)} AS "v_{n}", {type_of(n)} AS "t_{n}"' for n in specs]
    identifiers = [value_of(n) for n, spec in specs.items() if spec.identifier]
    identifier_suspect = (f"coalesce(regexp_matches(concat_ws('|', {', '.join(identifiers)}), "
                          f"{sql_literal(IDENTIFIER_SUSPECT)}), false)" if identifiers else "false")
    # As many keys as known fields with a value: no unknown key (cheaper than comparing
    # the key lists; a null-valued or unknown key makes the lists be compared).
    present_count = " + ".join(f"CAST(s[{sql_literal(k)}] IS NOT NULL AS INTEGER)" for k in keys)

    fields = {
        name: _field_sql(spec, f'"v_{name}"', f'"t_{name}"', _json_path(read.get(name, name)))
        for name, spec in specs.items()
    }
    finals = {name: f.value for name, f in fields.items()}
    errors = [e for f in fields.values() for e in f.errors]
    # An empty key cannot be named in a JSON path, so it cannot become an attribute.
    errors.append("CASE WHEN empty_key THEN 'record: a key is empty (\"\"), which cannot be stored' END")

    if derived:
        errors.append(f"CASE WHEN ({finals['end_time']}) < ({finals['start_time']}) "
                      "THEN 'end_time: before start_time' END")
        if "timestamp" not in mapping.columns:
            errors = [e for e in errors if "'timestamp: missing (required)'" not in e]
            errors.append("CASE WHEN \"t_timestamp\" IS NULL AND \"t_start_time\" IS NULL "
                          "THEN 'timestamp: missing (required; or map start_time)' END")
            finals["timestamp"] = f"coalesce({finals['timestamp']}, {finals['start_time']})"
        if "latency_ms" not in mapping.columns:
            finals["latency_ms"] = (
                f"coalesce({finals['latency_ms']}, "
                f"(epoch_us({finals['end_time']}) - epoch_us({finals['start_time']})) / 1000.0)"
            )

    # Unknown top-level keys are kept, as attributes.
    finals["attributes"] = (
        f"CASE WHEN len(extra_keys) = 0 THEN {finals['attributes']} ELSE json_merge_patch("
        f"coalesce({finals['attributes']}, '{{}}'::JSON), to_json(map_from_entries(list_transform(extra_keys, "
        # a JSON pointer (RFC 6901), not a JSONPath: a key holding * or [*] would be read
        # as a wildcard in a path, which DuckDB refuses for a non-constant path (a 500)
        "k -> {'k': k, 'v': json_extract(text, '/' || replace(replace(k, '~', '~0'), '/', '~1'))})))) END"
    )
    if with_prices:
        finals["cost_usd"] = (
            f"coalesce({finals['cost_usd']}, CASE WHEN \"v_input_tokens\" IS NOT NULL "
            "OR \"v_output_tokens\" IS NOT NULL THEN (coalesce(\"v_input_tokens\", 0) * pr.input_per_mtok "
            "+ coalesce(\"v_output_tokens\", 0) * pr.output_per_mtok) / 1e6 END)"
        )

    out_cols = []
    for spec in SAMPLE_FIELDS:
        expr = finals[spec.name]
        if spec.default is not None:
            expr = f"coalesce({expr}, {sql_literal(spec.default)})"
        out_cols.append(f'{expr} AS "{spec.name}"')

    # The list is only built for rows with a problem: coalesce stops at the first one.
    errors_list = (
        "CASE WHEN coalesce(\n            " + ",\n            ".join(errors) + ") IS NULL THEN []::VARCHAR[] "
        "ELSE list_filter([\n            " + ",\n            ".join(errors) + "]::VARCHAR[], e -> e IS NOT NULL) END"
    )
    prices_join = 'LEFT JOIN _genobs_prices pr ON pr.model = fields."v_model"' if with_prices else ""
    out = ",\n    ".join(out_cols)
    return f"""
SELECT *, {hash_sql('request_id')} AS request_hash FROM (
SELECT line,
    {out},
    CASE WHEN text IS NULL THEN ['line is not valid UTF-8']
         WHEN s IS NULL THEN [CASE WHEN NOT json_valid(text) THEN 'invalid JSON'
                                   WHEN json_type(text) <> 'OBJECT'
                                   THEN 'expected a JSON object, got ' || lower(json_type(text))
                                   ELSE 'invalid JSON object' END]
         ELSE {errors_list} END AS errors
FROM (
    SELECT line, text, s, {", ".join(a_cols)},
        {identifier_suspect} AS {IDENTIFIER_SUSPECT_COLUMN},
        CASE WHEN s IS NULL OR len(keys) = {present_count} THEN []
             ELSE list_filter(keys, k -> k <> '' AND NOT list_contains({known}, k)) END AS extra_keys,
        coalesce(list_contains(keys, ''), false) AS empty_key
    FROM (
        SELECT line, text, s, CASE WHEN s IS NOT NULL THEN json_keys(text) END AS keys
        FROM (
            SELECT line, text,
                CASE WHEN regexp_matches(text, '^\\s*[{{]') THEN try(json_transform(text, {sql_literal(structure)})) END
                    AS s
            FROM _genobs_input
        )
    )
) fields {prices_join}
)
"""
