"""The demo data set (sample_data/): its generator is deterministic, the committed files
follow the DESIGN §3 contracts, and the planted incidents are really in the data."""

from __future__ import annotations

import bisect
import gzip
import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from genobs.records import GPU_FIELDS, REQUIRED_SAMPLE_FIELDS, SAMPLE_FIELDS, FieldSpec, Kind
from genobs.sample_data import (
    CANARY_END,
    CANARY_START,
    CHAT_SAMPLES_FILE,
    DATA_END,
    DATA_START,
    ERROR_BURST,
    GPU_TELEMETRY_FILE,
    GPU_THERMAL,
    HALLUCINATION_REGRESSION,
    IMAGE_SAMPLES_FILE,
    INCIDENTS,
    LABELS_FILE,
    PROMPT_DRIFT,
    ROLLOUT_END,
    ROLLOUT_START,
    data_dir,
)
from genobs.sample_data.conversations import luhn_valid
from genobs.sample_data.generate import generate, main

SAMPLE_SPECS = {f.name: f for f in SAMPLE_FIELDS}
GPU_SPECS = {f.name: f for f in GPU_FIELDS}
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _when(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["timestamp"])


@pytest.fixture(scope="module")
def chat() -> list[dict[str, Any]]:
    return _read_jsonl(data_dir() / CHAT_SAMPLES_FILE)


@pytest.fixture(scope="module")
def image_samples() -> list[dict[str, Any]]:
    return _read_jsonl(data_dir() / IMAGE_SAMPLES_FILE)


@pytest.fixture(scope="module")
def gpu() -> list[dict[str, Any]]:
    return _read_jsonl(data_dir() / GPU_TELEMETRY_FILE)


@pytest.fixture(scope="module")
def labels() -> dict[str, Any]:
    return json.loads((data_dir() / LABELS_FILE).read_text())


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------------ the generator

def test_generator_is_deterministic_and_seeded(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", seed=7, scale=0.02, gpu_interval_s=900)
    second = generate(tmp_path / "b", seed=7, scale=0.02, gpu_interval_s=900)
    assert first == second
    assert first["chat_samples"] > 200 and first["images"] > 0 and first["gpu_readings"] > 0
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert {CHAT_SAMPLES_FILE, IMAGE_SAMPLES_FILE, GPU_TELEMETRY_FILE, LABELS_FILE} <= a.keys()
    assert all(a[name] == b[name] for name in a), "same seed must give the same bytes"

    # The command line writes where --out says; another seed gives other data.
    assert main(["--out", str(tmp_path / "c"), "--seed", "8", "--scale", "0.02",
                 "--gpu-interval-s", "900"]) == 0
    other = _files(tmp_path / "c")
    assert other[CHAT_SAMPLES_FILE] != a[CHAT_SAMPLES_FILE]


def test_regenerating_replaces_old_images(tmp_path: Path) -> None:
    generate(tmp_path, seed=1, scale=0.05, gpu_interval_s=3600)
    generate(tmp_path, seed=2, scale=0.02, gpu_interval_s=3600)
    referenced = {r["image"] for r in _read_jsonl(tmp_path / IMAGE_SAMPLES_FILE) if "image" in r}
    on_disk = {str(p.relative_to(tmp_path)) for p in (tmp_path / "images").glob("*.png")}
    assert on_disk == referenced


# ------------------------------------------------------------------ the committed files

def _valid(spec: FieldSpec, v: Any) -> bool:
    kind = spec.kind
    if kind in (Kind.NUMBER, Kind.INTEGER):
        wanted = (int, float) if kind is Kind.NUMBER else int
        minimum = spec.minimum if spec.minimum is not None else float("-inf")
        return isinstance(v, wanted) and not isinstance(v, bool) and v >= minimum
    if kind is Kind.STRING:
        return isinstance(v, str) and len(v) <= (spec.max_length or 10**9)
    if kind is Kind.TIMESTAMP:
        return isinstance(v, str) and bool(RFC3339_Z.match(v))
    if kind is Kind.BOOLEAN:
        return isinstance(v, bool)
    if kind is Kind.STRING_LIST:
        return isinstance(v, list) and all(isinstance(s, str) for s in v)
    if kind is Kind.OBJECT:
        return isinstance(v, dict)
    if kind is Kind.ENUM:
        return v in spec.choices
    if kind is Kind.FEEDBACK:
        return v in (-1, 0, 1) and not isinstance(v, bool)
    raise AssertionError(f"unknown kind {kind}")


def _type_problem(spec: FieldSpec, value: Any) -> str | None:
    if value is None or _valid(spec, value):
        return None
    return f"{spec.name}={value!r} is not a valid {spec.kind.value}"


def _sample_problems(record: dict[str, Any]) -> list[str]:
    problems = [f"missing {name}" for name in REQUIRED_SAMPLE_FIELDS if name not in record]
    for key, value in record.items():
        if key in SAMPLE_SPECS:
            problem = _type_problem(SAMPLE_SPECS[key], value)
        else:  # unknown keys end up in `attributes`, which holds scalars only
            problem = None if isinstance(value, (str, int, float, bool)) else f"{key} not scalar"
        if problem:
            problems.append(problem)
    return problems


def test_sample_files_follow_the_sample_contract(chat: list[dict[str, Any]],
                                                 image_samples: list[dict[str, Any]]) -> None:
    for name, records in (("chat", chat), ("image", image_samples)):
        for line, record in enumerate(records, 1):
            problems = _sample_problems(record)
            assert not problems, f"{name} line {line}: {problems}"
            assert DATA_START <= _when(record) < DATA_END
        times = [_when(r) for r in records]
        assert times == sorted(times), f"{name} samples are in time order"
    ids = [r["request_id"] for r in chat + image_samples]
    assert len(ids) == len(set(ids)), "request_id is unique"


def test_volumes_and_size_budget(chat: list[dict[str, Any]],
                                 image_samples: list[dict[str, Any]]) -> None:
    assert 20_000 <= len(chat) <= 40_000
    assert 100 <= len(image_samples) <= 500
    assert {r["service"] for r in chat} == {"chat-api"}
    assert {r["service"] for r in image_samples} == {"image-gen"}
    total = sum(p.stat().st_size for p in data_dir().rglob("*") if p.is_file())
    assert total < 20 * 1024 * 1024


def test_chat_samples_carry_rag_fields_and_extra_keys(chat: list[dict[str, Any]]) -> None:
    ok = [r for r in chat if r["status"] == "ok"]
    assert all(r["context"] and r["response"] for r in ok)
    assert 0.05 < sum("reference" in r for r in ok) / len(ok) < 0.3
    assert {"error", "timeout", "filtered"} <= {r["status"] for r in chat}
    assert all(r["safety_flagged"] for r in chat if r["status"] == "filtered")
    assert {r.get("feedback") for r in chat} >= {-1, 1, None}
    assert any(r["cache_hit"] for r in chat) and not all(r["cache_hit"] for r in chat)
    for key in ("session_id", "user_agent", "host", "gpu_index"):
        assert all(key in r for r in chat)
    latencies = sorted(r["latency_ms"] for r in ok)
    assert 200 < latencies[len(latencies) // 2] < 2000  # hundreds of ms to seconds
    assert all(r["ttft_ms"] < r["latency_ms"] for r in ok)


def test_image_samples_point_at_png_files(image_samples: list[dict[str, Any]]) -> None:
    with_image = [r for r in image_samples if "image" in r]
    assert len(with_image) >= 100
    for record in image_samples:
        assert record["modality"] == "image"
        assert ("image" in record) == (record["status"] == "ok")
    for record in with_image:
        path = data_dir() / record["image"]
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.size == (96, 96)


def test_image_shows_the_colour_it_was_asked_for(image_samples: list[dict[str, Any]],
                                                  labels: dict[str, Any]) -> None:
    from genobs.sample_data.images import COLOURS

    mismatched = set(labels["mismatched_images"])
    checked = 0
    for record in image_samples:
        if "image" not in record or record["request_id"] in mismatched:
            continue
        words = record["prompt"].split()
        colour = next(w for w in words if w in COLOURS)
        with Image.open(data_dir() / record["image"]) as picture:
            colours = picture.convert("RGB").getcolors(maxcolors=96 * 96)
            target = COLOURS[colour]
            assert any(sum(abs(a - b) for a, b in zip(rgb, target)) < 30 for _, rgb in colours)
        checked += 1
    assert checked > 200


def test_gpu_telemetry_follows_the_gpu_contract(gpu: list[dict[str, Any]]) -> None:
    for line, row in enumerate(gpu, 1):
        for name in ("timestamp", "host", "gpu_index"):
            assert row.get(name) is not None, f"line {line}: missing {name}"
        for key, value in row.items():
            assert key in GPU_SPECS, f"line {line}: unknown GPU field {key}"
            problem = _type_problem(GPU_SPECS[key], value)
            assert problem is None, f"line {line}: {problem}"
    per_gpu = Counter((r["host"], r["gpu_index"]) for r in gpu)
    assert sorted(per_gpu) == [("gpu-node-a", 0), ("gpu-node-a", 1),
                               ("gpu-node-b", 0), ("gpu-node-b", 1)]
    minutes = int((DATA_END - DATA_START).total_seconds() // 60)
    assert set(per_gpu.values()) == {minutes}  # one reading per GPU per minute
    assert len({r["gpu_uuid"] for r in gpu}) == 4


def test_gpu_utilisation_follows_traffic(chat: list[dict[str, Any]],
                                         gpu: list[dict[str, Any]]) -> None:
    requests: Counter[str] = Counter(r["timestamp"][:13] for r in chat)
    util: defaultdict[str, list[float]] = defaultdict(list)
    for row in gpu:
        if row["host"] == "gpu-node-a":
            util[row["timestamp"][:13]].append(row["utilization_pct"])
    hours = sorted(util)
    xs = [requests[h] for h in hours]
    ys = [statistics.fmean(util[h]) for h in hours]
    assert statistics.correlation(xs, ys) > 0.8


# -------------------------------------------------------------------------- incidents

def test_incident_windows_are_inside_the_data() -> None:
    assert set(INCIDENTS) == {"error_burst", "canary_hallucination", "prompt_drift",
                              "gpu_thermal"}
    for incident in INCIDENTS.values():
        assert DATA_START <= incident.start < incident.end <= DATA_END
        assert incident.offset_start == incident.start - DATA_START
    assert data_dir().is_dir()


def _failed(record: dict[str, Any]) -> bool:
    return record["status"] in ("error", "timeout")


def test_error_burst_burns_a_999_availability_budget(chat: list[dict[str, Any]]) -> None:
    inside = [r for r in chat if ERROR_BURST.contains(_when(r))]
    outside = [r for r in chat if not ERROR_BURST.contains(_when(r))]
    rate_in = sum(map(_failed, inside)) / len(inside)
    rate_out = sum(map(_failed, outside)) / len(outside)
    assert 0.15 < rate_in < 0.30
    assert rate_out < 0.0005
    p50 = lambda rs: statistics.median(r["latency_ms"] for r in rs if r["status"] == "ok")  # noqa: E731
    assert p50(inside) > 3 * p50(outside)

    # The whole week spends more than a 99.9 % budget; the burst alone does it.
    assert sum(map(_failed, chat)) / len(chat) > 0.001
    # Fast burn (SRE workbook page): burn rate > 14.4 over both the last 1h and 5m.
    error_budget = 0.001
    end = ERROR_BURST.end
    for window in (timedelta(hours=1), timedelta(minutes=5)):
        events = [r for r in chat if end - window <= _when(r) < end]
        assert (sum(map(_failed, events)) / len(events)) / error_budget > 14.4

    # Outside the burst no 1h window burns that fast: only the burst pages.
    times = [_when(r) for r in chat]
    for record in outside:
        if _failed(record):
            t = _when(record)
            lo, hi = bisect.bisect_left(times, t - timedelta(hours=1)), bisect.bisect_right(times, t)
            window = [r for r in chat[lo:hi] if not ERROR_BURST.contains(_when(r))]
            assert sum(map(_failed, window)) / len(window) / error_budget < 14.4


def test_rollout_and_canary_arms(chat: list[dict[str, Any]]) -> None:
    for record in chat:
        when, version, variant = _when(record), record["model_version"], record["variant"]
        assert record["model"] == "chat-large"
        if when < ROLLOUT_START:
            assert version == "v1.4"
        elif when >= ROLLOUT_END and when < CANARY_START:
            assert version == "v1.5"
        if when < CANARY_START:
            assert variant == "primary"
        else:
            assert (variant, version) in {("baseline", "v1.5"), ("canary", "v1.6")}
    last_day = [r for r in chat if CANARY_START <= _when(r) < CANARY_END]
    share = sum(r["variant"] == "canary" for r in last_day) / len(last_day)
    assert 0.10 <= share <= 0.20


def _numbers_absent_from_context(record: dict[str, Any]) -> bool:
    context = " ".join(record["context"])
    return any(n not in context for n in re.findall(r"\d+(?:\.\d+)?", record["response"]))


def test_canary_hallucinates_more_than_baseline(chat: list[dict[str, Any]],
                                                labels: dict[str, Any]) -> None:
    hallucinated = labels["hallucinated"]
    window = [r for r in chat if HALLUCINATION_REGRESSION.contains(_when(r)) and r["status"] == "ok"]
    arms = {arm: [r for r in window if r["variant"] == arm] for arm in ("baseline", "canary")}
    rate = {arm: sum(r["request_id"] in hallucinated for r in rs) / len(rs)
            for arm, rs in arms.items()}
    assert rate["canary"] > 0.2 and rate["baseline"] < 0.05
    # Visible in the text itself, without the labels: figures the context does not contain.
    unsupported = {arm: sum(map(_numbers_absent_from_context, rs)) / len(rs)
                   for arm, rs in arms.items()}
    assert unsupported["canary"] > 4 * unsupported["baseline"]


def test_canary_is_as_fast_as_baseline(chat: list[dict[str, Any]]) -> None:
    """Incident 2 is one of quality, not speed: v1.6 serves at v1.5's speed, and only its
    longer answers (more output tokens) add decode time, within the canary gate's 5 %."""
    window = [r for r in chat if HALLUCINATION_REGRESSION.contains(_when(r)) and r["status"] == "ok"]
    arms = {arm: [r for r in window if r["variant"] == arm] for arm in ("baseline", "canary")}
    mean = {arm: statistics.fmean(r["latency_ms"] for r in rs) for arm, rs in arms.items()}
    ttft = {arm: statistics.median(r["ttft_ms"] for r in rs) for arm, rs in arms.items()}
    tokens = {arm: statistics.fmean(r["output_tokens"] for r in rs) for arm, rs in arms.items()}
    assert 1.0 < mean["canary"] / mean["baseline"] < 1.05
    assert 0.95 < ttft["canary"] / ttft["baseline"] < 1.05
    assert 1.0 < tokens["canary"] / tokens["baseline"] < 1.15


def test_hallucination_labels_match_the_text(chat: list[dict[str, Any]],
                                             labels: dict[str, Any]) -> None:
    by_id = {r["request_id"]: r for r in chat}
    hallucinated = labels["hallucinated"]
    assert 300 < len(hallucinated) < 3000
    for request_id, label in hallucinated.items():
        record = by_id[request_id]
        context = "\n".join(record["context"])
        for span in label["unsupported"]:
            assert span in record["response"] and span not in context
    faithful = [r for r in chat if r["status"] == "ok" and r["request_id"] not in hallucinated]
    assert sum(map(_numbers_absent_from_context, faithful)) / len(faithful) < 0.01


NEW_TOPIC_WORDS = re.compile(r"2027|Assist|outage|SLA|sla |uptime|status page|post mortem|"
                             r"credit for|incident")


def test_prompt_topics_drift_from_day_five(chat: list[dict[str, Any]],
                                           labels: dict[str, Any]) -> None:
    def share(records: list[dict[str, Any]]) -> float:
        return sum(bool(NEW_TOPIC_WORDS.search(r["prompt"])) for r in records) / len(records)

    ok = [r for r in chat if r["status"] == "ok"]
    before = [r for r in ok if _when(r) < PROMPT_DRIFT.start]
    after = [r for r in ok if PROMPT_DRIFT.contains(_when(r))]
    assert share(before) < 0.01 and share(after) > 0.25
    new_topics = set(PROMPT_DRIFT.properties["new_topics"])
    for day, topics in labels["topics_by_day"].items():
        new = sum(n for t, n in topics.items() if t in new_topics) / sum(topics.values())
        assert (new > 0.3) == (day >= PROMPT_DRIFT.start.strftime("%Y-%m-%d"))


def test_gpu_thermal_throttling_window(gpu: list[dict[str, Any]],
                                       chat: list[dict[str, Any]]) -> None:
    host, index = GPU_THERMAL.properties["host"], GPU_THERMAL.properties["gpu_index"]
    throttled = [r for r in gpu if r["throttle_reasons"] != "none"]
    window_minutes = int((GPU_THERMAL.end - GPU_THERMAL.start).total_seconds() // 60)
    assert len(throttled) == window_minutes
    normal_clock = statistics.median(r["sm_clock_mhz"] for r in gpu)
    for row in throttled:
        assert GPU_THERMAL.contains(_when(row))
        assert (row["host"], row["gpu_index"]) == (host, index)
        assert "hw_thermal_slowdown" in row["throttle_reasons"].split(",")
        assert row["temperature_c"] >= 85 and row["sm_clock_mhz"] < 0.7 * normal_clock
    assert max(r["temperature_c"] for r in throttled) >= 89
    assert max(r["temperature_c"] for r in gpu if r["throttle_reasons"] == "none") < 88

    # Requests served by that GPU are slower while it throttles.
    def on_gpu(r: dict[str, Any]) -> bool:
        return r["host"] == host and r["gpu_index"] == index and r["status"] == "ok"

    during = [r["latency_ms"] for r in chat if on_gpu(r) and GPU_THERMAL.contains(_when(r))]
    before = [r["latency_ms"] for r in chat if on_gpu(r)
              and GPU_THERMAL.start - timedelta(hours=3) <= _when(r) < GPU_THERMAL.start]
    assert statistics.median(during) > 1.4 * statistics.median(before)


PII_PATTERNS = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "api_key": re.compile(r"\b(?:sk-proj-\w{20,}|AKIA[0-9A-Z]{16}|ghp_\w{30,})"),
    "phone": re.compile(r"\+\d{1,3}[ -]\d|\(\d{3}\) \d{3}-\d{4}"),
}


def test_some_prompts_carry_pii(chat: list[dict[str, Any]], labels: dict[str, Any]) -> None:
    counts = labels["summary"]["counts"]
    for kind, pattern in PII_PATTERNS.items():
        found = sum(bool(pattern.search(r.get("prompt", ""))) for r in chat)
        assert found == counts[f"pii_{kind}"] > 50, kind
    cards = [m.group(0) for r in chat
             for m in re.finditer(r"\b(?:\d[ -]?){15}\d\b", r.get("prompt", ""))]
    assert sum(map(luhn_valid, cards)) == counts["pii_card"] > 50
