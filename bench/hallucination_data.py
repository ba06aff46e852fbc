"""Labelled data for fitting and benchmarking the hallucination evaluator (bench/ only).

* HaluEval QA (tests/data/halueval_qa.jsonl, RUCAIBox/HaluEval generation/qa): each
  record's right_answer is label 0 and hallucinated_answer label 1, grounded on `knowledge`, with
  `question` as the prompt. Even-indexed records: training half; odd-indexed: held out.
* The demo data's support-chat samples (sample_data/data/chat_samples.jsonl.gz): every answered
  sample (status ok) with a response and context; label 1 when meta/labels.json["hallucinated"]
  lists its request_id (a planted wrong figure and/or invented sentence), else 0. Multi-sentence
  dialogue responses with pleasantries, follow-up offers and facts taken from two passages.
  Fixed split by a hash of the request_id: even = dev/fit half, odd = held-out half.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_HALUEVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "halueval_qa.jsonl"


def load_halueval(path: Path = DEFAULT_HALUEVAL) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(items, labels, record index) with two items per record: right then hallucinated answer."""
    items, labels, record = [], [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            pair = [(r["right_answer"], 0), (r["hallucinated_answer"], 1)]
            item = {"context": [r["knowledge"]], "prompt": r["question"]}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}:{n + 1}: bad HaluEval record: {exc}") from exc
        for response, label in pair:
            items.append({**item, "response": response})
            labels.append(label)
            record.append(n)
    return items, np.array(labels), np.array(record)


@dataclass(frozen=True)
class DemoChat:
    items: list[dict]  # response / context / prompt / reference of each sample
    labels: np.ndarray  # 1 = planted hallucination
    held_out: np.ndarray  # bool: odd request-id hash (report half); False = dev/fit half
    model_version: list[str]
    day: list[str]  # UTC date of the sample's timestamp, "2026-11-22"
    request_ids: list[str]


def demo_half(request_id: str) -> int:
    """0 = dev/fit half, 1 = held-out half (CRC-32 of the request id, stable across runs)."""
    return zlib.crc32(request_id.encode("utf-8")) % 2


def load_demo_chat(data_dir: Path | None = None) -> DemoChat:
    if data_dir is None:
        from genobs import sample_data
        data_dir = sample_data.data_dir()
    samples_path = data_dir / "chat_samples.jsonl.gz"
    labels_path = data_dir / "meta" / "labels.json"
    try:
        hallucinated = json.loads(labels_path.read_text(encoding="utf-8"))["hallucinated"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise SystemExit(f"{labels_path}: cannot read the 'hallucinated' labels: {exc}") from exc
    items, labels, held_out, versions, days, ids = [], [], [], [], [], []
    with gzip.open(samples_path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{samples_path}:{n}: bad JSON: {exc}") from exc
            if r.get("status", "ok") != "ok" or not r.get("context") or not r.get("response"):
                continue
            rid = r["request_id"]
            items.append({"response": r["response"], "context": r["context"], "prompt": r.get("prompt"),
                          "reference": r.get("reference")})
            labels.append(int(rid in hallucinated))
            held_out.append(bool(demo_half(rid)))
            versions.append(r.get("model_version") or "")
            days.append((r.get("timestamp") or "")[:10])
            ids.append(rid)
    return DemoChat(items, np.array(labels), np.array(held_out), versions, days, ids)


def balanced_subset(labels: np.ndarray, mask: np.ndarray, request_ids: list[str], faithful_per_hallucinated: float = 1.0) -> np.ndarray:
    """Indices in `mask`: every hallucinated sample plus as many faithful ones (times the ratio),
    the faithful ones picked by the lowest CRC-32 of "faithful:" + request id (deterministic)."""
    pos = np.flatnonzero(mask & (labels == 1))
    neg = np.flatnonzero(mask & (labels == 0))
    keys = np.array([zlib.crc32(f"faithful:{request_ids[i]}".encode()) for i in neg])
    take = neg[np.argsort(keys, kind="stable")[: int(round(len(pos) * faithful_per_hallucinated))]]
    return np.sort(np.concatenate([pos, take]))
