"""Benchmark: time to the first full render of Overview and On-call in Chromium on a large
database, cold and warm cache, and the UI server's memory (issue 13: target <= 1.5 s each).

Builds a synthetic database of N samples (default 10,000,000) over the last 28 days, in time
order as an ingest writes them (DuckDB SQL, about a minute per 10M rows), plus GPU readings and
hallucination scores for 2 % of samples; serves it read-only with dashboards.launch.run_ui in
a child process and opens the pages in headless Chromium (Debian's `chromium`, Playwright).

"Full render": from navigation to the page's last change, once its heading is there, no
script run is in progress (Streamlit's data-test-script-state), every chart has painted
pixels and nothing changed for 0.75 s (tests/dashboard_browser.py wait_rendered).
"cold": the database file dropped from the OS page cache (posix_fadvise DONTNEED), then a
fresh UI server (st.cache_data empty; its start, reported as server_start_s, includes
launch.warm_up reading the default view's data, which the query cache then forgets) and a
fresh browser context (empty HTTP cache). "cold_server_warm_browser": the server restarted
at the same address (cache empty again) and the page opened in the same browser context, whose
HTTP cache holds Streamlit's static files, as a returning user's does. "warm": the tab
reloaded right after the cold visit, within the cache TTL (30 s). Each page is measured at the default range (last 7d) and at last 24h.
Each measurement also reports where the time went, in the page's clock (ms since navigation
start): HTML and scripts loaded (dcl_ms), websocket open, first and last message, script run
done, and the full render. The pages' script runs alone (AppTest, no browser) and the charts
each page sends (count, data rows) are reported too. For comparison the same run measures the
30k-sample demo-sized database (--baseline-rows) the same way, and Streamlit's floor on this
machine at this time: a page with only a heading (bench/floor_app.py), cold and warm.

    python bench/bench_dashboard.py [--rows 10000000] [--keep DIR] [--screens DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dashboard_browser import (  # noqa: E402
    TIMELINE_INIT, chromium_path, free_port, serve_ui, timeline, wait_rendered)

from genobs.store import Store  # noqa: E402

SPAN_DAYS = 28
PAGES = {"overview": "", "oncall": "oncall"}
RANGES = ("last 7d", "last 24h")


def build(path: Path, rows: int) -> dict[str, float]:
    """N samples spread evenly over the last SPAN_DAYS days, with a 90-minute error burst 2 days
    ago; 8 GPUs read once a minute; hallucination scores on 2 % of samples."""
    t0 = time.perf_counter()
    store = Store.open(path)
    # A bulk load straight into the tables: this process writes once and exits, so the store's
    # in-memory request-id index (kept by upsert_samples for re-ingest) is never consulted.
    with store.transaction() as cur:
        cur.execute(
            """
            INSERT INTO samples (request_id, timestamp, service, model, model_version, variant, modality,
                prompt, response, context, status, error_type, latency_ms, ttft_ms, input_tokens,
                output_tokens, cost_usd, cache_hit, tenant, region, source, ingested_at)
            WITH g AS (
                SELECT i, now() - INTERVAL (?) DAY + to_microseconds(CAST(i * (? * 86400e6 / ?) AS BIGINT)) AS ts,
                       CAST(hash(i) % 4000000000000 AS BIGINT) AS h FROM range(?) t(i))
            SELECT 'bench-' || i, ts,
                   ['chat-api', 'search-api', 'image-gen'][1 + h % 3],
                   ['chat-large', 'chat-small'][1 + (h // 3) % 2],
                   CASE WHEN ts < now() - INTERVAL 10 DAY THEN 'v1.4' ELSE 'v1.5' END,
                   CASE WHEN ts > now() - INTERVAL 1 DAY AND (h // 7) % 10 = 0 THEN 'canary' ELSE 'primary' END,
                   'text',
                   'How do I ' || ['reset my password', 'get a refund', 'change plan', 'export data'][1 + (h // 11) % 4]
                       || ' for order ' || (h % 100000),
                   'You can do that from Settings within ' || (h % 30) || ' days. Hope that helps!',
                   ['Refunds are available within 14 days.', 'Plans can be changed at any time.'],
                   CASE WHEN ts BETWEEN now() - INTERVAL 50 HOUR AND now() - INTERVAL 48 HOUR - INTERVAL 30 MINUTE
                             AND h % 5 = 0 THEN 'error'
                        WHEN h % 3000 = 0 THEN 'timeout' ELSE 'ok' END,
                   NULL,
                   exp(6.5 + 0.35 * sqrt(-2 * ln((h % 1000003 + 1) / 1000004.0)) * cos(6.283185 * ((h // 1000003) % 1000) / 1000.0)),
                   150 + (h % 400), 400 + (h % 900), 20 + (h // 13) % 300,
                   ((400 + (h % 900)) * 2.5 + (20 + (h // 13) % 300) * 10) / 1e6,
                   h % 6 = 0, ['acme', 'globex', 'initech'][1 + (h // 17) % 3], 'us-east-1', 'bench', now()
            FROM g ORDER BY i
            """,
            [SPAN_DAYS, SPAN_DAYS, rows, rows],
        )
        cur.execute(
            """
            INSERT INTO gpu_telemetry (timestamp, host, gpu_index, gpu_name, utilization_pct, memory_used_mib,
                memory_total_mib, power_w, temperature_c, sm_clock_mhz, throttle_reasons, source)
            SELECT date_trunc('minute', now()) - to_minutes(m), 'node-' || (g // 4), g % 4, 'H100',
                   50 + 40 * sin(m / 229.0 + g), 60000, 81559, 300 + 3 * (50 + 40 * sin(m / 229.0 + g)),
                   45 + 30 * abs(sin(m / 229.0 + g)), 1980, 'none', 'bench'
            FROM range(? * 1440) a(m), range(8) b(g)
            """,
            [SPAN_DAYS],
        )
        cur.execute(
            """
            INSERT INTO scores (request_id, metric, value, label, details, evaluator, reference_model, evaluated_at)
            SELECT request_id, 'hallucination_score', (hash(request_id) % 1000) / 1000.0,
                   CASE WHEN hash(request_id) % 1000 >= 900 THEN 'hallucinated' ELSE 'grounded' END,
                   '{}', 'hallucination', 'bench', now()
            FROM samples WHERE hash(request_id) % 50 = 0
            """
        )
    counts = {t: store.fetchone(f"SELECT count(*) FROM {t}")[0] for t in ("samples", "gpu_telemetry", "scores")}
    store.close()
    return {"build_s": round(time.perf_counter() - t0, 1), **counts,
            "file_mib": round(path.stat().st_size / 2**20, 1)}


def drop_from_page_cache(path: Path) -> None:
    """Make the next read of ``path`` come from the disk (clean pages only; no root needed)."""
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@contextmanager
def started_ui(db: Path, **kwargs: object) -> Iterator[tuple[str, object, float]]:
    """serve_ui, plus the seconds from spawning the server to its health check answering."""
    t = time.perf_counter()
    with serve_ui(db, **kwargs) as (base, proc):
        yield base, proc, round(time.perf_counter() - t, 2)


def rss_mib(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            fields[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return {"rss_mib": fields.get("VmRSS"), "peak_rss_mib": fields.get("VmHWM")}


def sent(at: object) -> dict[str, object]:
    """What a page run sent the browser that costs drawing time: its Vega-Lite charts (with
    the rows of data each carries) and its data grids."""
    import pyarrow as pa

    kinds: dict[str, list[object]] = {}

    def walk(node: object) -> None:
        for child in getattr(node, "children", {}).values():
            walk(child)
        kinds.setdefault(str(getattr(node, "type", "")), []).append(node)

    walk(at._tree)  # type: ignore[attr-defined]
    rows = []
    for chart in kinds.get("vega_lite_chart", []) + kinds.get("arrow_vega_lite_chart", []):
        proto = chart.proto  # type: ignore[attr-defined]
        tables = [d.data.data for d in proto.datasets] + ([proto.data.data] if proto.data.data else [])
        rows.append(sum(pa.ipc.open_stream(t).read_all().num_rows for t in tables))
    return {"charts": len(rows), "chart_rows": rows, "dataframes": len(kinds.get("dataframe", [])), "tables": len(kinds.get("table", []))}


def script_times(db: Path) -> dict[str, object]:
    """The pages' script runs alone (queries + Streamlit, no browser), in Streamlit's AppTest:
    separates the server's share of a render from the browser's drawing of the charts."""
    import os

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["GENOBS_DB"] = str(db)
    os.environ["GENOBS_UI_READ_ONLY"] = "1"
    app = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")
    out: dict[str, object] = {}

    def run(page: str, rng: str, *, cold: bool) -> tuple[float, AppTest]:
        at = AppTest.from_file(app, default_timeout=600)
        at.query_params["range"] = rng
        at.query_params["refresh"] = "off"
        if page != "overview":
            at.run()
            at.switch_page(f"views/{page}.py")
        if cold:
            st.cache_data.clear()
        t = time.perf_counter()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return round(time.perf_counter() - t, 3), at

    run("slos", "last 1h", cold=True)   # imports of the page modules, off the clock
    for rng in RANGES:
        for page in PAGES:
            cold_s, _ = run(page, rng, cold=True)
            warm_s, at = run(page, rng, cold=False)
            out[f"{page} ({rng})"] = {"cold_s": cold_s, "warm_s": warm_s, **sent(at)}
    for store in list(Store._instances.values()):
        store.close()
    return out


def load(page, url: str | None, timeout_ms: int = 180_000) -> dict[str, object]:
    """Open ``url`` (None: reload) and wait for the full render; seconds from navigation to
    the last change, with the page's timeline."""
    t = time.perf_counter()
    if url is None:
        page.reload()
    else:
        page.goto(url)
    done = wait_rendered(page, timeout_ms=timeout_ms)
    return {"s": round(done - t, 3), **timeline(page)}


def measure(db: Path, screens: Path | None, tag: str) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("Debian's chromium is needed (apt-get install chromium)")
    out: dict[str, object] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        # The reference in the same run: Streamlit's floor (bench/floor_app.py) on this machine now.
        with serve_ui(db, script=Path(__file__).resolve().parent / "floor_app.py") as (base, _):
            context = browser.new_context(viewport={"width": 1500, "height": 1600})
            context.add_init_script(TIMELINE_INIT)
            page = context.new_page()
            cold = load(page, base)
            warm = load(page, None)
            context.close()
            out["floor: heading-only Streamlit page"] = {"cold_s": cold.pop("s"), "warm_s": warm.pop("s"),
                                                         "cold_timeline_ms": cold, "warm_timeline_ms": warm}
        for rng in RANGES:
            for name, path in PAGES.items():
                url_path = f"{path}?range={rng}&refresh=off"
                port = free_port()
                # A fresh server per page: its first visit finds st.cache_data empty.
                context = browser.new_context(viewport={"width": 1500, "height": 1600})
                context.add_init_script(TIMELINE_INIT)
                page = context.new_page()
                drop_from_page_cache(db)
                with started_ui(db, port=port) as (base, proc, start_s):
                    idle = rss_mib(proc.pid)
                    cold = load(page, f"{base}/{url_path}")
                    warm = load(page, None)
                    if screens is not None and rng == RANGES[0]:
                        screens.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(screens / f"bench_{tag}_{name}.png"))
                    after = rss_mib(proc.pid)
                    page.goto("about:blank")
                # Restarted at the same address: the server's cache is empty again, the
                # browser's holds Streamlit's static files (a returning user).
                with started_ui(db, port=port) as (base, proc, restart_s):
                    cold_server = load(page, f"{base}/{url_path}")
                    page.goto("about:blank")
                context.close()
                out[f"{name} ({rng})"] = {
                    "cold_s": cold.pop("s"), "cold_server_warm_browser_s": cold_server.pop("s"),
                    "warm_s": warm.pop("s"), "cold_timeline_ms": cold,
                    "cold_server_warm_browser_timeline_ms": cold_server, "warm_timeline_ms": warm,
                    "server_start_s": start_s, "server_restart_s": restart_s,
                    "server_idle": idle, "server_after": after}
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--baseline-rows", type=int, default=30_000)
    parser.add_argument("--keep", type=Path, help="build the databases here and keep them")
    parser.add_argument("--screens", type=Path, help="save warm screenshots here")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    folder.mkdir(parents=True, exist_ok=True)
    import os

    # The machine's load beside the figures: on a shared machine they move with it.
    result: dict[str, object] = {"target_s": 1.5, "span_days": SPAN_DAYS, "loadavg_start": os.getloadavg()}
    try:
        for tag, rows in (("baseline", args.baseline_rows), ("large", args.rows)):
            db = folder / f"bench_{rows}.duckdb"
            build_info = build(db, rows) if not db.exists() else {"reused": True}
            result[tag] = {"rows": rows, "build": build_info, "browser": measure(db, args.screens, f"{rows}"),
                           "script_only": script_times(db)}
            print(json.dumps({tag: result[tag]}), file=sys.stderr)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
