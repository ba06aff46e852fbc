"""Property-based fuzzing of the way in, bounded and deterministic (seeded: hypothesis
``derandomize``, a fixed example budget; bench/fuzz_ingest.py runs the same fuzzers longer).

- schemathesis generates requests for every operation of the OpenAPI schema, sent to a
  real server on loopback: no answer is a 5xx;
- generated records, valid and mutated (tests/helpers/fuzz_records.py), go through file ingest,
  HTTP NDJSON bodies on the small-batch (Python) path and, padded past 512 records, on the
  vectorised path: what is accepted reads back equal to what was sent (after redaction),
  what is rejected is in dead_letter with a reason naming the field, and no PII is left in
  clear in either.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.fuzz_records import Case, case, check_stored
from genobs.collectors.files import ingest_file
from genobs.collectors.pipeline import FAST_PATH_MAX_RECORDS, IngestOptions
from genobs.runtime import PlatformHandle as ServerHandle, ServerSettings, start_platform as start_background
from genobs.store import Store

# Examples per fuzzer; GENOBS_FUZZ_EXAMPLES raises them (bench/fuzz_ingest.py does).
EXAMPLES = int(os.environ.get("GENOBS_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def budget(default: int) -> settings:
    return settings(FUZZ, max_examples=EXAMPLES or default)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    path = tmp_path_factory.mktemp("fuzz") / "genobs.duckdb"
    handle = start_background(path, settings=ServerSettings(poll_nvml=False, ingest_token=None))
    yield handle
    handle.stop()
    handle.store.close()


_counter = itertools.count()


def _source() -> str:
    return f"fuzz-{next(_counter)}"


# ------------------------------------------------------------------ every operation, no 5xx


def test_every_openapi_operation_answers_without_5xx(server: ServerHandle) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/samples", "POST /v1/gpu", "POST /v1/traces", "GET /healthz", "GET /metrics"} <= labels
    tried: dict[str, int] = {}
    for operation in operations:
        @budget(25)
        @given(generated=operation.as_strategy())
        def call(generated: schemathesis.Case) -> None:
            response = generated.call(base_url=server.url, timeout=30)
            tried[operation.label] = tried.get(operation.label, 0) + 1
            assert response.status_code < 500, (operation.label, response.status_code, response.text[:500])

        call()
    assert set(tried) == labels


# ------------------------------------------------------------------ records through HTTP


def _post_ndjson(server: ServerHandle, lines: list[bytes], source: str) -> httpx.Response:
    return httpx.post(server.url + "/v1/samples", content=b"\n".join(lines) + b"\n", timeout=60,
                      headers={"Content-Type": "application/x-ndjson", "X-Genobs-Source": source})


def _padding(source: str, count: int) -> list[bytes]:
    return [json.dumps({"request_id": f"{source}-pad-{i}", "timestamp": 1736935200 + i, "model": "m",
                        "model_version": "v"}).encode() for i in range(count)]


def _check_answer(response: httpx.Response, generated: Case, padding: int) -> None:
    assert response.status_code in (200, 400), response.text[:500]
    answer = response.json()
    assert answer["accepted"] == len(generated.accepted) + padding, answer
    assert answer["rejected"] == len(generated.rejected), answer
    assert (response.status_code == 200) == (answer["accepted"] > 0)
    for error in answer["errors"]:
        assert generated.rejected[error["line"]] in error["error"], error


@budget(40)
@given(data=st.data())
def test_generated_records_over_http_small_batches(server: ServerHandle, data: st.DataObject) -> None:
    source = _source()
    generated = data.draw(case(source))
    response = _post_ndjson(server, generated.lines, source)
    _check_answer(response, generated, 0)
    check_stored(server.store, generated, source)


@budget(8)
@given(data=st.data())
def test_generated_records_over_http_large_batches(server: ServerHandle, data: st.DataObject) -> None:
    """Past FAST_PATH_MAX_RECORDS records the vectorised path checks them: same answers."""
    source = _source()
    generated = data.draw(case(source, max_records=8))
    padding = FAST_PATH_MAX_RECORDS + 1 - len(generated.lines)
    response = _post_ndjson(server, generated.lines + _padding(source, padding), source)
    _check_answer(response, generated, padding)
    check_stored(server.store, generated, source)


# ------------------------------------------------------------------ records through file ingest


@budget(15)
@given(data=st.data())
def test_generated_records_through_file_ingest(tmp_path_factory: pytest.TempPathFactory,
                                               data: st.DataObject) -> None:
    folder = tmp_path_factory.mktemp("files")
    store = Store.open(folder / "genobs.duckdb")
    try:
        path = folder / "input.jsonl"
        generated = data.draw(case("file"))
        path.write_bytes(b"\n".join(generated.lines) + b"\n")
        report = ingest_file(store, str(path), options=IngestOptions())
        assert report.result.accepted == len(generated.accepted)
        assert report.result.rejected == len(generated.rejected)
        check_stored(store, generated, f"file:{os.path.abspath(path)}")
    finally:
        store.close()


def test_file_ingest_of_a_json_array_too_deep_for_pythons_parser(tmp_path: Path) -> None:
    """The array is cut without parsing: the valid record is stored, the deep one rejected."""
    store = Store.open(tmp_path / "genobs.duckdb")
    try:
        path = tmp_path / "input.json"
        good = {"request_id": "ok", "timestamp": "2025-01-15T10:00:00Z", "model": "m", "model_version": "v"}
        path.write_text("[" + json.dumps(good) + ', {"request_id": "deep", "attributes": {"x": '
                        + "[" * 5000 + "]" * 5000 + "}}]")
        report = ingest_file(store, str(path))
        assert (report.result.accepted, report.result.rejected) == (1, 1)
        assert store.fetchall("SELECT request_id FROM samples") == [("ok",)]
        (error,) = store.fetchone("SELECT error FROM dead_letter")
        assert "nested deeper than 64 levels" in error
    finally:
        store.close()
