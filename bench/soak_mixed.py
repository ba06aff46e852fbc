"""Mixed-traffic soak of `genobs serve`: samples, OTLP spans, GPU readings and bad input
from several clients at once, with the server killed (SIGKILL) and restarted at random
points. Prints JSON: requests per kind, records acknowledged vs stored (every acknowledged
record must be stored: DESIGN §10), 5xx answers (must be 0), dead letters, server RSS
over time.

    .venv/bin/python bench/soak_mixed.py --seconds 180 --seed 1

What it compares against: the acknowledgements the clients got in the same run (a record
is acknowledged when its request answered 200 and did not list it as rejected).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`genobs serve` as a child process, killed and restarted on the same port and file."""

    def __init__(self, db: Path, port: int, log: Path) -> None:
        self.db, self.port, self.log = db, port, log
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.starts = 0
        self.kills = 0

    def start(self) -> float:
        env = {k: v for k, v in os.environ.items() if k not in ("GENOBS_INGEST_TOKEN", "GENOBS_CONFIG", "GENOBS_DB")}
        began = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "genobs.cli", "serve", "--db", str(self.db), "--port", str(self.port)],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env, cwd=self.db.parent)
        while time.monotonic() - began < 120:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    self.starts += 1
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit("server did not start within 120 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():  # type: ignore[union-attr]
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except (OSError, AttributeError):
            return None
        return None


@dataclass
class Tally:
    requests: int = 0
    answered: dict[str, int] = field(default_factory=dict)
    connection_errors: int = 0
    server_errors: int = 0
    acked: set[Any] = field(default_factory=set)     # record keys acknowledged

    def answer(self, status: int) -> None:
        self.answered[str(status)] = self.answered.get(str(status), 0) + 1
        if status >= 500:
            self.server_errors += 1


def _sample(rid: str, rng: random.Random) -> dict[str, Any]:
    return {"request_id": rid, "timestamp": 1736935200 + rng.randint(0, 86400), "service": "chat-api",
            "model": "chat-large", "model_version": rng.choice(["v1", "v2"]), "prompt": f"question {rid}",
            "response": f"answer {rid} mail bob@example.com", "latency_ms": rng.uniform(50, 3000),
            "input_tokens": rng.randint(1, 2000), "output_tokens": rng.randint(1, 800)}


_BOMB: list[bytes] = []


def _bad_bodies(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    deep = "[" * 5000 + "]" * 5000
    if not _BOMB:
        _BOMB.append(gzip.compress(b"[" + b" " * 50_000_000 + b"]"))
    good = json.dumps(_sample(f"bad-mix-{n}", rng))
    options = [
        ("application/json", b'{"request_id": "x", "prompt": "alice@example.com 4111 1111 1111 1111"'),
        ("application/json", f"[{good}, {{\"request_id\": \"deep-{n}\", \"attributes\": {deep}}}]".encode()),
        ("application/json", json.dumps([json.loads(good), {"request_id": f"big-{n}", "timestamp": 1,
                                         "model": "m", "model_version": "v",
                                         "input_tokens": 9223372036854775807}]).encode()),
        ("application/json", b'{"request_id": "s", "timestamp": 1, "model": "m", "model_version": "v", "prompt": "\\ud800"}'),
        ("application/json", b'{"": 1, "request_id": "\\u0000", "timestamp": "0000-12-31T00:00:00Z"}'),
        ("application/json", bytes(rng.getrandbits(8) for _ in range(200))),
        ("application/x-ndjson", b"\n".join([good.encode(), b"not json", b'{"request_id": " "}'])),
        ("application/json", _BOMB[0]),                                                   # gzip bomb
        ("text/plain", b"hello"),
    ]
    return [rng.choice(options)]


def client(kind: str, url: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    http = httpx.Client(base_url=url, timeout=60)
    n = 0
    while not stop.is_set():
        n += 1
        headers: dict[str, str] = {}
        try:
            if kind == "samples":
                records = [_sample(f"s{seed}-{n}-{i}", rng) for i in range(rng.choice([1, 5, 50, 600]))]
                body = "\n".join(json.dumps(r) for r in records).encode()
                response = http.post("/v1/samples", content=body, headers={"Content-Type": "application/x-ndjson"})
                keys = [r["request_id"] for r in records]
            elif kind == "otlp":
                spans = []
                keys = []
                for i in range(rng.choice([1, 10])):
                    trace, span = f"{seed:08x}{n:016x}{i:08x}", f"{i + 1:016x}"
                    keys.append(f"{trace}-{span}")
                    spans.append({"traceId": trace, "spanId": span, "name": "chat",
                                  "startTimeUnixNano": str(1736935200 * 10**9 + n), "endTimeUnixNano": str(1736935201 * 10**9 + n),
                                  "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "chat"}},
                                                 {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}}]})
                body = json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                                      "scopeSpans": [{"spans": spans}]}]}).encode()
                response = http.post("/v1/traces", content=body, headers={"Content-Type": "application/json"})
            elif kind == "gpu":
                readings = [{"timestamp": 1736935200 + n, "host": f"node-{seed}", "gpu_index": g,
                             "utilization_pct": rng.uniform(0, 100), "power_w": rng.uniform(50, 700)} for g in range(8)]
                response = http.post("/v1/gpu", content=json.dumps(readings).encode(),
                                     headers={"Content-Type": "application/json"})
                keys = [(f"node-{seed}", g, 1736935200 + n) for g in range(8)]
            else:
                content_type, body = _bad_bodies(rng, n)[0]
                headers = {"Content-Type": content_type}
                if body[:2] == b"\x1f\x8b":
                    headers["Content-Encoding"] = "gzip"
                response = http.post("/v1/samples", content=body, headers=headers)
                keys = []
        except httpx.HTTPError:
            tally.requests += 1
            tally.connection_errors += 1
            http.close()
            http = httpx.Client(base_url=url, timeout=60)
            time.sleep(0.2)
            continue
        tally.requests += 1
        tally.answer(response.status_code)
        if response.status_code == 200 and kind in ("samples", "gpu"):
            answer = response.json()
            rejected = {e.get("line") for e in answer.get("errors", [])}
            if answer.get("rejected", 0) == 0:
                tally.acked.update(keys)
            else:
                tally.acked.update(k for i, k in enumerate(keys, start=1) if i not in rejected)
        elif response.status_code == 200 and kind == "otlp" and response.headers.get("X-Genobs-Spans-Rejected") == "0":
            tally.acked.update(keys)
        if kind in ("bad", "gpu"):
            time.sleep(0.05)
    http.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-every", type=float, default=30.0, help="mean seconds between SIGKILLs")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="genobs-soak-"))
    server = Server(folder / "genobs.duckdb", free_port(), folder / "server.log")
    startup = [server.start()]
    url = f"http://127.0.0.1:{server.port}"
    kinds = ["samples", "samples", "otlp", "gpu", "bad", "bad"]
    tallies = {f"{kind}-{i}": Tally() for i, kind in enumerate(kinds)}
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(name.split("-")[0], url, stop, tallies[name], args.seed * 100 + i),
                                daemon=True) for i, name in enumerate(tallies)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    rss: list[tuple[float, float]] = []
    next_kill = began + rng.expovariate(1 / args.kill_every)
    while time.monotonic() - began < args.seconds:
        value = server.rss_mib()
        if value is not None:
            rss.append((round(time.monotonic() - began, 1), round(value, 1)))
        if time.monotonic() >= next_kill:
            server.kill()
            startup.append(server.start())
            next_kill = time.monotonic() + rng.expovariate(1 / args.kill_every)
        time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    server.stop()

    from genobs.store import Store
    store = Store.open(server.db)
    try:
        samples = {r for (r,) in store.fetchall("SELECT request_id FROM samples")}
        gpu = {(h, int(i), int(t.timestamp())) for h, i, t in store.fetchall(
            "SELECT host, gpu_index, timestamp FROM gpu_telemetry")}
        dead = store.fetchone("SELECT count(*) FROM dead_letter")[0]
        leaked = store.fetchone("SELECT count(*) FROM dead_letter WHERE raw LIKE '%alice@example.com%' "
                                "OR raw LIKE '%4111 1111 1111 1111%'")[0]
        in_clear = store.fetchone("SELECT count(*) FROM samples WHERE response LIKE '%bob@example.com%'")[0]
    finally:
        store.close()
    per_kind: dict[str, dict[str, Any]] = {}
    for name, tally in tallies.items():
        kind = name.split("-")[0]
        entry = per_kind.setdefault(kind, {"requests": 0, "answers": {}, "connection_errors": 0, "5xx": 0,
                                           "acknowledged": 0, "acknowledged_and_stored": 0})
        entry["requests"] += tally.requests
        entry["connection_errors"] += tally.connection_errors
        entry["5xx"] += tally.server_errors
        for status, count in tally.answered.items():
            entry["answers"][status] = entry["answers"].get(status, 0) + count
        stored = gpu if kind == "gpu" else samples
        entry["acknowledged"] += len(tally.acked)
        entry["acknowledged_and_stored"] += len(tally.acked & stored)
    acked = sum(e["acknowledged"] for e in per_kind.values())
    kept = sum(e["acknowledged_and_stored"] for e in per_kind.values())
    values = [v for _, v in rss]
    report = {
        "seconds": args.seconds, "seed": args.seed, "clients": kinds, "kills": server.kills,
        "server_starts": server.starts, "restart_seconds": [round(s, 1) for s in startup],
        "per_kind": per_kind,
        "acknowledged_records": acked, "acknowledged_records_stored": kept, "acknowledged_records_lost": acked - kept,
        "answers_5xx": sum(e["5xx"] for e in per_kind.values()),
        "dead_letters": dead, "dead_letters_with_pii_in_clear": leaked, "samples_with_pii_in_clear": in_clear,
        "rss_mib": {"min": min(values, default=None), "max": max(values, default=None),
                    "last": values[-1] if values else None, "samples": rss[:: max(1, len(rss) // 30)]},
        "database": str(server.db),
    }
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["acknowledged_records_lost"] == 0 and report["answers_5xx"] == 0 else 1)


if __name__ == "__main__":
    main()
