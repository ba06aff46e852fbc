"""Generate the genobs demo data set (seeded, byte-for-byte deterministic).

    python -m genobs.sample_data.generate [--out sample_data/data] [--seed 7] [--scale 1.0]
                                   [--gpu-interval-s 60]

Writes, under the output folder:
  chat_samples.jsonl.gz   RAG chat samples of service chat-api (DESIGN §3 sample records)
  image_samples.jsonl     image-generation samples of service image-gen
  images/img_NNNNNN.png   the generated images those samples point to
  gpu_telemetry.jsonl.gz  one reading per GPU per minute (DESIGN §3 GPU fields)
  meta/labels.json        ground truth (not samples): planted hallucinations, PII,
                          mismatched images, counts

What happens when is in sample_data/timeline.py and sample_data/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator

from genobs.sample_data import conversations, images
from genobs.sample_data.telemetry import gpu_readings
from genobs.sample_data.timeline import (
    CHAT_MODEL,
    CHAT_SAMPLES_FILE,
    CHAT_SERVICE,
    DATA_END,
    DATA_START,
    ERROR_BURST,
    GPU_TELEMETRY_FILE,
    GPU_THERMAL,
    IMAGE_MODEL,
    IMAGE_MODEL_VERSION,
    IMAGE_SAMPLES_FILE,
    IMAGE_SERVICE,
    IMAGES_DIR,
    LABELS_FILE,
    PROMPT_DRIFT,
)
from genobs.sample_data.knowledge import TOPIC_MIX_AFTER, TOPIC_MIX_BEFORE
from genobs.sample_data.traffic import (
    chat_deployment,
    expected_per_minute,
    minute_start,
    poisson,
)

CHAT_SAMPLES_TOTAL = 30_000     # expected count at scale 1
IMAGE_SAMPLES_TOTAL = 320
GPU_INTERVAL_S = 60

# Probability that a response contains unsupported claims, per chat-large version.
HALLUCINATION_RATE = {"v1.4": 0.03, "v1.5": 0.02, "v1.6": 0.30}
# Relative speed (latency multiplier) per version. v1.6 serves like v1.5: its canary's
# incident is one of answer quality, not speed, so the canary gate must fail it on
# hallucination while latency passes (only its longer answers add decode time).
VERSION_LATENCY = {"v1.4": 1.0, "v1.5": 0.92, "v1.6": 0.92}
FOLLOW_UP_RATE = 0.2   # "Hope that helps!"-style closing sentences
REFERENCE_RATE = 0.12
PII_RATE = 0.025
CACHE_HIT_RATE = 0.18
# Status probabilities outside the error burst (error and timeout count against availability).
BASE_ERROR, BASE_TIMEOUT, BASE_FILTERED = 0.00012, 0.00006, 0.002
TIMEOUT_MS = 30_000.0
SYSTEM_PROMPT_TOKENS = 412
# USD per token: chat-large input (cached input at half price) and output.
PRICE_IN, PRICE_IN_CACHED, PRICE_OUT = 2.5e-6, 1.25e-6, 10e-6
IMAGE_PRICE = 0.0015

TENANTS: dict[str, tuple[float, str]] = {  # name -> (traffic weight, home region)
    "acme-corp": (0.22, "us-east-1"), "globex": (0.16, "eu-west-1"),
    "initech": (0.12, "us-west-2"), "umbrella": (0.10, "eu-central-1"),
    "hooli": (0.09, "us-west-2"), "stark-industries": (0.08, "us-east-1"),
    "wayne-enterprises": (0.07, "us-east-1"), "soylent": (0.06, "ap-southeast-1"),
    "free-tier": (0.10, "eu-west-1"),
}
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1")
USER_AGENTS = (
    "BrightwaveWeb/7.3.1 (Chrome 131; Windows 11)", "BrightwaveWeb/7.3.1 (Safari 18; macOS 15)",
    "BrightwaveWeb/7.3.1 (Firefox 133; Linux)", "BrightwaveMobile/5.2.0 (iOS 18.1)",
    "BrightwaveMobile/5.2.0 (Android 15)", "BrightwaveDesktop/3.9.4 (Windows 10)",
    "python-httpx/0.27.2", "zendesk-bridge/2.1",
)


def _rfc3339_ms(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _request_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _tokens(text: str) -> int:
    """About four characters per token, as for English with a BPE tokenizer."""
    return max(1, math.ceil(len(text) / 4))


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def _arrivals(rng: random.Random, total: float) -> Iterator[datetime]:
    """Request times (ms resolution, sorted) of a Poisson process following the traffic shape."""
    for minute, lam in enumerate(expected_per_minute(total)):
        start = minute_start(minute)
        offsets = sorted(rng.randrange(60_000) for _ in range(poisson(rng, lam)))
        for ms in offsets:
            yield start + timedelta(milliseconds=ms)


@dataclass
class Labels:
    """Ground truth collected while generating (written to meta/labels.json)."""

    hallucinated: dict[str, dict[str, Any]] = field(default_factory=dict)
    pii: dict[str, list[str]] = field(default_factory=dict)
    mismatched_images: list[str] = field(default_factory=list)
    topics_by_day: dict[str, Counter[str]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


class ChatSampler:
    """Builds chat-api sample records one arrival at a time."""

    def __init__(self, rng: random.Random, labels: Labels) -> None:
        self.rng = rng
        self.labels = labels
        self.sessions: list[str] = []
        self.shape = expected_per_minute(1.0)   # relative load per minute
        self.peak_shape = max(self.shape)

    def _session(self) -> str:
        rng = self.rng
        if self.sessions and rng.random() < 0.45:
            return rng.choice(self.sessions)
        session = f"sess_{rng.getrandbits(48):012x}"
        self.sessions = (self.sessions + [session])[-40:]
        return session

    def _status(self, when: datetime) -> tuple[str, str | None]:
        roll = self.rng.random()
        if ERROR_BURST.contains(when):
            if roll < 0.10:
                return "error", "upstream_503"
            if roll < 0.15:
                return "error", "kv_cache_oom"
            if roll < 0.20:
                return "timeout", "deadline_exceeded"
        else:
            if roll < BASE_ERROR:
                return "error", self.rng.choice(("upstream_503", "internal_error"))
            if roll < BASE_ERROR + BASE_TIMEOUT:
                return "timeout", "deadline_exceeded"
        if roll > 1 - BASE_FILTERED:
            return "filtered", "content_filter"
        return "ok", None

    def record(self, when: datetime) -> dict[str, Any]:
        rng = self.rng
        request_id = _request_id(rng)
        deployment = chat_deployment(rng, when)
        names = list(TENANTS)
        tenant = rng.choices(names, weights=[TENANTS[t][0] for t in names])[0]
        region = TENANTS[tenant][1] if rng.random() < 0.85 else rng.choice(REGIONS)
        mix = TOPIC_MIX_AFTER if PROMPT_DRIFT.contains(when) else TOPIC_MIX_BEFORE
        topic = rng.choices(list(mix), weights=list(mix.values()))[0]
        status, error_type = self._status(when)
        hallucinate = rng.random() < HALLUCINATION_RATE[deployment.model_version]
        pii: tuple[str, ...] = ()
        if rng.random() < PII_RATE:
            pii = tuple(sorted(rng.sample(conversations.PII_KINDS, rng.choice((1, 1, 1, 2)))))
        text = conversations.compose(
            rng, topic, hallucinate=hallucinate and status == "ok",
            with_reference=rng.random() < REFERENCE_RATE, pii=pii,
            follow_up_rate=FOLLOW_UP_RATE,
        )
        cache_hit = rng.random() < CACHE_HIT_RATE
        day = when.strftime("%Y-%m-%d")
        self.labels.topics_by_day.setdefault(day, Counter())[topic] += 1

        rec: dict[str, Any] = {
            "request_id": request_id,
            "timestamp": _rfc3339_ms(when),
            "service": CHAT_SERVICE,
            "model": CHAT_MODEL,
            "model_version": deployment.model_version,
            "variant": deployment.variant,
            "modality": "text",
            "tenant": tenant,
            "region": region,
        }
        if status == "filtered":
            prompt = conversations.filtered_prompt(rng)
            rec.update(prompt=prompt, response=conversations.REFUSAL)
        else:
            prompt = text.prompt
            rec["prompt"] = prompt
            if status == "ok":
                rec.update(context=list(text.context), response=text.response)
                if text.reference is not None:
                    rec["reference"] = text.reference
                if text.hallucination:
                    self.labels.hallucinated[request_id] = {
                        "kind": text.hallucination, "unsupported": list(text.unsupported),
                        "model_version": deployment.model_version, "variant": deployment.variant,
                    }
            if pii:
                self.labels.pii[request_id] = list(pii)
                for kind in pii:
                    self.labels.counts[f"pii_{kind}"] += 1

        context_tokens = sum(_tokens(c) for c in rec.get("context", ()))
        input_tokens = SYSTEM_PROMPT_TOKENS + _tokens(prompt) + context_tokens
        output_tokens = 0
        if status in ("ok", "filtered"):
            output_tokens = max(1, round(_tokens(rec["response"]) * rng.uniform(0.95, 1.12)))
        latency, ttft = self._timing(when, deployment, status, error_type, input_tokens,
                                     output_tokens, cache_hit)
        rec.update(status=status)
        if error_type:
            rec["error_type"] = error_type
        rec["latency_ms"] = round(latency, 1)
        if ttft is not None:
            rec["ttft_ms"] = round(ttft, 1)
        rec["input_tokens"] = input_tokens
        rec["output_tokens"] = output_tokens
        price_in = PRICE_IN_CACHED if cache_hit else PRICE_IN
        cost = input_tokens * price_in + output_tokens * PRICE_OUT if status != "error" else 0.0
        rec["cost_usd"] = round(cost, 8)
        rec["cache_hit"] = cache_hit
        rec["safety_flagged"] = status == "filtered" or rng.random() < 0.003
        feedback = self._feedback(status, bool(text.hallucination) and status == "ok")
        if feedback is not None:
            rec["feedback"] = feedback
        # Keys outside the sample contract: genobs keeps them in `attributes`.
        rec["session_id"] = self._session()
        rec["user_agent"] = rng.choice(USER_AGENTS)
        rec["host"] = deployment.host
        rec["gpu_index"] = deployment.gpu_index
        rec["prompt_template"] = "support-rag/v7"
        self.labels.counts[f"chat_{status}"] += 1
        return rec

    def _timing(self, when: datetime, deployment: Any, status: str, error_type: str | None,
                input_tokens: int, output_tokens: int, cache_hit: bool
                ) -> tuple[float, float | None]:
        rng = self.rng
        if status == "timeout":
            return TIMEOUT_MS + rng.uniform(0, 60), None
        if status == "error":
            median = 900.0 if error_type == "kv_cache_oom" else 140.0
            return _lognormal(rng, median, 0.4), None
        load = self.shape[int((when - DATA_START).total_seconds() // 60)]
        busy = 1 + 0.15 * load / self.peak_shape
        ttft = (_lognormal(rng, 170, 0.33) + 0.06 * input_tokens) * busy
        if cache_hit:
            ttft *= 0.5
        per_token = _lognormal(rng, 10.5, 0.12) * busy
        network = _lognormal(rng, 30, 0.5)
        if rng.random() < 0.015:  # queued behind long requests
            ttft += _lognormal(rng, 700, 0.45)
        speed = VERSION_LATENCY[deployment.model_version]
        ttft *= speed
        per_token *= speed
        if ERROR_BURST.contains(when):
            factor = _lognormal(rng, float(ERROR_BURST.properties["latency_factor"]), 0.15)
            ttft *= factor
            per_token *= factor
        if GPU_THERMAL.contains(when) and (deployment.host, deployment.gpu_index) == (
                GPU_THERMAL.properties["host"], GPU_THERMAL.properties["gpu_index"]):
            factor = float(GPU_THERMAL.properties["latency_factor"])
            ttft *= factor
            per_token *= factor
        return ttft + output_tokens * per_token + network, ttft

    def _feedback(self, status: str, hallucinated: bool) -> int | None:
        roll = self.rng.random()
        if status in ("error", "timeout"):
            return -1 if roll < 0.08 else None
        if hallucinated:
            return -1 if roll < 0.15 else (1 if roll > 0.96 else None)
        if roll < 0.02:
            return -1
        if roll > 0.92:
            return 1
        return None


def _image_records(rng: random.Random, total: float, out: Path, labels: Labels
                   ) -> list[dict[str, Any]]:
    names = list(TENANTS)
    records = []
    for index, when in enumerate(_arrivals(rng, total)):
        request_id = _request_id(rng)
        scene = images.random_scene(rng)
        prompt = images.describe(rng, scene)
        roll = rng.random()
        status, error_type = ("ok", None)
        if roll < 0.02:
            status, error_type = "filtered", "content_filter"
            prompt = rng.choice((
                "a photorealistic portrait of a famous actor, ", "a realistic photo of a "
                "politician at a protest, ", "fake passport photo page, ")) + prompt
        elif roll < 0.03:
            status, error_type = "error", "cuda_oom"
        tenant = rng.choices(names, weights=[TENANTS[t][0] for t in names])[0]
        rec: dict[str, Any] = {
            "request_id": request_id,
            "timestamp": _rfc3339_ms(when),
            "service": IMAGE_SERVICE,
            "model": IMAGE_MODEL,
            "model_version": IMAGE_MODEL_VERSION,
            "variant": "primary",
            "modality": "image",
            "tenant": tenant,
            "region": TENANTS[tenant][1],
            "prompt": prompt,
        }
        if status == "ok":
            drawn = scene
            if rng.random() < 0.08:
                drawn = images.mismatch(rng, scene)
                labels.mismatched_images.append(request_id)
            name = f"{IMAGES_DIR}/img_{index:06d}.png"
            (out / name).write_bytes(images.render_png(drawn))
            rec["image"] = name
            latency = _lognormal(rng, 620, 0.3)
        elif status == "filtered":
            latency = _lognormal(rng, 90, 0.3)
        else:
            latency = _lognormal(rng, 1400, 0.2)
        rec["status"] = status
        if error_type:
            rec["error_type"] = error_type
        rec["latency_ms"] = round(latency, 1)
        rec["input_tokens"] = _tokens(prompt)
        rec["cost_usd"] = IMAGE_PRICE if status == "ok" else 0.0
        rec["safety_flagged"] = status == "filtered"
        rec["cache_hit"] = False
        # Keys outside the sample contract (kept in `attributes`).
        rec["seed"] = rng.getrandbits(31)
        rec["steps"] = 4
        rec["width"] = images.IMAGE_SIZE
        rec["height"] = images.IMAGE_SIZE
        records.append(rec)
        labels.counts[f"image_{status}"] += 1
    return records


def _json_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _write_gzip_lines(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """JSON lines, gzipped with a fixed header (no name, mtime 0) so bytes are reproducible."""
    count = 0
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                               compresslevel=9, mtime=0) as gz:
        for record in records:
            gz.write(_json_line(record))
            count += 1
    return count


def _clear_images(folder: Path) -> None:
    for old in folder.glob("img_*.png"):
        old.unlink()


def generate(out: Path, seed: int = 7, scale: float = 1.0,
             gpu_interval_s: int = GPU_INTERVAL_S) -> dict[str, Any]:
    """Write the data set to ``out`` and return a summary of what was written.

    ``scale`` multiplies the sample counts; GPU readings always cover the whole span, one
    per GPU every ``gpu_interval_s`` seconds."""
    out = Path(out)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    (out / LABELS_FILE).parent.mkdir(parents=True, exist_ok=True)
    _clear_images(out / IMAGES_DIR)
    labels = Labels()

    chat_rng = random.Random(f"{seed}:chat")
    sampler = ChatSampler(chat_rng, labels)
    chat_count = _write_gzip_lines(
        out / CHAT_SAMPLES_FILE,
        (sampler.record(when) for when in _arrivals(chat_rng, CHAT_SAMPLES_TOTAL * scale)),
    )

    image_rng = random.Random(f"{seed}:image")
    image_records = _image_records(image_rng, IMAGE_SAMPLES_TOTAL * scale, out, labels)
    (out / IMAGE_SAMPLES_FILE).write_bytes(b"".join(_json_line(r) for r in image_records))

    gpu_count = _write_gzip_lines(out / GPU_TELEMETRY_FILE, gpu_readings(seed, gpu_interval_s))

    summary: dict[str, Any] = {
        "seed": seed,
        "scale": scale,
        "span": {"start": _rfc3339_ms(DATA_START), "end": _rfc3339_ms(DATA_END)},
        "chat_samples": chat_count,
        "image_samples": len(image_records),
        "images": sum(1 for r in image_records if "image" in r),
        "gpu_readings": gpu_count,
        "counts": dict(sorted(labels.counts.items())),
        "hallucinated_responses": len(labels.hallucinated),
        "prompts_with_pii": len(labels.pii),
        "mismatched_images": len(labels.mismatched_images),
    }
    meta = {
        "about": "Ground truth of the genobs demo data (not samples; do not ingest).",
        "summary": summary,
        "topics_by_day": {d: dict(sorted(c.items())) for d, c in sorted(labels.topics_by_day.items())},
        "hallucinated": labels.hallucinated,
        "pii": labels.pii,
        "mismatched_images": labels.mismatched_images,
    }
    (out / LABELS_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genobs.sample_data.generate",
        description="Generate the genobs demo data set (deterministic for a given seed).",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data",
                        help="output folder (default: sample_data/data)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply sample counts, e.g. 0.05 for a quick small set")
    parser.add_argument("--gpu-interval-s", type=int, default=GPU_INTERVAL_S,
                        help=f"seconds between GPU readings (default: {GPU_INTERVAL_S})")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be > 0")
    if args.gpu_interval_s <= 0:
        parser.error("--gpu-interval-s must be > 0")
    summary = generate(args.out, seed=args.seed, scale=args.scale,
                       gpu_interval_s=args.gpu_interval_s)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
