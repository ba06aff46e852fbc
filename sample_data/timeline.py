"""When things happen in the demo data set: its span, the rollouts and the incidents.

This is the single source of truth for the generator (``sample_data.generate``), the
README, the demo and the tests. All times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Mapping


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


DATA_START = _utc("2026-11-16T00:00:00Z")  # a Monday
DATA_END = _utc("2026-11-23T00:00:00Z")    # exclusive

# File names under data_dir().
CHAT_SAMPLES_FILE = "chat_samples.jsonl.gz"
IMAGE_SAMPLES_FILE = "image_samples.jsonl"
GPU_TELEMETRY_FILE = "gpu_telemetry.jsonl.gz"
IMAGES_DIR = "images"
META_DIR = "meta"                          # not samples: ground truth and counts
LABELS_FILE = "meta/labels.json"

CHAT_SERVICE = "chat-api"
CHAT_MODEL = "chat-large"
IMAGE_SERVICE = "image-gen"
IMAGE_MODEL = "sdxl-turbo"
IMAGE_MODEL_VERSION = "1.0.3"

# chat-large v1.4 -> v1.5: the share of v1.5 ramps linearly from 0 to 100 % in this window.
ROLLOUT_START = _utc("2026-11-19T09:00:00Z")
ROLLOUT_END = _utc("2026-11-19T15:00:00Z")
# Last day: variant "canary" (v1.6) vs variant "baseline" (v1.5); "primary" before.
CANARY_START = _utc("2026-11-22T00:00:00Z")
CANARY_END = DATA_END
CANARY_SHARE = 0.15


@dataclass(frozen=True)
class Incident:
    """One planted incident: where, when (``start`` inclusive, ``end`` exclusive) and what."""

    name: str
    title: str
    service: str
    start: datetime
    end: datetime
    description: str
    properties: Mapping[str, Any] = field(default_factory=dict)

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    @property
    def offset_start(self) -> timedelta:
        """Start relative to DATA_START."""
        return self.start - DATA_START


ERROR_BURST = Incident(
    name="error_burst",
    title="chat-api error and latency burst",
    service=CHAT_SERVICE,
    start=_utc("2026-11-18T14:00:00Z"),
    end=_utc("2026-11-18T15:30:00Z"),
    description=(
        "About 20 % of chat-api requests fail (15 % error: upstream_503 / kv_cache_oom, "
        "5 % timeout after 30 s) and successful requests are about 4x slower. Outside the "
        "window fewer than 0.05 % of requests fail, so a 99.9 % availability SLO pages "
        "(fast burn: burn rate ~200 over 1h and 5m) and its budget is spent."
    ),
    properties=MappingProxyType(
        {"error_rate": 0.20, "error_share": 0.15, "timeout_share": 0.05, "latency_factor": 4.0}
    ),
)

HALLUCINATION_REGRESSION = Incident(
    name="canary_hallucination",
    title="hallucination regression in the chat-large v1.6 canary",
    service=CHAT_SERVICE,
    start=CANARY_START,
    end=CANARY_END,
    description=(
        "Variant 'canary' (chat-large v1.6, ~15 % of traffic) answers with claims its "
        "retrieved context does not support (a wrong figure, an invented person, date or "
        "offer) in about 30 % of responses, against about 2 % for variant 'baseline' (v1.5); "
        "the added claims also make its responses longer (more output tokens)."
    ),
    properties=MappingProxyType(
        {
            "variant": "canary",
            "model_version": "v1.6",
            "baseline_model_version": "v1.5",
            "canary_share": CANARY_SHARE,
            "canary_hallucination_rate": 0.30,
            "baseline_hallucination_rate": 0.02,
        }
    ),
)

PROMPT_DRIFT = Incident(
    name="prompt_drift",
    title="chat-api prompt topic drift",
    service=CHAT_SERVICE,
    start=_utc("2026-11-20T00:00:00Z"),
    end=DATA_END,
    description=(
        "From day 5 a new topic mix appears in chat-api prompts: questions about the 2027 "
        "plan migration / price change, the new Brightwave Assist AI feature and SLA "
        "service credits make up about 40 % of prompts (none before), and hardware "
        "questions drop."
    ),
    properties=MappingProxyType(
        {
            "new_topics": ("plan_migration", "ai_assistant", "service_credits"),
            "new_topic_share": 0.40,
        }
    ),
)

GPU_THERMAL = Incident(
    name="gpu_thermal",
    title="GPU thermal throttling on gpu-node-a GPU 1",
    service=CHAT_SERVICE,
    start=_utc("2026-11-21T09:30:00Z"),
    end=_utc("2026-11-21T11:00:00Z"),
    description=(
        "gpu-node-a GPU 1 heats up from 09:10 (temperature ~45 -> 88-91 C); during the "
        "window it reports throttle_reasons hw_thermal_slowdown, its SM clock drops from "
        "~1980 MHz to 1050-1300 MHz, and chat-api requests served by it (attributes.host "
        "gpu-node-a, attributes.gpu_index 1) are about 1.7x slower. It cools down by 11:15."
    ),
    properties=MappingProxyType(
        {
            "host": "gpu-node-a",
            "gpu_index": 1,
            "throttle_reason": "hw_thermal_slowdown",
            "peak_temperature_c": 92.0,
            "latency_factor": 1.7,
            "heating_from": _utc("2026-11-21T09:10:00Z"),
            "cooled_by": _utc("2026-11-21T11:15:00Z"),
        }
    ),
)

INCIDENTS: Mapping[str, Incident] = MappingProxyType(
    {i.name: i for i in (ERROR_BURST, HALLUCINATION_REGRESSION, PROMPT_DRIFT, GPU_THERMAL)}
)
