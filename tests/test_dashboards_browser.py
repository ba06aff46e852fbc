"""End to end: the dashboards served by run_ui (as `genobs serve` / `genobs dashboard` do)
on the demo database, every page opened in headless Chromium (Debian's `chromium`, driven by
Playwright through executable_path). Screenshots go to a temporary folder, and to
bench/screens/ when GENOBS_SAVE_SCREENS=1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from dashboard_browser import PAGES, chromium_path, page_text, serve_ui, wait_rendered
from dashboard_data import WHOLE_DEMO, shared_demo_db

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")

SCREENS = Path(__file__).resolve().parents[1] / "bench" / "screens"

# What each page must show on the demo data (sample_data/README.md's incidents).
EXPECTED: dict[str, list[str]] = {
    "overview": ["Availability", "p95 latency", "Hallucination rate", "Cost per 1k requests", "Error budget per SLO",
                 "As of the SLO engine", "Firing alerts"],
    "oncall": ["Error spike", "2026-11-18 14:00", "Request rate", "Latency p50 / p95 / p99", "Alert stream"],
    "quality": ["Hallucination", "v1.6 (canary)", "Worst samples"],
    "drift": ["Per-feature drift over time", "Embedding drift over time", "prompt_embedding"],
    "gpus": ["Throttling", "gpu-node-a / GPU 1", "2026-11-21 09:30", "Temperature (°C)"],
    "slos": ["Error budget spent", "Budget burn-down", "Burn rates", "Alert history", "Silences"],
    "canary": ["Baseline vs canary", "hallucination score", "FAIL", "critical metric failed: hallucination"],
    "samples": ["Search", "Text in prompt or response"],
}
FORBIDDEN = ("Traceback", "Exception:", "Error running app", "StreamlitAPIException", "Page not found")


@pytest.fixture(scope="module")
def browser_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_demo_db(tmp_path_factory)


def test_every_page_in_chromium(browser_db: Path, tmp_path: Path) -> None:
    env = {"GENOBS_CONFIG": str(browser_db.parent / "genobs.yaml")}
    with serve_ui(browser_db, env=env) as (base, _), playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 2200})
        for name, (path, heading) in PAGES.items():
            page.goto(f"{base}/{path}?range={WHOLE_DEMO}")
            wait_rendered(page)
            assert page.locator("h1").first.inner_text().strip() == heading
            text = page_text(page)
            for needle in EXPECTED[name]:
                assert needle in text, (name, needle, text[:2000])
            for bad in FORBIDDEN:
                assert bad not in text, (name, bad)
            assert page.locator('[data-testid="stException"]').count() == 0
            shot = tmp_path / f"{name}.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            if os.environ.get("GENOBS_SAVE_SCREENS") == "1":
                SCREENS.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, SCREENS / shot.name)
        # The worst-sample links (Quality, Canary) open one sample with its unsupported spans marked.
        con = duckdb.connect(str(browser_db), read_only=True)
        rid = con.execute("SELECT request_id FROM scores WHERE metric = 'hallucination_score' "
                          "AND label = 'hallucinated' ORDER BY value DESC LIMIT 1").fetchone()[0]
        con.close()
        page.goto(f"{base}/samples?rid={rid}")
        wait_rendered(page)
        assert f"Sample {rid}" in page_text(page) and "unsupported span(s) marked" in page_text(page)
        assert page.locator("mark").count() >= 1
        page.screenshot(path=str(tmp_path / "sample_detail.png"))
        if os.environ.get("GENOBS_SAVE_SCREENS") == "1":
            shutil.copy(tmp_path / "sample_detail.png", SCREENS / "sample_detail.png")
        browser.close()


def test_token_gate_in_chromium(browser_db: Path) -> None:
    with serve_ui(browser_db, token="e2e-token") as (base, _), playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{base}/oncall")
        page.wait_for_selector("input[type=password]", timeout=60_000)
        assert "On-call" not in page_text(page) and "gpu-node" not in page_text(page)
        page.fill("input[type=password]", "not-it")
        page.get_by_role("button", name="Open dashboards").click()
        page.wait_for_selector("text=Wrong token.", timeout=30_000)
        assert "Availability" not in page_text(page)
        page.fill("input[type=password]", "e2e-token")
        page.get_by_role("button", name="Open dashboards").click()
        page.wait_for_selector("h1:has-text('On-call')", timeout=60_000)
        browser.close()


def test_oidc_login_in_chromium(browser_db: Path, tmp_path: Path) -> None:
    """With st.login's [auth] section configured (a local OIDC provider on loopback), the UI
    shows only a sign-in page; after the provider's authorization-code flow (RS256 ID token,
    PKCE) the page the link asked for renders with its figures."""
    from dashboard_browser import free_port
    from oidc_provider import oidc_provider

    with oidc_provider() as idp:
        port = free_port()
        secrets_dir = tmp_path / "ui" / ".streamlit"
        secrets_dir.mkdir(parents=True)
        (secrets_dir / "secrets.toml").write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            'cookie_secret = "genobs-test-cookie-secret-0123456789"\n'
            f'client_id = "{idp.client_id}"\n'
            f'client_secret = "{idp.client_secret}"\n'
            f'server_metadata_url = "{idp.issuer}/.well-known/openid-configuration"\n')
        env = {"GENOBS_CONFIG": str(browser_db.parent / "genobs.yaml")}
        with serve_ui(browser_db, env=env, port=port, cwd=secrets_dir.parent) as (base, _), \
                playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"{base}/?range={WHOLE_DEMO}")
            page.wait_for_selector("text=Sign in to see the dashboards", timeout=60_000)
            text = page_text(page)
            assert "Availability" not in text and "Overview" not in text and "demo.duckdb" not in text, text[:800]
            assert idp.tokens_issued == 0
            page.get_by_role("button", name="Log in").click()
            page.wait_for_selector("h1:has-text('Overview')", timeout=60_000)
            wait_rendered(page)
            text = page_text(page)
            assert "Availability" in text and "Cost per 1k requests" in text, text[:1500]
            assert idp.tokens_issued == 1 and not idp.codes     # one code, exchanged once
            for bad in FORBIDDEN:
                assert bad not in text, bad
            browser.close()


def test_ui_inside_the_platform_process_sees_posted_rows(tmp_path: Path) -> None:
    """The runtime's UI slot: API on a daemon thread, Streamlit on the main thread, one DuckDB
    instance; samples posted to the API show on the UI's next page run, and `genobs dashboard`
    on that file says where the server's UI is."""
    import json
    import subprocess
    import sys
    import time
    import urllib.request
    from datetime import datetime, timezone

    from dashboard_browser import free_port

    db = tmp_path / "live.duckdb"
    api_port, ui_port = free_port(), free_port()
    code = (
        "import sys\n"
        "from genobs.runtime import serve\n"
        "from genobs.dashboards.launch import run_ui\n"
        "db, api, ui = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
        "serve(db, '127.0.0.1', api, ui=lambda ctx: run_ui(ctx.store.path, '127.0.0.1', ui, read_only=False, "
        "token=None), ui_url=f'http://127.0.0.1:{ui}')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GENOBS_UI_TOKEN", "GENOBS_INGEST_TOKEN", "GENOBS_DB")}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(api_port), str(ui_port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        for url in (f"http://127.0.0.1:{api_port}/healthz", f"http://127.0.0.1:{ui_port}/_stcore/health"):
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2):
                        break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                    time.sleep(0.3)
        now = datetime.now(timezone.utc).isoformat()
        body = "\n".join(json.dumps({"request_id": f"live-{i}", "timestamp": now, "model": "m", "model_version": "1",
                                     "service": "live-svc", "status": status, "latency_ms": 100.0 * (i + 1)})
                         for i, status in enumerate(("ok", "ok", "error")))
        req = urllib.request.Request(f"http://127.0.0.1:{api_port}/v1/samples", data=body.encode(),
                                     headers={"Content-Type": "application/x-ndjson"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as answer:
            assert json.loads(answer.read())["accepted"] == 3
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"http://127.0.0.1:{ui_port}/?range=last+1h")
            wait_rendered(page)
            text = page_text(page)
            assert "3 requests" in text and "66.67%" in text, text[:1500]   # 2 of 3 not failed
            browser.close()
        told = subprocess.run([sys.executable, "-m", "genobs.cli", "dashboard", "--db", str(db)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert told.returncode == 0 and f"http://127.0.0.1:{ui_port}" in told.stdout, told.stdout + told.stderr
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
