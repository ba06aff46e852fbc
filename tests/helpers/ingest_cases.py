"""Sample records and the catalogue of bad ingest input.

``bad_ingest_cases`` is shared: tests/test_ingest.py runs each case through the CLI, and
tests/test_validation_paths.py feeds the JSONL ones to both validation paths, which must agree.
Each case is ``(file name, content, exit code, accepted request ids, dead letters as
(line, message part), messages the user sees)``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

TS = "2025-01-15T10:00:00Z"


def sample(request_id: str, **fields: Any) -> dict[str, Any]:
    return {"request_id": request_id, "timestamp": TS, "model": "chat-large", "model_version": "v1", **fields}


def jsonl(*records: dict[str, Any] | str | bytes) -> bytes:
    out = []
    for r in records:
        out.append(r if isinstance(r, bytes) else r.encode() if isinstance(r, str) else json.dumps(r).encode())
    return b"\n".join(out) + b"\n"



def bad_ingest_cases() -> list[Any]:
    ten_mb = "x" * (10 * 1024 * 1024)
    return [
        pytest.param(
            "a.jsonl",
            jsonl(sample("ok-1"), '{"request_id": "broken", "timestamp": ', sample("ok-2")),
            3, ["ok-1", "ok-2"], [(2, "invalid JSON")], ["line 2", "invalid JSON"],
            id="invalid-json-line",
        ),
        pytest.param(
            "a.jsonl",
            jsonl(sample("ok-1"), sample("t1", latency_ms="fast"), sample("t2", input_tokens=1.5),
                  sample("t3", prompt={"text": "hi"}), sample("t4", safety_flagged="maybe"),
                  sample("t5", timestamp="next tuesday"), sample("t6", feedback=5), sample("t7", context=5),
                  sample("t8", attributes=[1, 2]), {**sample("t9"), "request_id": 12345}),
            3, ["12345", "ok-1"],
            [(2, "latency_ms: expected a number"), (3, "input_tokens: expected an integer"),
             (4, "prompt: expected a string, got object"), (5, "safety_flagged: expected true or false"),
             (6, "timestamp:"), (7, "feedback: must be -1, 0 or 1"), (8, "context: expected a list of strings"),
             (9, "attributes: expected an object")],
            ["line 2", "latency_ms", "line 4", "prompt", "line 9", "attributes"],
            id="wrong-types",
        ),
        pytest.param(
            "a.jsonl",
            jsonl({"request_id": "m1", "timestamp": TS, "model_version": "v1"},
                  {"timestamp": TS, "model": "m", "model_version": "v1"},
                  sample("", ), sample("ok-1"), sample("m4", model_version=None)),
            3, ["ok-1"],
            [(1, "model: missing (required)"), (2, "request_id: missing (required)"),
             (3, "request_id: empty (required)"), (5, "model_version: missing (required)")],
            ["line 1", "model: missing", "line 2", "request_id: missing"],
            id="missing-required-fields",
        ),
        pytest.param(
            "a.jsonl",
            jsonl(sample("n1", latency_ms=-1), sample("n2", output_tokens=-3), sample("n3", ttft_ms=-0.5),
                  sample("n4", cost_usd=-1), sample("ok-1", latency_ms=0, output_tokens=0)),
            3, ["ok-1"],
            [(1, "latency_ms: must be >= 0"), (2, "output_tokens: must be >= 0"), (3, "ttft_ms: must be >= 0"),
             (4, "cost_usd: must be >= 0")],
            ["line 1", "latency_ms: must be >= 0", "line 2", "output_tokens"],
            id="negative-latency-or-tokens",
        ),
        pytest.param(
            "a.jsonl",
            jsonl(sample("ok-1", status="timeout"), sample("s1", status="exploded"), sample("s2", modality="audio")),
            3, ["ok-1"],
            [(2, 'status: "exploded" is not one of ok, error, timeout, filtered'),
             (3, 'modality: "audio" is not one of text, image')],
            ["line 2", "status", "exploded"],
            id="unknown-status",
        ),
        pytest.param(
            "a.jsonl",
            jsonl(sample("ok-1"), sample("big", prompt=ten_mb), sample("ok-2")),
            3, ["ok-1", "ok-2"], [(2, "prompt: 10485760 characters, over the limit")],
            ["line 2", "prompt", "over the limit"],
            id="10MB-string-field",
        ),
        pytest.param(
            "a.jsonl",
            jsonl(sample("ok-1"), b'{"request_id": "u1", "timestamp": "' + TS.encode() +
                  b'", "model": "m\xff\xfe", "model_version": "v1"}', sample("ok-2")),
            3, ["ok-1", "ok-2"], [(2, "not valid UTF-8")], ["line 2", "not valid UTF-8"],
            id="non-utf8-bytes",
        ),
        pytest.param(
            "a.jsonl",
            jsonl(sample("d1", prompt="first"), sample("d2"), sample("d1", prompt="second")),
            3, ["d1", "d2"], [(3, "request_id: duplicate of line 1")], ["line 3", "duplicate of line 1"],
            id="duplicate-request-ids-in-one-file",
        ),
        pytest.param("a.jsonl", b"", 2, [], [], ["a.jsonl", "empty file"], id="empty-file"),
        pytest.param("a.jsonl", b"\n  \n\n", 2, [], [], ["a.jsonl", "no records"], id="blank-lines-only"),
        pytest.param(
            "a.csv",
            f"request_id,timestamp,model\nc1,{TS},m\n".encode(),
            2, [], [(2, "model_version: missing (required)")],
            ["a.csv", "model_version", "--map FIELD=COLUMN"],
            id="csv-missing-column",
        ),
        pytest.param(
            "a.csv",
            f"request_id,timestamp,model,model_version\nok-1,{TS},m,v1\nshort,{TS},m\n".encode(),
            3, ["ok-1"], [(3, "model_version: missing (required)")], ["line 3", "model_version"],
            id="csv-row-missing-a-cell",
        ),
        pytest.param(None, None, 2, [], [], ["no such file"], id="nonexistent-path"),
    ]
