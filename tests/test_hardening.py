"""The way in, hardened (issue 15): each class of hostile input has one answer on every
path, and none of them is a 500, PII at rest, or a file read outside the image root.

The examples here are the ones the red-team pass found; tests/test_ingest_fuzz.py
generates the other members of each class.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from genobs.collectors.pipeline import FAST_PATH_MAX_RECORDS, IngestOptions, ingest_lines
from genobs.runtime import PlatformHandle as ServerHandle, ServerSettings, start_platform as start_background
from genobs.evaluators.images import OUTSIDE_ROOT, ImageError, load_sample_image
from genobs.sdk import Client
from genobs.store import MAX_DEAD_LETTER_RAW_CHARS, Store

SECRETS = ("alice@example.com", "4111 1111 1111 1111", "4111111111111111")


def record(request_id: str, **fields: Any) -> dict[str, Any]:
    return {"request_id": request_id, "timestamp": "2025-01-15T10:00:00Z", "model": "m", "model_version": "v",
            **fields}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerHandle]:
    handle = start_background(tmp_path / "genobs.duckdb", settings=ServerSettings(poll_nvml=False, ingest_token=None))
    yield handle
    handle.stop()
    handle.store.close()


def post(server: ServerHandle, body: bytes | str, content_type: str = "application/json",
         path: str = "/v1/samples") -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(server.url + path, content=data, headers={"Content-Type": content_type}, timeout=60)


def dead_letters(store: Store) -> list[tuple[Any, ...]]:
    return store.fetchall("SELECT source, line, raw, error FROM dead_letter ORDER BY id")


def no_secret_at_rest(store: Store) -> None:
    texts = [t for row in store.fetchall("SELECT raw, error FROM dead_letter") for t in row if t]
    texts += [str(row) for row in store.fetchall("SELECT * FROM samples")]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text[:300])


# ------------------------------------------------------------------ 1. PII in dead_letter


def test_a_rejected_record_is_dead_lettered_redacted_with_counts(server: ServerHandle) -> None:
    bad = record("r1", timestamp="not-a-time", prompt="alice@example.com 4111 1111 1111 1111")
    response = post(server, json.dumps([bad, record("r2")]))
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert answer["dead_letter_redactions"] == {"email": 1, "card_number": 1}
    ((source, line, raw, error),) = dead_letters(server.store)
    assert (source, line) == ("http", 1) and "timestamp" in error
    assert "[REDACTED:email] [REDACTED:card_number]" in raw
    no_secret_at_rest(server.store)


@pytest.mark.parametrize("body", [
    b'{"request_id": "x", "prompt": "alice@example.com 4111 1111 1111 1111"',      # not JSON
    b'{"prompt": "alice@example.com 4111 1111 1111 1111 \xff\xfe"}',                  # not UTF-8
    b'"alice@example.com 4111 1111 1111 1111"',                                        # not an object
])
def test_an_unusable_body_is_dead_lettered_redacted(server: ServerHandle, body: bytes) -> None:
    response = post(server, body)
    assert response.status_code == 400
    ((_, _, raw, _),) = dead_letters(server.store)
    assert "[REDACTED:email]" in raw and "[REDACTED:card_number]" in raw
    no_secret_at_rest(server.store)


def test_a_large_rejected_record_is_cut_with_a_marker_and_its_length(server: ServerHandle) -> None:
    # an email straddles the cut: it is redacted whole, not left half in clear
    offset = json.dumps(record("big", timestamp="not-a-time", prompt="@@")).index("@@")
    head = "x" * (MAX_DEAD_LETTER_RAW_CHARS - offset - 8)     # the email starts 7 characters before the cut
    prompt = head + " alice@example.com " + "y" * 10_000_000
    line = json.dumps(record("big", timestamp="not-a-time", prompt=prompt))
    assert line.index("alice@") == MAX_DEAD_LETTER_RAW_CHARS - 7
    response = post(server, line)
    assert response.status_code == 400
    ((_, _, raw, _),) = dead_letters(server.store)
    assert raw.endswith(f" …[truncated: {len(line)} characters in all]")
    assert len(raw) < MAX_DEAD_LETTER_RAW_CHARS + 100
    assert "alice" not in raw and " [REDACT …[truncated" in raw    # the marker is what got cut


def test_dead_letters_of_file_ingest_are_redacted_too(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "genobs.duckdb")
    try:
        lines = [json.dumps(record("r1", timestamp="nope", response="mail alice@example.com")).encode(),
                 b'{"broken": "alice@example.com',
                 json.dumps(record("r2", input_tokens=9223372036854775807, prompt="4111111111111111")).encode()]
        result = ingest_lines(store, lines, source="file")
        assert (result.accepted, result.rejected) == (0, 3)
        assert result.dead_letter_redactions == {"email": 2, "card_number": 1}
        no_secret_at_rest(store)
    finally:
        store.close()


# ------------------------------------------------------------------ 2. deep nesting


DEEP = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize("where", ["attributes", "context", "prompt"])
def test_deep_nesting_rejects_that_record_and_keeps_the_others(server: ServerHandle, where: str) -> None:
    deep_record = json.dumps(record("deep"))[:-1] + f', "{where}": ' + (
        '{"a": ' + DEEP + "}" if where == "attributes" else DEEP) + "}"
    body = "[" + json.dumps(record("ok-1")) + "," + deep_record + "," + json.dumps(record("ok-2")) + "]"
    response = post(server, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 1)
    assert "nested deeper than 64 levels" in answer["errors"][0]["error"]
    assert answer["errors"][0]["line"] == 2
    assert {r for (r,) in server.store.fetchall("SELECT request_id FROM samples")} == {"ok-1", "ok-2"}
    ((_, line, _, error),) = dead_letters(server.store)
    assert line == 2 and "nested deeper" in error


def test_bracket_counts_of_the_vectorised_path_match_python() -> None:
    """The vectorised path counts "{" and "[" per line from the Arrow buffers (the depth scan
    runs only past the limit): right for sliced arrays, nulls, and both offset widths."""
    import pyarrow as pa

    from genobs.collectors.pipeline import _openers_per_value

    texts = ['{"a": [1, {"b": "[{"}]}', None, "", "no brackets", "[" * 70, "{é[ü{", "]}"]
    for kind in (pa.string(), pa.large_string(), pa.binary(), pa.large_binary()):
        values = pa.array([t if t is None or "string" in str(kind) else t.encode() for t in texts], type=kind)
        for start in range(len(texts)):
            for step in (1, 3, 1 << 20):     # bytes read at a time: pieces that cut values too
                got = _openers_per_value(values.slice(start), step=step).tolist()
                assert got == [0 if t is None else t.count("{") + t.count("[") for t in texts[start:]], \
                    (kind, start, step)


@pytest.mark.parametrize("records", [3, FAST_PATH_MAX_RECORDS + 5])
def test_deep_nesting_gets_the_same_answer_on_both_paths(server: ServerHandle, records: int) -> None:
    lines = [json.dumps(record(f"n{records}-{i}")) for i in range(records - 1)] + [
        json.dumps(record("deep-one", attributes={"a": 1}))[:-2] + ', "b": ' + "[" * 70 + "]" * 70 + "}}"]
    response = post(server, "\n".join(lines), "application/x-ndjson")
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (records - 1, 1)
    assert answer["errors"] == [{"line": records, "request_id": None,
                                 "error": "record: nested deeper than 64 levels (the limit for objects and arrays)"}]


def test_a_single_deep_object_body_is_a_400_not_a_500(server: ServerHandle) -> None:
    response = post(server, '{"request_id": "x", "attributes": ' + DEEP + "}")
    assert response.status_code == 400
    assert "nested deeper" in response.json()["errors"][0]["error"]


def _otlp(spans: list[dict[str, Any]]) -> str:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]})


def _span(trace_id: str, span_id: str, **attributes: dict[str, Any]) -> dict[str, Any]:
    attrs = {"gen_ai.request.model": {"stringValue": "chat"}, **attributes}
    return {"traceId": trace_id, "spanId": span_id, "name": "chat", "startTimeUnixNano": "1736935200000000000",
            "endTimeUnixNano": "1736935201000000000",
            "attributes": [{"key": k, "value": v} for k, v in attrs.items()]}


def test_otlp_json_too_deep_is_a_400_and_a_bracketed_prompt_is_text(server: ServerHandle) -> None:
    deep = '{"resourceSpans": ' + DEEP + "}"
    response = post(server, deep, path="/v1/traces")
    assert response.status_code == 400 and "nested deeper than" in response.json()["detail"]
    prompt = "[" * 2000
    response = post(server, _otlp([_span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331",
                                         **{"gen_ai.prompt": {"stringValue": prompt}})]), path="/v1/traces")
    assert response.status_code == 200 and response.headers["X-Genobs-Spans-Accepted"] == "1"
    assert server.store.fetchone("SELECT prompt FROM samples") == (prompt,)


# ------------------------------------------------------------------ 3.-4. numbers and times


def _both_paths(store: Store, record_: dict[str, Any], tag: str) -> list[Any]:
    """The record ingested alone (Python path) and among FAST_PATH_MAX_RECORDS others (SQL
    path): the per-record answers of both."""
    answers = []
    for size in (1, FAST_PATH_MAX_RECORDS + 1):
        rid = f"{tag}-{size}"
        lines = [json.dumps({**record_, "request_id": rid}).encode()] + [
            json.dumps(record(f"{tag}-{size}-pad-{i}")).encode() for i in range(size - 1)]
        result = ingest_lines(store, lines, source=f"t-{tag}-{size}")
        row = store.fetchone("SELECT timestamp, input_tokens FROM samples WHERE request_id = ?", [rid])
        errors = [e.message for e in result.errors]
        answers.append((row, errors))
    return answers


@pytest.mark.parametrize("value", [9223372036854775807, 2**64, 2**53, -(2**53), 1e19, "9223372036854775807"])
def test_an_integer_that_does_not_fit_is_rejected_not_nulled(tmp_path: Path, value: Any) -> None:
    store = Store.open(tmp_path / "genobs.duckdb")
    try:
        small, large = _both_paths(store, record("x", input_tokens=value), "int")
        assert small == large
        row, errors = small
        assert row is None and len(errors) == 1 and "input_tokens" in errors[0] and "integer range" in errors[0]
        assert store.fetchone("SELECT count(*) FROM samples WHERE input_tokens IS NULL AND request_id LIKE 'int-%'"
                              " AND request_id NOT LIKE '%pad%'") == (0,)
    finally:
        store.close()


@pytest.mark.parametrize(("value", "stored"), [
    (253402300799, "9999-12-31T23:59:59+00:00"),              # seconds, the last one in range
    (253402300800, "1978-01-11T21:31:40.800000+00:00"),       # from here on: milliseconds
    (1736935200, "2025-01-15T10:00:00+00:00"),
    (1736935200123, "2025-01-15T10:00:00.123000+00:00"),
    (68731027200001, "4148-01-01T00:00:00.001000+00:00"),     # exact, not through a double
    (0, "1970-01-01T00:00:00+00:00"),
    ("2025-01-15T12:00:00+02:00", "2025-01-15T10:00:00+00:00"),
    ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59+00:00"),
])
def test_timestamps_in_range_are_stored_as_sent(tmp_path: Path, value: Any, stored: str) -> None:
    store = Store.open(tmp_path / "genobs.duckdb")
    try:
        small, large = _both_paths(store, record("x", timestamp=value), "ts")
        assert small == large
        assert small[0][0].isoformat() == stored
    finally:
        store.close()


@pytest.mark.parametrize("value", [
    -1, -62135596801, -1e13, 253402300800000, 1e300, "0000-12-31T00:00:00Z", "10000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
])
def test_timestamps_out_of_range_are_rejected_the_same_on_both_paths(tmp_path: Path, value: Any) -> None:
    store = Store.open(tmp_path / "genobs.duckdb")
    try:
        small, large = _both_paths(store, record("x", timestamp=value), "ts")
        assert small == large
        row, errors = small
        assert row is None and errors and "outside the accepted range" in errors[0]
    finally:
        store.close()


def test_an_out_of_range_timestamp_from_otlp_rejects_that_span_only(server: ServerHandle) -> None:
    spans = [_span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331",
                   **{"genobs.timestamp": {"intValue": "-99999999999999"}}),
             _span("0af7651916cd43dd8448eb211c80319d", "b7ad6b7169203331")]
    response = post(server, _otlp(spans), path="/v1/traces")
    assert response.status_code == 200
    assert (response.headers["X-Genobs-Spans-Accepted"], response.headers["X-Genobs-Spans-Rejected"]) == ("1", "1")
    assert "outside the accepted range" in response.json()["partialSuccess"]["errorMessage"]


# ------------------------------------------------------------------ 6. labels and keys, 7. identifiers


def test_label_fields_and_attribute_keys_are_scanned(server: ServerHandle) -> None:
    sample = record("labels", service="4111 1111 1111 1111", tenant="alice@example.com", region="4155552671",
                    attributes={"4111111111111111": 1, "phone": 4155552671, "card": 4111111111111111},
                    **{"alice@example.com": "unknown key"})
    response = post(server, json.dumps(sample))
    assert response.status_code == 200, response.text
    service, tenant, region, attributes = server.store.fetchone(
        "SELECT service, tenant, region, attributes FROM samples")
    assert (service, tenant, region) == ("[REDACTED:card_number]", "[REDACTED:email]", "[REDACTED:phone]")
    assert json.loads(attributes) == {"[REDACTED:card_number]": 1, "phone": "[REDACTED:phone]",
                                      "card": "[REDACTED:card_number]", "[REDACTED:email]": "unknown key"}
    no_secret_at_rest(server.store)


def test_label_fields_are_scanned_on_the_vectorised_path_too(tmp_path: Path) -> None:
    """Past FAST_PATH_MAX_RECORDS the label columns are searched once per distinct value:
    every row holding a value with PII is redacted, the rows sharing a clean value are not."""
    store = Store.open(tmp_path / "labels.duckdb")
    try:
        labels = [{"tenant": "acme", "service": "chat"}, {"tenant": "alice@example.com", "service": "chat"},
                  {"service": "4111 1111 1111 1111"}, {"tenant": "acme", "region": "4155552671"}]
        lines = [json.dumps(record(f"v-{i}", **labels[i % len(labels)])).encode()
                 for i in range(FAST_PATH_MAX_RECORDS + 40)]
        result = ingest_lines(store, lines, source="test")
        assert result.accepted == len(lines)
        assert result.redactions == {"email": 138, "card_number": 138, "phone": 138}
        rows = store.fetchall("SELECT tenant, service, region, count(*) FROM samples GROUP BY ALL ORDER BY ALL")
        assert rows == [("[REDACTED:email]", "chat", None, 138), ("acme", "chat", None, 138),
                        ("acme", "default", "[REDACTED:phone]", 138),
                        (None, "[REDACTED:card_number]", None, 138)]
        no_secret_at_rest(store)
    finally:
        store.close()


@pytest.mark.parametrize("request_id", [" ", "\u3000", "\x00", "a\x00b", "\u202e", "abc\u2066", "\t", "\x85"])
def test_request_ids_that_cannot_be_told_apart_are_rejected(server: ServerHandle, request_id: str) -> None:
    response = post(server, json.dumps(record(request_id)))
    assert response.status_code == 400
    assert response.json()["errors"][0]["error"].startswith("request_id: ")


def test_the_identifier_fast_test_sees_every_character_the_checks_name() -> None:
    """fast_validation skips the identifier regexes for a value that str.isprintable accepts
    and is not all spaces: sound only if every character of the two classes is one that
    isprintable refuses, or the plain space. Checked for every code point."""
    import re
    import sys

    from genobs.records import IDENTIFIER_BAD_CHARS_PY, WHITESPACE_ONLY_PY

    bad = re.compile(IDENTIFIER_BAD_CHARS_PY)
    space_class = re.compile(WHITESPACE_ONLY_PY.removeprefix("^").removesuffix("+$"))
    named = [chr(c) for c in range(sys.maxunicode + 1)
             if bad.fullmatch(chr(c)) or space_class.fullmatch(chr(c))]
    assert len(named) > 60 and " " in named
    assert [c for c in named if c.isprintable() and c != " "] == []


def test_a_request_id_is_stored_as_sent_even_when_it_looks_like_pii(server: ServerHandle) -> None:
    """It is the idempotency key: rewriting it would merge or split records (documented)."""
    assert post(server, json.dumps(record("alice@example.com|a b"))).status_code == 200
    assert server.store.fetchone("SELECT request_id FROM samples") == ("alice@example.com|a b",)


def test_otlp_spans_with_empty_ids_are_rejected_not_merged(server: ServerHandle) -> None:
    spans = [_span("", ""), _span("", ""), _span("00000000000000000000000000000000", "0000000000000000"),
             _span("", "", **{"genobs.request_id": {"stringValue": "given-id"}}),
             _span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")]
    response = post(server, _otlp(spans), path="/v1/traces")
    assert response.status_code == 200
    assert (response.headers["X-Genobs-Spans-Accepted"], response.headers["X-Genobs-Spans-Rejected"]) == ("2", "3")
    assert "trace_id or span_id is empty" in response.json()["partialSuccess"]["errorMessage"]
    ids = {r for (r,) in server.store.fetchall("SELECT request_id FROM samples")}
    assert ids == {"given-id", "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"}
    assert [line for _, line, _, _ in dead_letters(server.store)] == [None, None, None]


# ------------------------------------------------------------------ 5. images


def test_images_are_only_read_under_the_image_root(tmp_path: Path) -> None:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not really a png")
    (root / "sub" / "link.png").symlink_to(secret)
    (root / "sub" / "up").symlink_to(tmp_path)
    outside = [str(secret), secret.as_uri(), "file:///etc/passwd", "/etc/passwd", "../secret.png",
               "sub/link.png", "sub/up/secret.png", str(tmp_path / "missing.png"), "file:///nonexistent/x.png",
               "sub/../../secret.png"]
    for value in outside:
        with pytest.raises(ImageError) as caught:
            load_sample_image(value, root)
        message = str(caught.value)
        # one message whether or not the file exists, and no path in it
        assert message == OUTSIDE_ROOT, (value, message)
    with pytest.raises(ImageError) as caught:
        load_sample_image(str(root / "sub" / "none.png"), root)
    assert str(caught.value) == "image file not found: sub/none.png"
    assert str(tmp_path) not in str(caught.value)


# ------------------------------------------------------------------ 9. disconnects, surrogates, SDK


def test_a_client_that_disconnects_mid_body_is_one_log_line(server: ServerHandle,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/samples HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n" + b'[{"request_id": "x"')
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("disconnected" in r.getMessage() for r in caplog.records):
        time.sleep(0.05)
    disconnects = [r for r in caplog.records if "client disconnected" in r.getMessage()]
    assert len(disconnects) == 1
    assert not [r for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]
    assert server.store.fetchone("SELECT count(*) FROM samples") == (0,)


@pytest.mark.parametrize("content_type,body", [
    ("application/json", '{"request_id": "s", "timestamp": 1, "model": "m", "model_version": "v", "prompt": "\\ud800"}'),
    ("application/json", '[{"request_id": "s", "timestamp": 1, "model": "m", "model_version": "v", "prompt": "\\udc00x"}]'),
    ("application/x-ndjson", '{"request_id": "s", "timestamp": 1, "model": "m", "model_version": "v", "prompt": "a\\ud83d"}'),
])
def test_a_lone_surrogate_is_named_as_such(server: ServerHandle, content_type: str, body: str) -> None:
    response = post(server, body, content_type)
    assert response.status_code == 400
    error = response.json()["errors"][0]["error"]
    assert "lone UTF-16 surrogate" in error and "duplicate keys" not in error
    ((_, _, _, stored_error),) = dead_letters(server.store)
    assert "lone UTF-16 surrogate" in stored_error


def test_the_sdk_gets_a_rejection_not_an_endless_retry(server: ServerHandle) -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    with Client(server.url, flush_interval=0.05) as client:
        client.log(**record("sdk-ok"))
        client.log(**record("sdk-surrogate", prompt="\ud800 alice@example.com"))
        client.log(**record("sdk-deep", attributes={"a": deep}))
        assert client.flush(timeout=30)
        stats = client.stats()
    assert (stats["sent"], stats["rejected"], stats["retries"]) == (1, 2, 0), stats
    errors = [e for (e,) in server.store.fetchall("SELECT error FROM dead_letter ORDER BY line")]
    assert any("lone UTF-16 surrogate" in e for e in errors) and any("nested deeper" in e for e in errors)
    no_secret_at_rest(server.store)


# ------------------------------------------------------------------ GPU readings: the same rules


@pytest.mark.parametrize(("fields", "message"), [
    ({"ecc_uncorrected": 2**63}, "ecc_uncorrected: 9223372036854775808 is outside the integer range"),
    ({"gpu_index": 2**64}, "gpu_index: 18446744073709551616 is outside the integer range"),
    ({"timestamp": -1e13}, "is outside the accepted range"),
    ({"timestamp": "1969-12-31T23:59:59Z"}, "is outside the accepted range"),
    ({"host": "node\x00-1"}, "host: contains a control or bidirectional-formatting character"),
])
def test_gpu_readings_get_the_same_answers(server: ServerHandle, fields: dict[str, Any], message: str) -> None:
    good = {"timestamp": "2025-01-15T10:00:00Z", "host": "node-1", "gpu_index": 0}
    response = post(server, json.dumps([{**good, **fields}, {**good, "gpu_index": 1}]), path="/v1/gpu")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert message in answer["errors"][0]["message"]


def test_gpu_epoch_seconds_up_to_9999_are_seconds(server: ServerHandle) -> None:
    reading = {"timestamp": 253402300799, "host": "node-1", "gpu_index": 0}
    assert post(server, json.dumps(reading), path="/v1/gpu").status_code == 200
    (stored,) = server.store.fetchone("SELECT timestamp FROM gpu_telemetry")
    assert stored.isoformat() == "9999-12-31T23:59:59+00:00"


def test_an_nvidia_smi_csv_that_is_not_csv_is_a_400(server: ServerHandle) -> None:
    """Found by schemathesis: a carriage return inside a field was a 500 (csv.Error)."""
    response = post(server, 'index, name\r\n0, "a\rb', "text/csv", path="/v1/gpu")
    assert response.status_code == 400, response.text
    # a carriage return ends a row, as in any CSV
    response = post(server, "index, name\n0, a\rb\n", "text/csv", path="/v1/gpu")
    assert response.status_code == 200 and response.json()["rejected"] == 1, response.text
