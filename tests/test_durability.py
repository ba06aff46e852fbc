"""Acknowledged samples survive ``kill -9`` of the server (DESIGN §10).

Clients post batches to a real ``genobs serve`` process; the server is killed with
SIGKILL while they post, restarted on the same database file, and the clients retry
what was not acknowledged. Every acknowledged sample must be there, with its content,
exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from genobs.store import Store, server_info_path



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("GENOBS_INGEST_TOKEN", "GENOBS_CONFIG", "GENOBS_DB")}
    process = subprocess.Popen(   # `genobs serve`
        [sys.executable, "-m", "genobs.cli", "serve", "--db", str(db), "--port", str(port), "--no-ui"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, cwd=db.parent,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("server did not start within 60 s")


def sample(request_id: str) -> dict:
    number = int(request_id.rsplit("-", 1)[1])
    return {"request_id": request_id, "timestamp": "2025-01-15T10:00:00Z", "service": "chat-api",
            "model": "chat-large", "model_version": "v1", "prompt": f"prompt of {request_id}",
            "latency_ms": float(number), "output_tokens": number}


class Poster(threading.Thread):
    """Posts numbered batches; a batch that got no answer is posted again (same ids)."""

    def __init__(self, name: str, url: str, stop: threading.Event, batch: int = 20) -> None:
        super().__init__(daemon=True)
        self.prefix, self.url, self.stop, self.batch = name, url, stop, batch
        self.acknowledged: list[str] = []
        self.attempted: set[str] = set()
        self.failures = 0

    def run(self) -> None:
        with httpx.Client(timeout=15) as http:
            number = 0
            while not self.stop.is_set():
                ids = [f"{self.prefix}-{number + i}" for i in range(self.batch)]
                self.attempted.update(ids)
                while not self.stop.is_set():
                    try:
                        response = http.post(self.url + "/v1/samples", json=[sample(i) for i in ids])
                    except httpx.HTTPError:
                        self.failures += 1
                        time.sleep(0.05)
                        continue
                    assert response.status_code == 200, response.text
                    assert response.json()["accepted"] == len(ids)
                    self.acknowledged.extend(ids)
                    break
                number += self.batch


def test_acknowledged_samples_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "genobs.duckdb"
    log = tmp_path / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(db, port, log)
    stop = threading.Event()
    posters = [Poster(f"c{i}", url, stop) for i in range(3)]
    try:
        for poster in posters:
            poster.start()
        deadline = time.monotonic() + 60
        while sum(len(p.acknowledged) for p in posters) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)                 # while requests are in flight
        server.wait(timeout=30)
        acknowledged_before_kill = sum(len(p.acknowledged) for p in posters)
        assert acknowledged_before_kill >= 60
        assert server_info_path(db).exists()              # a killed server leaves its record behind

        time.sleep(0.3)                                   # clients fail meanwhile
        server = start_server(db, port, log)              # same file, same port
        target = acknowledged_before_kill + 60
        deadline = time.monotonic() + 60
        while sum(len(p.acknowledged) for p in posters) < target and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        for poster in posters:
            poster.join(timeout=30)
        server.send_signal(signal.SIGTERM)                # clean stop
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    assert server.returncode == 0, log.read_text()[-2000:]
    assert not server_info_path(db).exists()
    assert any(p.failures for p in posters)               # the kill really hit the clients
    acknowledged = [i for p in posters for i in p.acknowledged]
    assert len(acknowledged) == len(set(acknowledged)) >= acknowledged_before_kill + 60
    attempted = set().union(*(p.attempted for p in posters))

    with Store.open(db) as store:
        rows = store.fetchall("SELECT request_id, prompt, latency_ms, output_tokens FROM samples")
        ids = [r[0] for r in rows]
        assert len(ids) == len(set(ids))                  # none twice
        assert set(acknowledged) <= set(ids)              # every acknowledged sample is there
        assert set(ids) <= attempted                      # and nothing else
        for request_id, prompt, latency_ms, output_tokens in rows:
            expected = sample(request_id)
            assert (prompt, latency_ms, output_tokens) == (
                expected["prompt"], expected["latency_ms"], expected["output_tokens"])
        print(json.dumps({"acknowledged": len(acknowledged), "stored": len(ids)}))
