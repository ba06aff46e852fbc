"""genobs's demo data set: a week of traffic of a RAG chat service and an image generator,
GPU telemetry, and four planted incidents (see README.md in this folder).

    from genobs.sample_data import data_dir, INCIDENTS
    data_dir() / CHAT_SAMPLES_FILE          # the committed files
    INCIDENTS["error_burst"].start          # when each incident happens

Regenerate with ``python -m genobs.sample_data.generate``.
"""

from __future__ import annotations

from pathlib import Path

from genobs.sample_data.timeline import (
    CANARY_END,
    CANARY_SHARE,
    CANARY_START,
    CHAT_MODEL,
    CHAT_SAMPLES_FILE,
    CHAT_SERVICE,
    DATA_END,
    DATA_START,
    ERROR_BURST,
    GPU_TELEMETRY_FILE,
    GPU_THERMAL,
    HALLUCINATION_REGRESSION,
    IMAGE_MODEL,
    IMAGE_MODEL_VERSION,
    IMAGE_SAMPLES_FILE,
    IMAGE_SERVICE,
    IMAGES_DIR,
    INCIDENTS,
    LABELS_FILE,
    PROMPT_DRIFT,
    ROLLOUT_END,
    ROLLOUT_START,
    Incident,
)

__all__ = [
    "CANARY_END", "CANARY_SHARE", "CANARY_START", "CHAT_MODEL", "CHAT_SAMPLES_FILE",
    "CHAT_SERVICE", "DATA_END", "DATA_START", "ERROR_BURST", "GPU_TELEMETRY_FILE", "GPU_THERMAL",
    "HALLUCINATION_REGRESSION", "IMAGE_MODEL", "IMAGE_MODEL_VERSION", "IMAGE_SAMPLES_FILE",
    "IMAGE_SERVICE", "IMAGES_DIR", "INCIDENTS", "LABELS_FILE", "PROMPT_DRIFT", "ROLLOUT_END",
    "ROLLOUT_START", "Incident", "SAMPLE_FILES", "data_dir",
]

# The sample files to ingest, in order (GPU telemetry is separate: GPU_TELEMETRY_FILE).
SAMPLE_FILES: tuple[str, ...] = (CHAT_SAMPLES_FILE, IMAGE_SAMPLES_FILE)


def data_dir() -> Path:
    """The folder holding the committed demo data (also the image root for `image` paths)."""
    return Path(__file__).resolve().parent / "data"
