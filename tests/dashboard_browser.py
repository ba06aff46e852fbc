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


# Streamlit shows "Running..." in its status widget while a script (or fragment) runs; a
# page is fully rendered when its heading is there, the widget is gone, and every chart
# (a Vega embed) has drawn its canvas/SVG.
RENDERED_JS = """() => {
  if (!document.querySelector('h1')) return false;
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  const charts = document.querySelectorAll('[data-testid="stVegaLiteChart"]');
  for (const c of charts) { if (!c.querySelector('canvas, svg')) return false; }
  return true;
}"""


def wait_rendered(page, timeout_ms: int = 60_000, settle_ms: int = 300) -> None:
    """Wait until the page is fully rendered (and stays so for ``settle_ms``)."""
    page.wait_for_function(RENDERED_JS, timeout=timeout_ms, polling=50)
    page.wait_for_timeout(settle_ms)
    page.wait_for_function(RENDERED_JS, timeout=timeout_ms, polling=50)


def page_text(page) -> str:
    return page.inner_text("body")
