"""The collector HTTP API on a real server (127.0.0.1, free port) over a real DuckDB file."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genobs.runtime import PlatformHandle, ServerSettings, start_platform
from genobs import client as server_client
from genobs.store import server_info_path
from helpers.servers import start_server

SMALL_LIMIT = 64 * 1024


def sample(request_id: str, **fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "request_id": request_id,
        "timestamp": "2025-01-15T10:00:00Z",
        "service": "chat-api",
        "model": "chat-large",
        "model_version": "2025-01-01",
        "prompt": f"question {request_id}",
        "response": f"answer {request_id}",
        "latency_ms": 850.0,
        "ttft_ms": 120.0,
        "input_tokens": 12,
        "output_tokens": 30,
        "cost_usd": 0.002,
    }
    record.update(fields)
    return record


def start(tmp_path: Path, **settings: object) -> PlatformHandle:
    return start_server(tmp_path / "genobs.duckdb", **{"max_body_bytes": SMALL_LIMIT, **settings})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PlatformHandle]:
    handle = start(tmp_path)
    yield handle
    handle.stop()
    handle.store.close()


@pytest.fixture
def http(server: PlatformHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def stored(server: PlatformHandle, request_id: str) -> dict[str, object] | None:
    cur = server.store.execute("SELECT * FROM samples WHERE request_id = ?", [request_id])
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row))


def test_single_object_is_stored_before_the_answer(server: PlatformHandle, http: httpx.Client) -> None:
    response = http.post("/v1/samples", json=sample("one"))
    assert response.status_code == 200
    answer = response.json()
    assert (answer["received"], answer["accepted"], answer["rejected"]) == (1, 1, 0)
    row = stored(server, "one")
    assert row is not None
    assert row["model"] == "chat-large" and row["latency_ms"] == 850.0 and row["variant"] == "primary"


def test_array_with_a_bad_record_answers_counts_and_names_the_field(
    server: PlatformHandle, http: httpx.Client
) -> None:
    body = [sample("a1"), sample("a2", latency_ms=-3), sample("a3")]
    answer = http.post("/v1/samples", json=body).json()
    assert (answer["received"], answer["accepted"], answer["rejected"]) == (3, 2, 1)
    [error] = answer["errors"]
    assert error["line"] == 2 and error["request_id"] == "a2" and "latency_ms" in error["error"]
    assert stored(server, "a2") is None and stored(server, "a3") is not None
    dead = server.store.fetchall("SELECT source, error FROM dead_letter")
    assert len(dead) == 1 and "latency_ms" in dead[0][1]


def test_gzip_ndjson_body(server: PlatformHandle, http: httpx.Client) -> None:
    lines = [json.dumps(sample(f"n{i}")) for i in range(5)]
    body = gzip.compress(("\n".join(lines[:3]) + "\n\n" + "\r\n".join(lines[3:]) + "\n").encode())
    response = http.post(
        "/v1/samples", content=body,
        headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 5
    assert server.store.fetchone("SELECT count(*) FROM samples WHERE request_id LIKE 'n%'") == (5,)


def test_ndjson_sent_as_application_json_is_read_line_by_line(server: PlatformHandle, http: httpx.Client) -> None:
    body = "\n".join(json.dumps(sample(f"j{i}")) for i in range(3))
    response = http.post("/v1/samples", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["accepted"] == 3


def test_redaction_applies_like_file_ingest(server: PlatformHandle, http: httpx.Client) -> None:
    answer = http.post("/v1/samples", json=sample("pii", prompt="write to jane.doe@example.com please")).json()
    assert answer["accepted"] == 1 and sum(answer["redactions"].values()) >= 1
    prompt = stored(server, "pii")["prompt"]  # type: ignore[index]
    assert "jane.doe@example.com" not in str(prompt)


def test_reposting_updates_instead_of_duplicating(server: PlatformHandle, http: httpx.Client) -> None:
    http.post("/v1/samples", json=sample("same", latency_ms=100.0))
    answer = http.post("/v1/samples", json=sample("same", latency_ms=200.0)).json()
    assert answer["updated"] == 1
    assert server.store.fetchone("SELECT count(*), max(latency_ms) FROM samples WHERE request_id = 'same'") == (1, 200.0)


def test_nothing_valid_is_400_with_per_record_errors(server: PlatformHandle, http: httpx.Client) -> None:
    response = http.post("/v1/samples", json=[{"request_id": "x", "model": "m"}, sample("y", status="weird")])
    assert response.status_code == 400
    answer = response.json()
    assert answer["accepted"] == 0 and answer["rejected"] == 2
    messages = " | ".join(e["error"] for e in answer["errors"])
    assert "timestamp" in messages and "status" in messages


def test_malformed_json_is_400_and_kept_in_dead_letter(server: PlatformHandle, http: httpx.Client) -> None:
    response = http.post("/v1/samples", content=b'{"request_id": "x",', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "invalid JSON" in response.json()["detail"]
    assert server.store.fetchone("SELECT count(*) FROM dead_letter") == (1,)


def test_empty_body_is_400(http: httpx.Client) -> None:
    assert http.post("/v1/samples", content=b"", headers={"Content-Type": "application/x-ndjson"}).status_code == 400
    assert http.post("/v1/samples", json=[]).status_code == 400


def test_unsupported_content_type_or_encoding_is_415(http: httpx.Client) -> None:
    response = http.post("/v1/samples", content=b"request_id=1", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415 and "application/x-ndjson" in response.json()["detail"]
    assert http.post("/v1/samples", content=b"{}", headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    response = http.post("/v1/samples", content=b"{}", headers={"Content-Type": "application/json", "Content-Encoding": "br"})
    assert response.status_code == 415


def test_body_over_the_limit_is_413(server: PlatformHandle, http: httpx.Client) -> None:
    big = [sample(f"big{i}", prompt="x" * 1000) for i in range(SMALL_LIMIT // 1000 + 10)]
    response = http.post("/v1/samples", json=big)
    assert response.status_code == 413
    # a small gzip body that inflates past the limit is refused too (decompression bomb)
    bomb = gzip.compress(b" " * (SMALL_LIMIT * 4))
    assert len(bomb) < SMALL_LIMIT
    response = http.post("/v1/samples", content=bomb,
                         headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert server.store.fetchone("SELECT count(*) FROM samples") == (0,)


def test_invalid_gzip_is_400(http: httpx.Client) -> None:
    response = http.post("/v1/samples", content=b"not gzip at all",
                         headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 400 and "gzip" in response.json()["detail"]


def test_bearer_token_when_configured(tmp_path: Path) -> None:
    handle = start(tmp_path, ingest_token="s3cret-token")
    try:
        with httpx.Client(base_url=handle.url, timeout=30) as http:
            missing = http.post("/v1/samples", json=sample("t1"))
            assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
            wrong = http.post("/v1/samples", json=sample("t1"), headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert http.post("/v1/gpu", json={}, headers={"Authorization": "Basic abc"}).status_code == 401
            assert http.post("/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"}).status_code == 401
            assert handle.store.fetchone("SELECT count(*) FROM samples") == (0,)
            ok = http.post("/v1/samples", json=sample("t1"), headers={"Authorization": "Bearer s3cret-token"})
            assert ok.status_code == 200
            assert http.get("/healthz").status_code == 200   # health and metrics stay open
            assert http.get("/metrics").status_code == 200
    finally:
        handle.stop()
        handle.store.close()


def test_token_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENOBS_INGEST_TOKEN", "from-env")
    settings = ServerSettings(poll_nvml=False)
    assert settings.ingest_token == "from-env" and "from-env" not in repr(settings)
    handle = start_platform(tmp_path / "genobs.duckdb", settings=settings)
    try:
        assert httpx.post(handle.url + "/v1/samples", json=sample("e1")).status_code == 401
        answer = server_client.post_sample_lines(handle.url, [json.dumps(sample("e1")).encode()])
        assert answer["accepted"] == 1
    finally:
        handle.stop()
        handle.store.close()


def test_gpu_readings_json_and_csv(server: PlatformHandle, http: httpx.Client) -> None:
    readings = [
        {"timestamp": "2025-01-15T10:00:00Z", "host": "node-1", "gpu_index": 0, "gpu_name": "NVIDIA H100",
         "utilization_pct": 87.5, "memory_used_mib": 40960, "memory_total_mib": 81920, "power_w": 512.0,
         "temperature_c": 61, "rack": "r12"},
        {"timestamp": "2025-01-15T10:00:00Z", "host": "node-1", "gpu_index": -1},
    ]
    response = http.post("/v1/gpu", json=readings)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1) and "gpu_index" in answer["errors"][0]["message"]
    row = server.store.fetchone(
        "SELECT utilization_pct, power_w, json_extract_string(attributes, '$.rack') FROM gpu_telemetry WHERE host = 'node-1'"
    )
    assert row == (87.5, 512.0, "r12")
    csv_text = (
        "timestamp, index, name, utilization.gpu [%], memory.used [MiB], power.draw [W]\n"
        "2025/01/15 10:00:05.000, 0, NVIDIA A10G, 30 %, 1024 MiB, [N/A]\n"
    )
    response = http.post("/v1/gpu?host=node-2", content=csv_text, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert server.store.fetchone("SELECT utilization_pct, power_w FROM gpu_telemetry WHERE host = 'node-2'") == (30.0, None)
    assert http.post("/v1/gpu", json=[{"host": "x"}]).status_code == 400


def _families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = [(s.name, dict(s.labels), s.value) for s in family.samples]
    return out


def _metrics_when(http: httpx.Client, ready: "callable[[dict], bool]") -> dict:  # type: ignore[valid-type]
    """Model-call metrics are updated just after the answer: poll briefly for them."""
    deadline = time.monotonic() + 10
    while True:
        families = _families(http.get("/metrics").text)
        if ready(families) or time.monotonic() > deadline:
            return families
        time.sleep(0.05)


def test_prometheus_metrics(server: PlatformHandle, http: httpx.Client) -> None:
    http.post("/v1/samples", json=[sample("m1"), sample("m2", status="error", error_type="RateLimit"),
                                   sample("m3", latency_ms=-1)])
    http.post("/v1/gpu", json={"timestamp": "2025-01-15T10:00:00Z", "host": "node-1", "gpu_index": 0,
                               "utilization_pct": 50, "memory_used_mib": 1024, "power_w": 300, "temperature_c": 60})

    def ready(f: dict) -> bool:
        return sum(v for _, _, v in f.get("genobs_requests", [])) >= 2

    families = _metrics_when(http, ready)
    requests = {(l["model"], l["status"]): v for _, l, v in families["genobs_requests"]}
    assert requests == {("chat-large", "ok"): 1.0, ("chat-large", "error"): 1.0}
    labels = families["genobs_requests"][0][1]
    assert set(labels) == {"service", "model", "model_version", "variant", "status"}
    latency = {s[0]: s for s in families["genobs_request_latency_seconds"] if s[0].endswith(("_count", "_sum"))}
    assert latency["genobs_request_latency_seconds_count"][2] == 2
    assert latency["genobs_request_latency_seconds_sum"][2] == pytest.approx(1.7)
    buckets = [float(l["le"]) for n, l, _ in families["genobs_request_latency_seconds"] if n.endswith("_bucket")
               and l["le"] != "+Inf"]
    assert min(buckets) <= 0.05 and max(buckets) >= 120
    assert any(n.endswith("_count") and v == 2 for n, _, v in families["genobs_time_to_first_token_seconds"])
    assert [v for n, _, v in families["genobs_input_tokens"] if n.endswith("_total")] == [24.0]
    assert [v for n, _, v in families["genobs_output_tokens"] if n.endswith("_total")] == [60.0]
    assert [v for n, _, v in families["genobs_cost_usd"] if n.endswith("_total")] == [pytest.approx(0.004)]
    accepted = {l["kind"]: v for n, l, v in families["genobs_ingest_accepted"] if n.endswith("_total")}
    rejected = {l["kind"]: v for n, l, v in families["genobs_ingest_rejected"] if n.endswith("_total")}
    assert accepted == {"samples": 2.0, "gpu": 1.0} and rejected == {"samples": 1.0}
    gpu = {name: v for name in ("genobs_gpu_utilization_ratio", "genobs_gpu_memory_used_bytes",
                                "genobs_gpu_power_watts", "genobs_gpu_temperature_celsius")
           for _, _, v in families[name]}
    assert gpu == {"genobs_gpu_utilization_ratio": 0.5, "genobs_gpu_memory_used_bytes": 1024 * 1024 * 1024,
                   "genobs_gpu_power_watts": 300.0, "genobs_gpu_temperature_celsius": 60.0}


def test_metric_label_cardinality_is_bounded(tmp_path: Path) -> None:
    handle = start(tmp_path, max_label_series=3)
    try:
        with httpx.Client(base_url=handle.url, timeout=30) as http:
            http.post("/v1/samples", json=[sample(f"c{i}", model=f"model-{i}") for i in range(12)])

            def ready(f: dict) -> bool:
                return sum(v for _, _, v in f.get("genobs_requests", [])) >= 12

            families = _metrics_when(http, ready)
        series = families["genobs_requests"]
        assert sum(v for _, _, v in series) == 12
        assert len(series) == 4   # 3 real label sets + the __other__ one
        assert any(l["model"] == "__other__" for _, l, _ in series)
    finally:
        handle.stop()
        handle.store.close()


def test_health_docs_and_server_record(server: PlatformHandle, http: httpx.Client) -> None:
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == str(server.db_path)
    assert server_client.healthy(server.url)
    info = json.loads(server_info_path(server.db_path).read_text())
    assert info["url"] == server.url
    assert server_client.running_server(server.db_path) == server.url
    assert http.get("/docs").status_code == 200
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/v1/samples", "/v1/gpu", "/v1/traces", "/healthz", "/metrics"} <= set(paths)


def test_stop_removes_the_server_record(tmp_path: Path) -> None:
    handle = start(tmp_path)
    info = server_info_path(handle.db_path)
    assert info.exists()
    handle.stop()
    assert not info.exists()
    assert not server_client.healthy(handle.url, timeout=0.5)
    handle.store.close()


def test_client_posts_files_in_chunks_and_numbers_lines_over_the_whole_input(
    server: PlatformHandle,
) -> None:
    lines = [json.dumps(sample(f"f{i}")).encode() for i in range(40)]
    lines[25] = json.dumps(sample("f25", output_tokens=-1)).encode()
    answer = server_client.post_sample_lines(server.url, lines, source="file:calls.jsonl", chunk_bytes=2000)
    assert (answer["received"], answer["accepted"], answer["rejected"]) == (40, 39, 1)
    assert answer["errors"][0]["line"] == 26 and "output_tokens" in answer["errors"][0]["error"]
    assert server.store.fetchone("SELECT DISTINCT source FROM samples WHERE request_id = 'f1'") == ("file:calls.jsonl",)
