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


# Text fields may be long (prompts with retrieved documents), but not unbounded: a field
# over this size is rejected with the field named, never truncated silently.
MAX_TEXT_CHARS = 1_000_000
MAX_LABEL_CHARS = 256

STATUSES = ("ok", "error", "timeout", "filtered")
MODALITIES = ("text", "image")

SAMPLE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("request_id", Kind.STRING, required=True, max_length=256),
    FieldSpec("timestamp", Kind.TIMESTAMP, required=True),
    FieldSpec("service", Kind.STRING, default="default", max_length=MAX_LABEL_CHARS),
    FieldSpec("model", Kind.STRING, required=True, max_length=MAX_LABEL_CHARS),
    FieldSpec("model_version", Kind.STRING, required=True, max_length=MAX_LABEL_CHARS),
    FieldSpec("variant", Kind.STRING, default="primary", max_length=MAX_LABEL_CHARS),
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
    FieldSpec("tenant", Kind.STRING, max_length=MAX_LABEL_CHARS),
    FieldSpec("region", Kind.STRING, max_length=MAX_LABEL_CHARS),
    FieldSpec("attributes", Kind.OBJECT),
)

SAMPLE_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in SAMPLE_FIELDS)
REQUIRED_SAMPLE_FIELDS: tuple[str, ...] = tuple(f.name for f in SAMPLE_FIELDS if f.required)

# Fields whose text is scanned for PII before storage (when redaction is on).
REDACTED_TEXT_FIELDS: tuple[str, ...] = ("prompt", "response", "reference", "error_type")
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
