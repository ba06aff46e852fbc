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
from dashboard_data import WHOLE_DEMO, build_demo_db, write_ui_config

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
    folder = tmp_path_factory.mktemp("dash_browser")
    path = folder / "demo.duckdb"
    if os.environ.get("DEVTMP_DB"):  # DEVTMP
        shutil.copy(os.environ["DEVTMP_DB"], path)  # DEVTMP
    else:  # DEVTMP
        build_demo_db(path)
    write_ui_config(folder)
    return path


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
