"""PII redaction as DuckDB SQL expressions (vectorised; RE2 regular expressions).

Each pattern replaces what it matches with ``[REDACTED:<name>]``. Card numbers are only
redacted when they pass the Luhn check and IBANs when they pass their mod-97 check, so
order numbers and other long digit runs stay. The patterns run in order: secrets first (a
token may contain digit runs; an AWS secret key before its key id, which is its context),
then emails, IBANs, cards, US social security numbers, phone numbers.

Only rows in which the combined pattern matches at all pay for the per-pattern work, so
clean text costs one regex scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class RedactionPattern:
    name: str
    regex: str
    replacement: str
    # only replace matches that pass this check: "luhn" (the digits) or "iban" (mod 97)
    check: str | None = None


# US SSN: area 001-899 except 666, group 01-99, serial 0001-9999 (RE2 has no lookahead,
# so the invalid ranges are left out of the character classes).
_SSN_AREA = r"(?:00[1-9]|0[1-9][0-9]|[1-5][0-9]{2}|6[0-5][0-9]|66[0-57-9]|6[7-9][0-9]|[78][0-9]{2})"
_SSN_GROUP = r"(?:0[1-9]|[1-9][0-9])"
_SSN_SERIAL = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"

PATTERNS: tuple[RedactionPattern, ...] = (
    RedactionPattern(
        # 40 characters of base64 after a name that says what they are, or after an access
        # key id (AKIA...): the secret alone looks like any other token.
        "aws_secret_key",
        r"((?i:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key|aws_?secret)[^A-Za-z0-9/+\n]{1,5}"
        r"|\bAKIA[0-9A-Z]{16}[^A-Za-z0-9/+]{1,5}(?:(?i:secret(?:[ _]?access)?(?:[ _]?key)?)[^A-Za-z0-9/+]{1,5})?)"
        r"[A-Za-z0-9/+]{40}",
        r"\1[REDACTED:aws_secret_key]",
    ),
    RedactionPattern(
        "api_key",
        r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
        r"|github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
        r"|hf_[A-Za-z0-9]{30,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
        "[REDACTED:api_key]",
    ),
    RedactionPattern(
        "bearer_token",
        r"((?i:bearer)\s+)[A-Za-z0-9._~+/-]{16,}=*",
        r"\1[REDACTED:bearer_token]",
    ),
    RedactionPattern(
        "email",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        "[REDACTED:email]",
    ),
    RedactionPattern(
        "iban",
        r"\b[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b",
        "[REDACTED:iban]",
        check="iban",
    ),
    RedactionPattern(
        "card_number",
        r"\b(?:\d[ -]?){12,18}\d\b",
        "[REDACTED:card_number]",
        check="luhn",
    ),
    RedactionPattern(
        "ssn",
        rf"\b{_SSN_AREA}[- ]{_SSN_GROUP}[- ]{_SSN_SERIAL}\b",
        "[REDACTED:ssn]",
    ),
    RedactionPattern(
        "phone",
        r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)[ .-]?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b"
        r"|\+\d{1,3}[ .-]?\(\d{1,5}\)[ .-]?\d{1,8}(?:[ .-]\d{2,8}){0,4}\b"   # +49 (0)30 123456
        r"|\+\d{1,3}[ .-]\d{1,5}(?:[ .-]\d{2,8}){1,4}\b|\+\d{8,15}\b"     # international, E.164
        # a bare national number: 10 digits, North American (no leading 0/1 in area code
        # and exchange) or with a trunk prefix 0; not after a digit, letter, point or minus
        # (not the fraction of a decimal, not a negative number); the character before is
        # kept (group 1)
        r"|(^|[^0-9A-Za-z.-])(?:[2-9][0-9]{2}[2-9][0-9]{6}|0[1-9][0-9]{8})\b",
        r"\1[REDACTED:phone]",
    ),
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


ANY_PATTERN = "|".join(f"(?:{p.regex})" for p in PATTERNS)
ANY_PATTERN_SQL = _quote(ANY_PATTERN)

# Macros so the checks read as one call in the SQL below. genobs_luhn_ok: ``d`` is a
# string of digits. genobs_iban_ok: ``s`` the IBAN without spaces; its first four
# characters moved to the end, letters as 10..35, the number mod 97 is 1 (folded one
# character at a time, so no big integers).
LUHN_MACRO_SQL = """
CREATE OR REPLACE TEMP MACRO genobs_iban_ok(s) AS (
    length(s) BETWEEN 15 AND 34 AND
    list_reduce(list_transform(string_split(substr(s, 5) || left(s, 4), ''),
                               c -> CASE WHEN c BETWEEN '0' AND '9' THEN ascii(c) - 48 ELSE ascii(c) - 55 END),
                (acc, v) -> (acc * CASE WHEN v >= 10 THEN 100 ELSE 10 END + v) % 97) = 1
);
CREATE OR REPLACE TEMP MACRO genobs_luhn_ok(d) AS (
    length(d) BETWEEN 13 AND 19 AND
    list_sum(list_transform(range(1, length(d) + 1), i ->
        CASE WHEN i % 2 = 0
             THEN (CAST(substr(d, length(d) - i + 1, 1) AS INTEGER) * 2) // 10
                  + (CAST(substr(d, length(d) - i + 1, 1) AS INTEGER) * 2) % 10
             ELSE CAST(substr(d, length(d) - i + 1, 1) AS INTEGER)
        END)) % 10 = 0
)
"""


_CHECK_SQL = {
    "luhn": "genobs_luhn_ok(regexp_replace(m, '[^0-9]', '', 'g'))",
    "iban": "genobs_iban_ok(replace(m, ' ', ''))",
}


def _valid_cards_sql(text_sql: str, pattern: RedactionPattern) -> str:
    """The matches of a checked pattern that pass its check."""
    return (
        f"list_filter(regexp_extract_all({text_sql}, {_quote(pattern.regex)}), "
        f"m -> {_CHECK_SQL[pattern.check or '']})"
    )


def _apply_sql(text_sql: str, pattern: RedactionPattern) -> str:
    if pattern.check:
        return (
            f"list_reduce(list_prepend({text_sql}, {_valid_cards_sql(text_sql, pattern)}), "
            f"(acc, m) -> replace(acc, m, {_quote(pattern.replacement)}))"
        )
    return f"regexp_replace({text_sql}, {_quote(pattern.regex)}, {_quote(pattern.replacement)}, 'g')"


def redact_text_sql(text_sql: str) -> str:
    """SQL for ``text_sql`` with every PII match replaced (NULL stays NULL)."""
    expr = "t"
    for pattern in PATTERNS:
        expr = _apply_sql(expr, pattern)
    # A lambda binds the text once, so the chain reads it by name.
    return (
        f"CASE WHEN regexp_matches({text_sql}, {ANY_PATTERN_SQL}) "
        f"THEN list_transform([{text_sql}], t -> {expr})[1] ELSE {text_sql} END"
    )


def count_matches_sql(text_sql: str, pattern: RedactionPattern) -> str:
    """SQL counting ``pattern``'s matches in ``text_sql`` (0 for NULL), for text known to hold
    PII. Counts are taken on the original text (not after earlier patterns' replacements);
    overlaps between patterns are rare enough to ignore in a count."""
    if pattern.check:
        return f"coalesce(len({_valid_cards_sql(text_sql, pattern)}), 0)"
    return f"coalesce(len(regexp_extract_all({text_sql}, {_quote(pattern.regex)})), 0)"


# -- the same patterns in Python ---------------------------------------------------------
# For the small-batch path (collectors/fast_validation.py), which checks a few records in
# plain Python instead of planning the SQL above. The patterns are RE2 syntax that Python's
# ``re`` reads the same way once two differences are taken out: RE2's ``\s`` is ASCII
# [\t\n\f\r ] (no \v), and ``\b``/``\d`` are ASCII-only (re.ASCII). tests/
# test_validation_paths.py checks both engines agree on the redaction corpus and on
# generated text.

import re as _re

_RE2_SPACE = "[\\t\\n\\f\\r ]"


def _python_regex(regex: str) -> "_re.Pattern[str]":
    return _re.compile(regex.replace("\\s", _RE2_SPACE), _re.ASCII)


PY_PATTERNS: tuple[tuple[RedactionPattern, "_re.Pattern[str]"], ...] = tuple(
    (p, _python_regex(p.regex)) for p in PATTERNS
)
PY_ANY_PATTERN = _python_regex("|".join(f"(?:{p.regex})" for p in PATTERNS))
# Python's backtracking engine is quadratic on long runs of the characters the patterns
# repeat (an email local part, a token): texts holding such a run are left to RE2 (SQL).
PY_UNSAFE_RUN = _re.compile(r"[A-Za-z0-9._%+~/=@-]{200}", _re.ASCII)
_NOT_DIGIT = _re.compile(r"[^0-9]")


def luhn_ok(digits: str) -> bool:
    """The Luhn check as genobs_luhn_ok computes it (``digits``: only 0-9)."""
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits), start=1):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d // 10 + d % 10
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """The IBAN check as genobs_iban_ok computes it (``text``: the IBAN without spaces)."""
    if not 15 <= len(text) <= 34:
        return False
    total = 0
    for ch in text[4:] + text[:4]:
        value = ord(ch) - 48 if "0" <= ch <= "9" else ord(ch) - 55
        total = (total * (100 if value >= 10 else 10) + value) % 97
    return total == 1


_CHECKS = {
    "luhn": lambda m: luhn_ok(_NOT_DIGIT.sub("", m)),
    "iban": lambda m: iban_ok(m.replace(" ", "")),
}


def _valid_cards(text: str, regex: "_re.Pattern[str]", check: str = "luhn") -> list[str]:
    """The matches of a checked pattern that pass its check."""
    ok = _CHECKS[check]
    return [m for m in (x.group(0) for x in regex.finditer(text)) if ok(m)]


def has_pii(text: str | None) -> bool:
    return text is not None and PY_ANY_PATTERN.search(text) is not None


def redact_text(text: str | None) -> str | None:
    """``text`` with every PII match replaced, as redact_text_sql does it."""
    if text is None or PY_ANY_PATTERN.search(text) is None:
        return text
    for pattern, regex in PY_PATTERNS:
        if pattern.check:
            for match in _valid_cards(text, regex, pattern.check):
                text = text.replace(match, pattern.replacement)
        else:
            text = regex.sub(pattern.replacement, text)
    return text


def count_matches(text: str | None) -> dict[str, int]:
    """Per-pattern counts on the original text, as count_matches_sql computes them."""
    if text is None or PY_ANY_PATTERN.search(text) is None:
        return {}
    counts: dict[str, int] = {}
    for pattern, regex in PY_PATTERNS:
        n = len(_valid_cards(text, regex, pattern.check)) if pattern.check else sum(1 for _ in regex.finditer(text))
        if n:
            counts[pattern.name] = n
    return counts


# -- PII in Arrow columns ---------------------------------------------------------------
# The vectorised path finds rows with Arrow's RE2 (pyarrow.compute.match_substring_regex):
# the same engine and pattern as the SQL above, faster per byte here than DuckDB's
# regexp_matches (bench/bench_ingest.py), and it runs outside DuckDB, in the thread that checks the
# next chunk. Only the flagged values are then redacted (by the SQL above, run on them
# alone) and put back in place, so a clean row is never copied or rewritten.


def matches(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per value: whether the combined pattern matches it (False for null)."""
    if values.null_count == len(values):   # a field the input does not have: Arrow's
        return np.zeros(len(values), dtype=bool)   # kernel would still visit every row
    found = pc.match_substring_regex(values, ANY_PATTERN)
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def label_matches(column: pa.ChunkedArray) -> np.ndarray:
    """As ``matches``, for a column of labels (service, model, tenant...), which hold few
    distinct values: each distinct value is searched once, not once per row."""
    if column.null_count == len(column):
        return np.zeros(len(column), dtype=bool)
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    hits = matches(encoded.dictionary)
    if not hits.any():
        return np.zeros(len(column), dtype=bool)
    indices = np.asarray(encoded.indices.fill_null(0).to_numpy(zero_copy_only=False))
    return hits[indices] & np.asarray(encoded.indices.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def list_matches(column: pa.ChunkedArray) -> np.ndarray:
    """Per row of a column of lists of strings: whether any element matches."""
    mask = np.zeros(len(column), dtype=bool)
    start = 0
    for chunk in column.chunks:
        hits = matches(pc.list_flatten(chunk))
        if hits.any():
            parents = np.asarray(pc.list_parent_indices(chunk).to_numpy(zero_copy_only=False))
            mask[start + parents[hits]] = True
        start += len(chunk)
    return mask


# Redacts strings that match: the redacted strings in order, and per string the number
# of matches of each pattern (a matrix, one column per PATTERNS entry).
RedactValues = Callable[[pa.Array], tuple[pa.Array, np.ndarray]]


def replace_in_text_column(column: pa.ChunkedArray, rows: np.ndarray, redact: RedactValues
                           ) -> tuple[pa.ChunkedArray, np.ndarray]:
    """``column`` with the values of ``rows`` (a row mask) replaced by ``redact(values)``,
    and per row the matches of each pattern (zero for the rows not in ``rows``)."""
    redacted, found = redact(column.filter(pa.array(rows)).combine_chunks())
    counts = np.zeros((len(column), len(PATTERNS)), dtype=np.int64)
    counts[rows] = found
    return pc.replace_with_mask(column, pa.array(rows), redacted), counts


def replace_in_list_column(column: pa.ChunkedArray, rows: np.ndarray, redact: RedactValues
                           ) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Like replace_in_text_column for a column of lists of strings: every element of the
    rows in ``rows`` goes through ``redact``; the lists keep their shape."""
    chunks = []
    counts = np.zeros((len(column), len(PATTERNS)), dtype=np.int64)
    start = 0
    for chunk in column.chunks:
        take = rows[start: start + len(chunk)]
        if not take.any():
            chunks.append(chunk)
            start += len(chunk)
            continue
        values = chunk.flatten()
        parents = np.asarray(pc.list_parent_indices(chunk).to_numpy(zero_copy_only=False))
        elements = take[parents]
        redacted, found = redact(values.filter(pa.array(elements)))
        np.add.at(counts, start + parents[elements], found)
        offsets = np.asarray(chunk.offsets.to_numpy(zero_copy_only=False))
        chunks.append(pa.ListArray.from_arrays(
            pa.array(offsets - offsets[0], type=pa.int32()),
            pc.replace_with_mask(values, pa.array(elements), redacted),
            type=chunk.type, mask=chunk.is_null() if chunk.null_count else None,
        ))
        start += len(chunk)
    return pa.chunked_array(chunks, type=column.type), counts


# -- JSON text (attributes) ----------------------------------------------------------------
# Attributes are redacted as JSON text, so that a name that says what a value is (an AWS
# secret key's name, say) is seen beside the value. A replacement can then leave the text
# invalid: a number that was a phone or card number becomes a bare marker, and a match that
# began right after a backslash eats the letter of its escape. ``redacted_json`` repairs
# both (the marker becomes a JSON string; the orphan backslash goes), and if the text is
# still not valid JSON, redacts the original value by value instead.

_JSON_STRING = _re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', _re.S)
_BARE_MARKED = _re.compile(r"[-+0-9.eE]*\[REDACTED:[a-z_]+\][-+0-9.eE]*")
_EATEN_ESCAPE = _re.compile(r"(?<!\\)((?:\\\\)*)\\(?=\[REDACTED:)")


class _Number(str):
    """A JSON number kept as written."""


def _json_valid(text: str) -> bool:
    import json
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _redact_json_values(text: str) -> str:
    """The JSON text with every key, string and number redacted on its own."""
    import json

    def write(value: object) -> str:
        if isinstance(value, _Number):
            redacted = redact_text(str(value))
            return str(value) if redacted == value else json.dumps(redacted, ensure_ascii=False)
        if isinstance(value, str):
            return json.dumps(redact_text(value), ensure_ascii=False)
        if isinstance(value, dict):
            return "{" + ",".join(f"{write(str(k))}:{write(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ",".join(write(v) for v in value) + "]"
        return json.dumps(value)

    return write(json.loads(text, parse_int=_Number, parse_float=_Number,
                            object_pairs_hook=lambda pairs: dict(pairs)))


def redacted_json(original: str | None, redacted: str | None) -> str | None:
    """``redacted`` (``original`` JSON text after redact_text / redact_text_sql) as valid
    JSON: see the comment above."""
    if original is None or redacted is None or redacted == original:
        return redacted
    out: list[str] = []
    position = 0
    for match in _JSON_STRING.finditer(redacted):
        out.append(_BARE_MARKED.sub(lambda m: f'"{m.group(0)}"', redacted[position:match.start()]))
        out.append(_EATEN_ESCAPE.sub(r"\1", match.group(0)))
        position = match.end()
    out.append(_BARE_MARKED.sub(lambda m: f'"{m.group(0)}"', redacted[position:]))
    fixed = "".join(out)
    if _json_valid(fixed):
        return fixed
    return _redact_json_values(original)
