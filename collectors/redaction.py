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

PATTERN_NAMES: tuple[str, ...] = tuple(p.name for p in PATTERNS)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


ANY_PATTERN_SQL = _quote("|".join(f"(?:{p.regex})" for p in PATTERNS))

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


def count_text_sql(text_sql: str, pattern: RedactionPattern) -> str:
    """SQL counting ``pattern``'s matches in ``text_sql`` (0 for NULL), as the redaction sees them.

    Counts run on the text as it stands before this pattern's turn, so they are taken on
    the original text; overlaps between patterns are rare enough to ignore in a count.
    """
    if pattern.luhn:
        found = f"len({_valid_cards_sql(text_sql, pattern)})"
    else:
        found = f"len(regexp_extract_all({text_sql}, {_quote(pattern.regex)}))"
    return f"coalesce(CASE WHEN regexp_matches({text_sql}, {ANY_PATTERN_SQL}) THEN {found} ELSE 0 END, 0)"


def redact_list_sql(list_sql: str) -> str:
    return f"list_transform({list_sql}, x -> {redact_text_sql('x')})"


def count_list_sql(list_sql: str, pattern: RedactionPattern) -> str:
    return f"coalesce(list_sum(list_transform({list_sql}, x -> {count_text_sql('x', pattern)})), 0)"
