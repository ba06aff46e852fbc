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
             timeout_s: float = 90, script: Path | None = None,
             port: int | None = None, cwd: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """run_ui(db, 127.0.0.1, free port, read_only=True) in a child process; yields (base URL, process).
    ``script``: serve that Streamlit script instead, with the same Streamlit settings (the
    bench's reference page); ``db`` then only names the folder for the server's log. ``port``:
    listen there (a restarted server at the same address, so the browser's cache still holds
    its static files) instead of on a free port. ``cwd``: the server's working directory
    (Streamlit reads .streamlit/secrets.toml there, e.g. st.login's [auth] section)."""
    port = port or free_port()
    code = ("import sys; from genobs.dashboards.launch import run_ui; "
            "run_ui(sys.argv[1], '127.0.0.1', int(sys.argv[2]), read_only=True, token=sys.argv[3] or None)")
    if script is not None:
        code = ("import sys; from streamlit.web import bootstrap; "
                "from genobs.dashboards.launch import streamlit_flags; "
                "f = streamlit_flags('127.0.0.1', int(sys.argv[2])); bootstrap.load_config_options(flag_options=f); "
                f"bootstrap.run({str(script)!r}, False, [], f)")
    child_env = {**os.environ, **(env or {})}
    child_env.pop("GENOBS_UI_TOKEN", None)
    log = open(db.parent / f"ui-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(port), token or ""],
                            env=child_env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
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


# Streamlit shows "Running..." in its status widget only once a run has lasted a while, and
# elements stream in as the script produces them, so the widget alone would let a pause in
# a slow query pass for the end. The app root's data-test-script-state (Streamlit's own
# end-to-end tests read it) says whether a run is in progress. So a page counts as fully
# rendered when its heading is there, no script run is in progress, nothing is loading,
# every chart (a Vega embed) has drawn, and the page's text and charts stop changing.
# "Drawn" means pixels: Vega creates its canvas before it runs the chart's dataflow, which is
# most of a chart's cost, so a canvas alone is not a drawn chart; one with any painted pixel
# (axes, marks) is. A chart found drawn is marked so its pixels are read once. textContent,
# not innerText: reading innerText forces a layout on every poll and slows the page measured.
STATE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const busy = !document.querySelector('h1')
    || !app || app.getAttribute('data-test-script-state') !== 'notRunning'
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


# Installed before a page's own scripts (page.add_init_script): records, in the page's clock
# (ms since navigation start), when Streamlit's websocket opened, its first and last message,
# how many messages and bytes it carried, and each change of the script run state.
TIMELINE_INIT = """(() => {
  const T = window.__genobsTimeline = {msgs: 0, bytes: 0, runs: []};
  const Native = window.WebSocket;
  function Traced(...args) {
    const ws = new Native(...args);
    ws.addEventListener('open', () => { if (T.ws_open_ms === undefined) T.ws_open_ms = performance.now(); });
    ws.addEventListener('message', (e) => {
      const now = performance.now();
      if (T.first_msg_ms === undefined) T.first_msg_ms = now;
      T.last_msg_ms = now; T.msgs += 1;
      T.bytes += e.data.byteLength ?? e.data.size ?? e.data.length ?? 0;
    });
    return ws;
  }
  Traced.prototype = Native.prototype;
  Object.assign(Traced, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Traced;
  new MutationObserver((changes) => {
    for (const c of changes) T.runs.push([c.target.getAttribute('data-test-script-state'), performance.now()]);
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
})();"""


def timeline(page) -> dict[str, object]:
    """What TIMELINE_INIT recorded on ``page``, in ms since its navigation started, plus when
    the HTML's scripts had run (DOMContentLoaded) and when the last script run ended."""
    raw = page.evaluate("() => ({...window.__genobsTimeline, "
                        "dcl_ms: performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd})")
    ends = [t for state, t in raw.get("runs", []) if state == "notRunning"]
    out: dict[str, object] = {k: round(raw[k]) for k in ("dcl_ms", "ws_open_ms", "first_msg_ms", "last_msg_ms")
                              if raw.get(k) is not None}
    if ends:
        out["script_done_ms"] = round(ends[-1])
    out["ws_messages"] = raw.get("msgs", 0)
    out["ws_kib"] = round(raw.get("bytes", 0) / 1024, 1)
    return out
