"""Pieces of the collector server that the HTTP tests exercise only indirectly: bulk metric
updates, the metrics of records written by the vectorised path, the GC freezer."""

from __future__ import annotations

import gc
import json
import random
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from genobs.gc_pauses import GcFreezer
from genobs.collectors.metrics import ServerMetrics, observe_many
from genobs.runtime import ServerSettings, start_platform


def _samples(histogram: Histogram) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for m in histogram.collect() for s in m.samples
            if not s.name.endswith("_created")]


def test_observe_many_equals_one_observe_per_value() -> None:
    buckets = (0.025, 0.05, 0.1, 1.0, 600.0)
    one, many = (Histogram(name, "h", buckets=buckets, registry=CollectorRegistry()) for name in ("h1", "h2"))
    rng = random.Random(7)
    values = [rng.choice([0.0, 0.025, 0.05, 0.0500001, 1.0, 600.0, 601.0, rng.random() * 100]) for _ in range(3000)]
    for value in values:
        one.observe(value)
    observe_many(many, values[:1000])
    observe_many(many, values[1000:])
    got, expected = _samples(many), _samples(one)
    assert [(n[2:], l) for n, l, _ in got] == [(n[2:], l) for n, l, _ in expected]
    assert [v for *_, v in got] == pytest.approx([v for *_, v in expected])


def test_bulk_sample_metrics_add_up_per_label_set() -> None:
    metrics = ServerMetrics(max_series=2)
    row = ("svc", "m1", "v1", "primary", "ok", 850.0, 120.0, 12, 30, 0.002)
    rows = [row, row, (*row[:4], "error", 100.0, None, None, 5, None),
            ("svc", "m2", "v1", "primary", "ok", 10.0, None, 1, 1, 0.5),
            ("svc", "m3", "v1", "primary", "ok", 10.0, None, 1, 1, 0.5)]   # over the caps: __other__
    metrics.observe_samples(rows)
    text = metrics.exposition()[0].decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {(s.labels["model"], s.labels["status"]): s.value
                for s in families["genobs_requests"].samples if s.name.endswith("_total")}
    assert requests == {("m1", "ok"): 2.0, ("m1", "error"): 1.0, ("__other__", "__other__"): 2.0}
    latency = {(s.name, s.labels["model"]): s.value for s in families["genobs_request_latency_seconds"].samples}
    assert latency[("genobs_request_latency_seconds_count", "m1")] == 3
    assert latency[("genobs_request_latency_seconds_sum", "m1")] == pytest.approx(1.8)
    tokens = {s.labels["model"]: s.value for s in families["genobs_output_tokens"].samples if s.name.endswith("_total")}
    assert tokens == {"m1": 65.0, "m2": 1.0, "__other__": 1.0}   # the cap is per metric family


def test_records_written_by_the_vectorised_path_update_the_metrics_too(tmp_path: Path) -> None:
    handle = start_platform(tmp_path / "genobs.duckdb",
                              settings=ServerSettings(poll_nvml=False, ingest_token=None))
    try:
        # duplicate keys: the Python check hands this record to the SQL path
        line = ('{"request_id": "d1", "request_id": "d1", "timestamp": "2025-01-15T10:00:00Z", '
                '"model": "sql-path", "model_version": "v1", "latency_ms": 500, "output_tokens": 7}')
        with httpx.Client(base_url=handle.url, timeout=30) as http:
            answer = http.post("/v1/samples", content=line.encode(), headers={"Content-Type": "application/x-ndjson"})
            assert answer.status_code == 200 and answer.json()["accepted"] == 1
            deadline = time.monotonic() + 20
            while True:   # metrics are updated just after the answer
                text = http.get("/metrics").text
                if 'model="sql-path"' in text:
                    break
                assert time.monotonic() < deadline, text
                time.sleep(0.05)
        families = {f.name: f for f in text_string_to_metric_families(text)}
        tokens = [s.value for s in families["genobs_output_tokens"].samples
                  if s.name.endswith("_total") and s.labels["model"] == "sql-path"]
        assert tokens == [7.0]
    finally:
        handle.stop()
        handle.store.close()


def test_the_gc_freezer_freezes_at_start_and_after_slow_full_collections() -> None:
    freezer = GcFreezer(slow_ms=0.0)     # every full collection counts as slow
    try:
        freezer.start()
        assert freezer.freezes == 1 and gc.get_freeze_count() > 0
        garbage = [[json.dumps({"k": i})] for i in range(1000)]
        del garbage
        gc.collect()
        deadline = time.monotonic() + 10
        while freezer.freezes < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        freezer.stop()
        gc.unfreeze()
    assert freezer._on_gc not in gc.callbacks


def test_the_sample_writer_groups_requests_and_isolates_a_failed_write(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from genobs.collectors import sample_writer
    from genobs.collectors.pipeline import IngestOptions, check_small_input
    from genobs.store import Store

    def record(rid: str) -> bytes:
        return json.dumps({"request_id": rid, "timestamp": "2025-01-15T10:00:00Z", "model": "m",
                           "model_version": "v1", "latency_ms": 5}).encode()

    calls: list[int] = []
    real = sample_writer.ingest_checked_batches

    def flaky(store, inputs, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(inputs))
        if any(checked is None for _, checked, _ in inputs):
            raise RuntimeError("the vectorised path failed")
        return real(store, inputs, **kwargs)

    monkeypatch.setattr(sample_writer, "ingest_checked_batches", flaky)
    store = Store.memory()
    options = IngestOptions()
    metrics = ServerMetrics()
    try:
        writer = sample_writer.SampleWriter(store, options, metrics, read_back=lambda inputs: None)
        inputs = [[record("a1")], [record("a2"), record("a3")], [record("b1")], [record("c1")]]
        prepared = [sample_writer.PreparedInput(lines, check_small_input(lines, options), "t") for lines in inputs]
        prepared[2] = sample_writer.PreparedInput(inputs[2], None, "t")    # as if the Python check declined

        async def post_all() -> list[object]:
            return await asyncio.gather(*(writer.write(p) for p in prepared), return_exceptions=True)

        answers = asyncio.run(post_all())
        assert calls == [2, 1, 1]        # a1+a2a3 together, b1 alone, c1
        assert [a.accepted for a in answers if not isinstance(a, Exception)] == [1, 2, 1]
        assert isinstance(answers[2], RuntimeError)
        assert store.fetchall("SELECT request_id FROM samples ORDER BY 1") == [("a1",), ("a2",), ("a3",), ("c1",)]
        families = {f.name: f for f in text_string_to_metric_families(metrics.exposition()[0].decode())}
        assert [(s.labels["model"], s.value) for s in families["genobs_requests"].samples
                if s.name.endswith("_total")] == [("m", 4.0)]     # from the rows written, b1 excluded
    finally:
        store.close()


def test_the_gc_freezer_freezes_a_bulk_of_new_long_lived_objects() -> None:
    freezer = GcFreezer(slow_ms=1e9, max_unfrozen=5_000, interval_s=0.02)
    try:
        freezer.start()
        assert freezer.freezes == 1
        long_lived = [[i] for i in range(20_000)]      # tracked objects, e.g. of a bulk import
        gc.collect(1)                                        # survivors move to the oldest generation
        deadline = time.monotonic() + 10
        # On a loaded machine the watcher can run, and freeze, part-way through building the
        # bulk; it freezes again once the rest of it is over the limit.
        while freezer.freezes < 2 or len(gc.get_objects(generation=2)) >= 5_000:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert len(gc.get_objects(generation=2)) < 5_000
        del long_lived
    finally:
        freezer.stop()
        gc.unfreeze()


def test_serve_tuning_duckdb_threads_and_config() -> None:
    from genobs.runtime import duckdb_threads_for, settings_from_config
    from genobs.config import GenobsConfig

    assert duckdb_threads_for(None, cpus=2) == 1          # leave a core to the Python threads
    assert duckdb_threads_for(None, cpus=16) == 15
    assert duckdb_threads_for(None, cpus=1) == 1
    assert duckdb_threads_for(4, cpus=2) == 4             # configured: as given
    assert settings_from_config(None).duckdb_threads is None
    config = GenobsConfig.model_validate({"server": {"duckdb_threads": 3}})
    assert settings_from_config(config).duckdb_threads == 3
    assert ServerSettings().switch_interval_s == 0.001


def test_big_bodies_are_checked_one_at_a_time_and_all_answered(tmp_path: Path) -> None:
    """Concurrent big bodies (checked in the one preparing thread, then group-written) each
    get their own counts; the samples are all stored."""
    import threading

    from genobs.store import Store

    handle = start_platform(tmp_path / "g.duckdb", settings=ServerSettings(poll_nvml=False), record_url=False)
    try:
        def body(client: int) -> bytes:
            lines = [json.dumps({"request_id": f"c{client}-{i}", "timestamp": "2025-01-15T10:00:00Z",
                                 "model": "m", "model_version": "1", "prompt": "p" * 40, "response": "r" * 40})
                     for i in range(300)]
            return ("\n".join(lines) + "\n").encode()

        answers: dict[int, dict] = {}

        def post(client: int) -> None:
            answers[client] = httpx.post(handle.url + "/v1/samples", content=body(client), timeout=60,
                                         headers={"Content-Type": "application/x-ndjson"}).json()

        threads = [threading.Thread(target=post, args=(c,)) for c in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(a["accepted"] == 300 and a["inserted"] == 300 for a in answers.values()), answers
        assert Store.open(tmp_path / "g.duckdb").fetchone("SELECT count(*) FROM samples")[0] == 1800
    finally:
        handle.stop()
