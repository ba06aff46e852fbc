"""The record contracts (DESIGN §3): which fields a sample and a GPU reading have,
their kinds, limits and defaults.

Validation itself is vectorised in DuckDB (collectors/validation.py builds its SQL from
these specs); this module is the single place that says what is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    STRING = "string"
    TIMESTAMP = "timestamp"
    NUMBER = "number"          # float >= minimum
    INTEGER = "integer"        # int >= minimum
    BOOLEAN = "boolean"
    STRING_LIST = "string_list"
    OBJECT = "object"          # object of scalars
    ENUM = "enum"
    FEEDBACK = "feedback"      # -1 | 0 | 1


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    required: bool = False
    default: str | None = None
    max_length: int | None = None
    minimum: float | None = None
    choices: tuple[str, ...] = ()
    identifier: bool = False   # no control / bidi characters (IDENTIFIER_BAD_CHARS_*)


# Text fields may be long (prompts with retrieved documents), but not unbounded: a field
# over this size is rejected with the field named, never truncated silently.
MAX_TEXT_CHARS = 1_000_000
MAX_LABEL_CHARS = 256
# A record (the object itself counts as 1) may nest objects/arrays this deep; a deeper one
# is rejected as a whole, on every path (genobs/jsontext.py measures it without recursion).
MAX_NESTING_DEPTH = 64
# Integers are stored exactly only within the range a double holds exactly (RFC 7493's
# I-JSON range); a value outside it is rejected, never rounded or nulled.
MAX_EXACT_INTEGER = 2**53 - 1
# Timestamps: 1970-01-01T00:00:00Z <= t < 10000-01-01T00:00:00Z. A number is epoch seconds
# below EPOCH_MS_FROM (10000-01-01 in seconds), else epoch milliseconds.
MIN_TIMESTAMP_TEXT = "1970-01-01T00:00:00Z"
MAX_TIMESTAMP_TEXT = "9999-12-31T23:59:59.999999Z"
EPOCH_MS_FROM = 253_402_300_800
MAX_EPOCH_US = EPOCH_MS_FROM * 1_000_000     # exclusive
# Identifier and label fields may not hold control characters (C0, DEL, C1) or the
# bidirectional formatting characters that reorder how text is shown (Trojan Source).
IDENTIFIER_BAD_CHARS_RE2 = r"[\x00-\x1f\x7f-\x{9f}\x{61c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]"
IDENTIFIER_BAD_CHARS_PY = "[\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]"
# ... and request_id may not be whitespace only (spaces of any kind).
WHITESPACE_CLASS_RE2 = (r"[ \x{85}\x{a0}\x{1680}\x{2000}-\x{200b}\x{2028}\x{2029}\x{202f}\x{205f}"
                        r"\x{3000}\x{feff}\t\n\x0b\f\r]")
WHITESPACE_ONLY_RE2 = f"^{WHITESPACE_CLASS_RE2}+$"
WHITESPACE_ONLY_PY = ("^[ \\x85\\xa0\\u1680\\u2000-\\u200b\\u2028\\u2029\\u202f\\u205f"
                      "\\u3000\\ufeff\\t\\n\\x0b\\f\\r]+$")

STATUSES = ("ok", "error", "timeout", "filtered")
MODALITIES = ("text", "image")

SAMPLE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("request_id", Kind.STRING, required=True, max_length=256, identifier=True),
    FieldSpec("timestamp", Kind.TIMESTAMP, required=True),
    FieldSpec("service", Kind.STRING, default="default", max_length=MAX_LABEL_CHARS, identifier=True),
    FieldSpec("model", Kind.STRING, required=True, max_length=MAX_LABEL_CHARS, identifier=True),
    FieldSpec("model_version", Kind.STRING, required=True, max_length=MAX_LABEL_CHARS, identifier=True),
    FieldSpec("variant", Kind.STRING, default="primary", max_length=MAX_LABEL_CHARS, identifier=True),
    FieldSpec("modality", Kind.ENUM, default="text", choices=MODALITIES),
    FieldSpec("prompt", Kind.STRING, max_length=MAX_TEXT_CHARS),
    FieldSpec("response", Kind.STRING, max_length=MAX_TEXT_CHARS),
    FieldSpec("image", Kind.STRING, max_length=MAX_TEXT_CHARS),
    FieldSpec("context", Kind.STRING_LIST, max_length=MAX_TEXT_CHARS),
    FieldSpec("reference", Kind.STRING, max_length=MAX_TEXT_CHARS),
    FieldSpec("status", Kind.ENUM, default="ok", choices=STATUSES),
    FieldSpec("error_type", Kind.STRING, max_length=MAX_LABEL_CHARS),
    FieldSpec("latency_ms", Kind.NUMBER, minimum=0),
    FieldSpec("ttft_ms", Kind.NUMBER, minimum=0),
    FieldSpec("input_tokens", Kind.INTEGER, minimum=0),
    FieldSpec("output_tokens", Kind.INTEGER, minimum=0),
    FieldSpec("cost_usd", Kind.NUMBER, minimum=0),
    FieldSpec("safety_flagged", Kind.BOOLEAN),
    FieldSpec("cache_hit", Kind.BOOLEAN),
    FieldSpec("feedback", Kind.FEEDBACK),
    FieldSpec("tenant", Kind.STRING, max_length=MAX_LABEL_CHARS, identifier=True),
    FieldSpec("region", Kind.STRING, max_length=MAX_LABEL_CHARS, identifier=True),
    FieldSpec("attributes", Kind.OBJECT),
)

SAMPLE_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in SAMPLE_FIELDS)
REQUIRED_SAMPLE_FIELDS: tuple[str, ...] = tuple(f.name for f in SAMPLE_FIELDS if f.required)

# Fields whose text is scanned for PII before storage (when redaction is on).
# Label fields too (a card number put in `tenant` is still a card number). Not request_id:
# it is the idempotency key, stored as sent (docs/ingest.md says never to put personal data
# there); not image: a data: URI's base64 would match phone patterns by chance.
# The label fields (few distinct values: the vectorised path searches each distinct value
# once) are the last of them.
REDACTED_LABEL_FIELDS: tuple[str, ...] = ("service", "model", "model_version", "variant", "tenant", "region")
REDACTED_TEXT_FIELDS: tuple[str, ...] = ("prompt", "response", "reference", "error_type", *REDACTED_LABEL_FIELDS)
REDACTED_LIST_FIELDS: tuple[str, ...] = ("context",)

GPU_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("timestamp", Kind.TIMESTAMP, required=True),
    FieldSpec("host", Kind.STRING, required=True, max_length=MAX_LABEL_CHARS),
    FieldSpec("gpu_index", Kind.INTEGER, required=True, minimum=0),
    FieldSpec("gpu_uuid", Kind.STRING, max_length=MAX_LABEL_CHARS),
    FieldSpec("gpu_name", Kind.STRING, max_length=MAX_LABEL_CHARS),
    FieldSpec("utilization_pct", Kind.NUMBER, minimum=0),
    FieldSpec("memory_used_mib", Kind.NUMBER, minimum=0),
    FieldSpec("memory_total_mib", Kind.NUMBER, minimum=0),
    FieldSpec("power_w", Kind.NUMBER, minimum=0),
    FieldSpec("temperature_c", Kind.NUMBER),
    FieldSpec("sm_clock_mhz", Kind.NUMBER, minimum=0),
    FieldSpec("throttle_reasons", Kind.STRING, max_length=4096),
    FieldSpec("ecc_uncorrected", Kind.INTEGER, minimum=0),
    FieldSpec("attributes", Kind.OBJECT),
)
GPU_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in GPU_FIELDS)
