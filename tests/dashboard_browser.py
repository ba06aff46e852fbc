"""Serve the dashboards (dashboards.launch.run_ui) in a child process and drive them with
Debian's chromium through Playwright. Shared by tests/test_dashboards_browser.py and
bench/bench_dashboard.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

# (url path, heading) per page; Overview is the app's root.
PAGES: dict[str, tuple[str, str]] = {
    "overview": ("", "Overview"),
    "oncall": ("oncall", "On-call"),
    "quality": ("quality", "Quality"),
    "drift": ("drift", "Drift"),
    "gpus": ("gpus", "GPUs"),
    "slos": ("slos", "SLOs"),
    "canary": ("canary", "Canary"),
    "samples": ("samples", "Samples"),
}


def chromium_path() -> str | None:
    found = os.environ.get("GENOBS_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    return next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_ui(db: Path, *, token: str | None = None, env: dict[str, str] | None = None,
             timeout_s: float = 90) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """run_ui(db, 127.0.0.1, free port, read_only=True) in a child process; yields (base URL, process)."""
    port = free_port()
    code = ("import sys; from genobs.dashboards.launch import run_ui; "
            "run_ui(sys.argv[1], '127.0.0.1', int(sys.argv[2]), read_only=True, token=sys.argv[3] or None)")
    child_env = {**os.environ, **(env or {})}
    child_env.pop("GENOBS_UI_TOKEN", None)
    log = open(db.parent / f"ui-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(port), token or ""],
                            env=child_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"UI did not start: {(db.parent / f'ui-{port}.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# Streamlit shows "Running..." in its status widget while a script (or fragment) runs, but
# elements stream in as the script produces them and a short run may never show the widget.
# So a page counts as fully rendered when its heading is there, nothing is running or loading,
# every chart (a Vega embed) has drawn, and the page's text and charts stop changing.
# "Drawn" means pixels: Vega creates its canvas before it runs the chart's dataflow, which is
# most of a chart's cost, so a canvas alone is not a drawn chart; one with any painted pixel
# (axes, marks) is. A chart found drawn is marked so its pixels are read once. textContent,
# not innerText: reading innerText forces a layout on every poll and slows the page measured.
STATE_JS = """() => {
  const busy = !document.querySelector('h1')
    || !!document.querySelector('[data-testid="stStatusWidget"]')
    || !!document.querySelector('[data-testid="stSkeleton"]');
  const painted = (chart) => {
    if (chart.dataset.genobsDrawn) return true;
    const svg = chart.querySelector('svg.marks');
    let ok = !!(svg && svg.querySelector('path, rect, line, text'));
    const canvas = chart.querySelector('canvas');
    if (!ok && canvas && canvas.width > 0 && canvas.height > 0) {
      const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 3; i < px.length; i += 16) { if (px[i] !== 0) { ok = true; break; } }
    }
    if (ok) chart.dataset.genobsDrawn = '1';
    return ok;
  };
  const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  const drawn = charts.filter(painted).length;
  return [busy || drawn < charts.length, document.body.textContent.length + ':' + charts.length + ':' + drawn];
}"""


def wait_rendered(page, timeout_ms: int = 60_000, settle_ms: int = 750) -> float:
    """Wait until the page is fully rendered and unchanged for ``settle_ms``; returns the
    time.perf_counter() of its last change (when the render completed)."""
    deadline = time.perf_counter() + timeout_ms / 1000
    last_state, last_change = None, time.perf_counter()
    while True:
        busy, state = page.evaluate(STATE_JS)
        now = time.perf_counter()
        if state != last_state or busy:
            if state != last_state:
                last_change = now
            last_state = state
        elif (now - last_change) * 1000 >= settle_ms:
            return last_change
        if now > deadline:
            raise TimeoutError(f"page not rendered after {timeout_ms} ms (last state {last_state})")
        page.wait_for_timeout(25)


def page_text(page) -> str:
    return page.inner_text("body")
