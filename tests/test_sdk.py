"""The Python SDK against a real server on 127.0.0.1 (down, then up) and a real DuckDB file."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Iterator

import pytest

from genobs.runtime import PlatformHandle
from genobs.sdk import Client, openai_fields
from helpers.servers import start_server

DEFAULTS = {"service": "chat-api", "model": "chat-large", "model_version": "2025-01-01"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tmp_path: Path, port: int = 0, token: str | None = None) -> PlatformHandle:
    return start_server(tmp_path / "genobs.duckdb", port=port, ingest_token=token)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PlatformHandle]:
    handle = serve(tmp_path)
    yield handle
    handle.stop()
    handle.store.close()


@pytest.fixture
def client(server: PlatformHandle) -> Iterator[Client]:
    c = Client(server.url, token="", flush_interval=0.05, **DEFAULTS)
    yield c
    c.close(timeout=5)


def rows(server: PlatformHandle, where: str = "TRUE") -> list[dict]:
    cur = server.store.execute(f"SELECT * FROM samples WHERE {where} ORDER BY request_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def test_server_down_then_up_loses_nothing_within_the_queue_bound(tmp_path: Path) -> None:
    port = free_port()
    client = Client(f"http://127.0.0.1:{port}", token="", max_queue=100, batch_size=10,
                    flush_interval=0.05, max_backoff=0.2, **DEFAULTS)
    for i in range(60):                      # the server is not running: log() returns at once
        client.log(request_id=f"r{i:03d}", prompt=f"question {i}", latency_ms=float(i))
    assert client.flush(timeout=0.5) is False
    stats = client.stats()
    assert stats["queued"] == 60 and stats["dropped"] == 0 and stats["retries"] >= 1

    handle = serve(tmp_path, port=port)
    try:
        assert client.flush(timeout=30) is True
        stored = rows(handle)
        assert [r["request_id"] for r in stored] == [f"r{i:03d}" for i in range(60)]
        assert all(r["prompt"] == f"question {int(r['request_id'][1:])}" for r in stored)
        assert {r["source"] for r in stored} == {"sdk"}
        assert client.stats()["sent"] == 60
    finally:
        client.close(timeout=5)
        handle.stop()
        handle.store.close()


def test_full_queue_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    port = free_port()
    client = Client(f"http://127.0.0.1:{port}", token="", max_queue=10, batch_size=5,
                    flush_interval=0.05, max_backoff=0.2, **DEFAULTS)
    for i in range(25):
        client.log(request_id=f"q{i:02d}")
    assert client.stats()["dropped"] == 15 and client.stats()["queued"] == 10
    handle = serve(tmp_path, port=port)
    try:
        assert client.flush(timeout=30)
        assert [r["request_id"] for r in rows(handle)] == [f"q{i:02d}" for i in range(15, 25)]
    finally:
        client.close(timeout=5)
        handle.stop()
        handle.store.close()


def test_traced_decorator_logs_results_and_errors(server: PlatformHandle, client: Client) -> None:
    completion = {"choices": [{"message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 14, "completion_tokens": 2}, "model": "gpt-4o-2024-08-06"}

    @client.traced(request_id="ok-call", model="gpt-4o", prompt_arg="question", result_fields=openai_fields)
    def ask(question: str) -> dict:
        return completion

    @client.traced(request_id="bad-call")
    def broken(question: str) -> None:
        raise ValueError("upstream said no")

    @client.traced(request_id="slow-call")
    def slow() -> None:
        raise TimeoutError("took too long")

    assert ask("What is the capital of France?") is completion
    with pytest.raises(ValueError, match="upstream said no"):   # the caller's own error is re-raised
        broken("x")
    with pytest.raises(TimeoutError):
        slow()
    assert client.flush(timeout=30)
    by_id = {r["request_id"]: r for r in rows(server)}
    ok = by_id["ok-call"]
    assert (ok["prompt"], ok["response"], ok["model"], ok["model_version"]) == (
        "What is the capital of France?", "Paris.", "gpt-4o", "gpt-4o-2024-08-06")
    assert (ok["input_tokens"], ok["output_tokens"], ok["status"]) == (14, 2, "ok")
    assert ok["latency_ms"] >= 0 and ok["service"] == "chat-api"
    assert (by_id["bad-call"]["status"], by_id["bad-call"]["error_type"]) == ("error", "ValueError")
    assert (by_id["slow-call"]["status"], by_id["slow-call"]["error_type"]) == ("timeout", "TimeoutError")


def test_traced_context_manager_and_async(server: PlatformHandle, client: Client) -> None:
    with client.traced(request_id="img-1", modality="image", prompt="a red bicycle") as call:
        call.first_token()
        call.update(image="data:image/png;base64,iVBORw0KGgo=", attributes={"steps": 4})

    @client.traced(request_id="async-1", prompt_arg="prompt")
    async def generate(prompt: str) -> str:
        await asyncio.sleep(0)
        return "done"

    assert asyncio.run(generate(prompt="hello")) == "done"
    assert client.flush(timeout=30)
    by_id = {r["request_id"]: r for r in rows(server)}
    assert by_id["img-1"]["modality"] == "image" and by_id["img-1"]["ttft_ms"] is not None
    assert json.loads(by_id["img-1"]["attributes"])["steps"] == 4
    assert by_id["async-1"]["prompt"] == "hello" and by_id["async-1"]["latency_ms"] >= 0


def test_log_never_raises(server: PlatformHandle, client: Client) -> None:
    client.log(request_id="odd", prompt=object(), attributes={"when": object()})  # not JSON: sent as text
    client.log(request_id="bad", latency_ms=-5)           # rejected by the server, counted, not retried
    assert client.flush(timeout=30)
    stats = client.stats()
    assert stats["rejected"] == 1 and stats["sent"] == 1
    assert [r["request_id"] for r in rows(server)] == ["odd"]

    nowhere = Client("not a url", close_timeout=0.2)
    nowhere.log(request_id="x", model="m", model_version="v")
    assert nowhere.close() is False


def test_bearer_token(tmp_path: Path) -> None:
    handle = serve(tmp_path, token="sdk-token")
    try:
        good = Client(handle.url, token="sdk-token", flush_interval=0.05, **DEFAULTS)
        wrong = Client(handle.url, token="other", flush_interval=0.05, **DEFAULTS)
        good.log(request_id="authorised")
        wrong.log(request_id="refused")
        assert good.flush(timeout=30) and wrong.flush(timeout=30)
        assert wrong.stats()["rejected"] == 1
        assert [r["request_id"] for r in rows(handle)] == ["authorised"]
        good.close()
        wrong.close()
    finally:
        handle.stop()
        handle.store.close()
