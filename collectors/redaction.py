"""PII redaction as DuckDB SQL expressions (vectorised; RE2 regular expressions).

Each pattern replaces what it matches with ``[REDACTED:<name>]``. Card numbers are only
redacted when they pass the Luhn check, so order numbers and other long digit runs stay.
The patterns run in order: secrets first (a token may contain digit runs), then emails,
cards, phone numbers.

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
    luhn: bool = False  # only replace matches whose digits pass the Luhn check


PATTERNS: tuple[RedactionPattern, ...] = (
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
        "card_number",
        r"\b(?:\d[ -]?){12,18}\d\b",
        "[REDACTED:card_number]",
        luhn=True,
    ),
    RedactionPattern(
        "phone",
        r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)[ .-]?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b"
        r"|\+\d{1,3}[ .-]\d{1,5}(?:[ .-]\d{2,8}){1,4}\b|\+\d{8,15}\b",  # international, E.164
        "[REDACTED:phone]",
    ),
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


ANY_PATTERN = "|".join(f"(?:{p.regex})" for p in PATTERNS)
ANY_PATTERN_SQL = _quote(ANY_PATTERN)

# A macro so the Luhn check reads as one call in the SQL below. ``d`` is a string of digits.
LUHN_MACRO_SQL = """
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


def _valid_cards_sql(text_sql: str, pattern: RedactionPattern) -> str:
    return (
        f"list_filter(regexp_extract_all({text_sql}, {_quote(pattern.regex)}), "
        f"m -> genobs_luhn_ok(regexp_replace(m, '[^0-9]', '', 'g')))"
    )


def _apply_sql(text_sql: str, pattern: RedactionPattern) -> str:
    if pattern.luhn:
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
    if pattern.luhn:
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


def _valid_cards(text: str, regex: "_re.Pattern[str]") -> list[str]:
    return [m for m in (x.group(0) for x in regex.finditer(text)) if luhn_ok(_NOT_DIGIT.sub("", m))]


def has_pii(text: str | None) -> bool:
    return text is not None and PY_ANY_PATTERN.search(text) is not None


def redact_text(text: str | None) -> str | None:
    """``text`` with every PII match replaced, as redact_text_sql does it."""
    if text is None or PY_ANY_PATTERN.search(text) is None:
        return text
    for pattern, regex in PY_PATTERNS:
        if pattern.luhn:
            for match in _valid_cards(text, regex):
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
        n = len(_valid_cards(text, regex)) if pattern.luhn else sum(1 for _ in regex.finditer(text))
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
