"""Benchmark: HTTP ingest into `genobs serve` on loopback. Prints one JSON object.

Compares against the targets of issue 3:
- throughput: batches of 500 samples (NDJSON) from 4 concurrent clients, target >= 20,000
  samples/s;
- latency: single-sample POSTs at a steady 200 requests/s, target p99 <= 25 ms
  (measured from each request's scheduled send time, so a server that falls behind is
  charged for the queueing it causes: no coordinated omission). The 64 HTTP clients are
  made before the clock starts: making one costs the client process milliseconds of CPU
  (its TLS context), which used to be charged to the server as seconds of tail latency;
- the server's resident memory once started (``server_rss_at_start_mib``, VmRSS), its peak
  (VmHWM) before and after the measurements, and the server's CPU seconds per phase
  (``server_cpu_s``: a figure that depends less on what else the machine runs than wall
  time does; compare ``load_average_before``).

The server runs as its own process (as in production) on a fresh DuckDB file, with its
scheduler. After the warm-up and ``--settle`` seconds, the benchmark waits (up to 180 s,
reported as ``idle_wait_s``) until the server is idle, so that the figures are those of
steady ingest. ``--settle 35`` lets the scheduler's first evaluation tick (30 s after
start) happen first: with the benchmark's samples (no image, no grounding) it finds
nothing to score and imports no model library, but a server that has something to score
imports open_clip, transformers or sentence-transformers then and loads a model (seconds
of CPU under the GIL), during which requests wait. ``--no-wait-idle`` measures whatever
the server is doing.

    python bench/bench_http_ingest.py [--settle 35] [--batches 40] [--duration 10] [--rate 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(request_id: str, i: int) -> dict:
    return {
        "request_id": request_id,
        "timestamp": "2025-01-15T10:00:00Z",
        "service": "chat-api",
        "model": "chat-large",
        "model_version": "2025-01-01",
        "variant": "canary" if i % 10 == 0 else "baseline",
        "prompt": f"Summarise the quarterly report for account {i} in three sentences.",
        "response": f"Revenue grew {i % 17}% quarter over quarter; costs were flat; outlook is stable.",
        "latency_ms": 400.0 + (i % 900),
        "ttft_ms": 80.0 + (i % 50),
        "input_tokens": 120 + i % 40,
        "output_tokens": 60 + i % 30,
        "status": "ok" if i % 50 else "error",
    }


def _status_mib(pid: int, key: str) -> float | None:
    """A memory figure (``VmRSS``, ``VmHWM``...) of /proc/PID/status, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def peak_rss_mib(pid: int) -> float | None:
    return _status_mib(pid, "VmHWM")


def rss_mib(pid: int) -> float | None:
    return _status_mib(pid, "VmRSS")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_used(pid: int, before: float | None) -> float | None:
    after = cpu_seconds(pid)
    return None if before is None or after is None else round(after - before, 2)


def wait_until_idle(pid: int, limit_s: float = 180.0, window_s: float = 2.0, busy_share: float = 0.1) -> float:
    """Wait until the process used less than ``busy_share`` of a core over ``window_s``; returns
    the seconds waited (``limit_s`` at most)."""
    started = time.monotonic()
    history: list[tuple[float, float]] = []
    while time.monotonic() - started < limit_s:
        used = cpu_seconds(pid)
        if used is None:
            break
        now = time.monotonic()
        history.append((now, used))
        old = [h for h in history if now - h[0] >= window_s]
        if old and (used - old[-1][1]) / (now - old[-1][0]) < busy_share:
            break
        time.sleep(0.25)
    return round(time.monotonic() - started, 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def run_throughput(url: str, clients: int, batches: int, batch_size: int) -> dict:
    bodies: list[list[bytes]] = []
    for c in range(clients):
        per_client = []
        for b in range(batches // clients):
            lines = [json.dumps(sample(f"t{c}-{b}-{i}", i)) for i in range(batch_size)]
            per_client.append(("\n".join(lines) + "\n").encode())
        bodies.append(per_client)
    accepted = [0] * clients
    errors = [0] * clients
    barrier = threading.Barrier(clients + 1)

    def worker(c: int) -> None:
        with httpx.Client(timeout=300) as http:
            barrier.wait()
            for body in bodies[c]:
                try:
                    response = http.post(url + "/v1/samples", content=body,
                                         headers={"Content-Type": "application/x-ndjson"})
                    if response.status_code == 200:
                        accepted[c] += response.json()["accepted"]
                    else:
                        errors[c] += 1
                except httpx.HTTPError:
                    errors[c] += 1

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    total = sum(accepted)
    return {
        "clients": clients, "batch_size": batch_size, "batches": sum(len(b) for b in bodies),
        "samples_accepted": total, "errors": sum(errors), "seconds": round(elapsed, 3),
        "samples_per_s": round(total / elapsed, 1), "target_samples_per_s": 20000,
        "meets_target": total / elapsed >= 20000,
    }


def run_latency(url: str, rate: float, duration: float, workers: int = 64, max_lag_s: float = 5.0) -> dict:
    count = int(rate * duration)
    # The HTTP clients exist before the clock starts: making one (its TLS context) costs the
    # client process milliseconds of CPU, which would otherwise count as server latency.
    clients: queue.SimpleQueue[httpx.Client] = queue.SimpleQueue()
    for _ in range(workers):
        clients.put(httpx.Client(timeout=max_lag_s * 2))
    bodies = [json.dumps(sample(f"l-{i}", i)).encode() for i in range(count)]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    skipped = [0]

    def send(i: int, scheduled: float) -> None:
        if time.perf_counter() - scheduled > max_lag_s:
            with lock:   # the server fell this far behind: stop piling on (bounded run time)
                skipped[0] += 1
            return
        http = clients.get()
        try:
            response = http.post(url + "/v1/samples", content=bodies[i], headers={"Content-Type": "application/json"})
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        done = time.perf_counter()
        clients.put(http)
        with lock:
            if ok:
                latencies.append((done - scheduled) * 1000.0)
            else:
                errors[0] += 1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        start = time.perf_counter() + 0.2
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i, scheduled)
        submitted_by = time.perf_counter()
    finished = time.perf_counter()
    while not clients.empty():
        clients.get().close()
    p99 = percentile(latencies, 0.99) if latencies else None
    return {
        "rate_rps": rate, "requests": count, "ok": len(latencies), "errors": errors[0],
        "not_sent_over_5s_behind": skipped[0],
        "achieved_rps": round(len(latencies) / (finished - start), 1),
        "scheduling_lag_s": round(submitted_by - (start + (count - 1) / rate), 3),
        "p50_ms": round(percentile(latencies, 0.50), 2) if latencies else None,
        "p90_ms": round(percentile(latencies, 0.90), 2) if latencies else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "max_ms": round(max(latencies), 2) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "target_p99_ms": 25,
        "meets_target": p99 is not None and p99 <= 25 and errors[0] == 0 and skipped[0] == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batches", type=int, default=40, help="total batches over all clients")
    parser.add_argument("--rate", type=float, default=200.0, help="single-sample requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the steady-rate phase")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after the warm-up before measuring (the server's scheduler "
                             "imports the evaluators' libraries, torch included, in its first seconds)")
    parser.add_argument("--no-wait-idle", dest="wait_idle", action="store_false",
                        help="measure right after --settle, even while the server is busy (by default it "
                             "waits, up to 180 s, until the server uses under 10%% of a core)")
    args = parser.parse_args()

    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="genobs-bench-"))
    db = workdir / "bench.duckdb"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k not in ("GENOBS_INGEST_TOKEN", "GENOBS_CONFIG", "GENOBS_DB")}
    server = subprocess.Popen([sys.executable, "-m", "genobs.cli", "serve", "--db", str(db), "--port", str(port), "--no-ui"],
                              cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; log in {workdir / 'server.log'}")
            time.sleep(0.1)
        rss_at_start = rss_mib(server.pid)
        # warm-up: first queries compile plans, first inserts create the table files
        httpx.post(url + "/v1/samples", json=[sample(f"w-{i}", i) for i in range(50)], timeout=120)
        time.sleep(args.settle)
        idle_wait = wait_until_idle(server.pid) if args.wait_idle else 0.0
        rss_after_start = peak_rss_mib(server.pid)
        cpu_before = cpu_seconds(server.pid)
        throughput = run_throughput(url, args.clients, args.batches, args.batch_size)
        throughput["server_cpu_s"] = cpu_used(server.pid, cpu_before)
        cpu_before = cpu_seconds(server.pid)
        latency = run_latency(url, args.rate, args.duration)
        latency["server_cpu_s"] = cpu_used(server.pid, cpu_before)
        stored = None
        try:
            metrics = httpx.get(url + "/metrics", timeout=30).text
            stored = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                         if line.startswith('genobs_ingest_accepted_total{kind="samples"}'))
        except (httpx.HTTPError, ValueError, IndexError):
            pass
        result = {
            "benchmark": "bench_http_ingest",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "throughput": throughput,
            "latency_single_sample": latency,
            "server_peak_rss_mib": peak_rss_mib(server.pid),
            "server_rss_after_start_mib": rss_after_start,
            "server_rss_at_start_mib": rss_at_start,
            "samples_accepted_by_server": stored,
            "settle_s": args.settle,
            "idle_wait_s": idle_wait,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
