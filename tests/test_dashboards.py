"""The dashboards (DESIGN §8, issue 13) in Streamlit's AppTest: every page on the demo
database and on an empty one, the Overview figures against the samples table, the access
token gate, the read-only store and the UI host rule."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from genobs.dashboards import launch
from genobs.dashboards.highlight import highlighted_html
from genobs.store import SCHEMA_VERSION, Store, StoreError

from dashboard_data import WHOLE_DEMO, shared_demo_db

APP = str(Path(launch.__file__).resolve().parent / "app.py")
PAGES = ("overview", "oncall", "quality", "drift", "gpus", "slos", "canary", "samples")


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_demo_db(tmp_path_factory)


@pytest.fixture()
def ui_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv(launch.READ_ONLY_ENV, "1")
    monkeypatch.delenv("GENOBS_UI_TOKEN", raising=False)
    yield monkeypatch
    for store in list(Store._instances.values()):
        store.close()


def run_page(db: Path, page: str, monkeypatch: pytest.MonkeyPatch, **params: str) -> AppTest:
    monkeypatch.setenv("GENOBS_DB", str(db))
    config = db.parent / "genobs.yaml"
    if config.exists():
        monkeypatch.setenv("GENOBS_CONFIG", str(config))
    else:
        monkeypatch.delenv("GENOBS_CONFIG", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "header", "subheader", "markdown", "caption", "info", "error",
                                  "warning", "success") for e in getattr(at, kind)]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_demo_db(demo_db: Path, ui_env: pytest.MonkeyPatch, page: str) -> None:
    at = run_page(demo_db, page, ui_env, range=WHOLE_DEMO)
    assert at.title[0].value.replace("-", "").lower().startswith(page[:4])
    body = texts(at)
    assert "Traceback" not in body
    expected = {
        "overview": ["Availability", "p95 latency", "Hallucination rate", "Cost per 1k requests",
                     "As of the SLO engine's last evaluation"],
        "oncall": ["Error spike", "2026-11-18 14:00", "Latency p50 / p95 / p99", "Traffic by model version"],
        "quality": ["v1.6 (canary)", "hallucinates in"],
        "drift": ["Per-feature drift over time", "Embedding drift over time", "Evidently data-drift report"],
        "gpus": ["Throttling", "gpu-node-a / GPU 1", "2026-11-21 09:30"],
        "slos": ["Error budget spent", "chat-availability", "Budget burn-down", "Burn rates", "Alert history"],
        "canary": ["hallucination score", "FAIL", "critical metric failed: hallucination"],
        "samples": ["Search"],
    }[page]
    for needle in expected:
        assert needle in body, (page, needle, body[:3000])


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_an_empty_db_says_what_to_do(tmp_path: Path, ui_env: pytest.MonkeyPatch, page: str) -> None:
    db = tmp_path / "empty.duckdb"
    Store.open(db).close()
    at = run_page(db, page, ui_env)
    advice = " ".join(e.value for e in at.info)
    assert "genobs" in advice, advice      # every empty page names a command to run
    assert not at.metric                   # and shows no figures


def test_overview_figures_equal_the_samples_table(demo_db: Path, ui_env: pytest.MonkeyPatch) -> None:
    at = run_page(demo_db, "overview", ui_env, range=WHOLE_DEMO)
    shown = {m.label: m.value for m in at.metric}
    store = Store.open(demo_db, read_only=True)
    samples = store.execute("SELECT request_id, status, latency_ms, cost_usd FROM samples "
                            "WHERE timestamp >= '2026-11-16' AND timestamp < '2026-11-23'").df()
    scores = store.execute("SELECT request_id, label FROM scores WHERE metric = 'hallucination_score' "
                           "AND error IS NULL").df()
    failed = samples["status"].isin(["error", "timeout"]).sum()
    availability = 100 * (1 - failed / len(samples))
    p95 = np.percentile(samples["latency_ms"].dropna(), 95)         # linear, like quantile_cont
    cost_per_1k = 1000 * samples["cost_usd"].dropna().sum() / samples["cost_usd"].notna().sum()
    scored = scores[scores["request_id"].isin(samples["request_id"])]
    hallucination = 100 * (scored["label"] == "hallucinated").mean()
    assert len(samples) == 30_343 and failed > 0 and len(scored) > 500
    assert shown["Availability"] == f"{availability:,.2f}%"
    assert shown["p95 latency"] == f"{p95:,.0f} ms"
    assert shown["Cost per 1k requests"] == f"{cost_per_1k:,.2f} USD"
    assert shown["Hallucination rate"] == f"{hallucination:,.1f}%"
    assert shown["Failed requests"] == f"{failed:,}"


def test_filters_come_from_the_url(demo_db: Path, ui_env: pytest.MonkeyPatch) -> None:
    at = run_page(demo_db, "overview", ui_env, range="2026-11-18T14:00:00Z..2026-11-18T15:30:00Z",
                  service="chat-api")
    shown = {m.label: m.value for m in at.metric}
    store = Store.open(demo_db, read_only=True)
    n, failed = store.fetchone(
        "SELECT count(*), count(*) FILTER (status IN ('error', 'timeout')) FROM samples WHERE service = 'chat-api' "
        "AND timestamp >= '2026-11-18 14:00:00+00' AND timestamp < '2026-11-18 15:30:00+00'")
    assert failed == 94 and n == 497        # incident 1 of sample_data/README.md
    assert shown["Failed requests"] == "94"
    assert at.query_params["service"] in ("chat-api", ["chat-api"])    # written back: the link stays shareable
    assert at.query_params["range"] in ("2026-11-18T14:00:00Z..2026-11-18T15:30:00Z",
                                        ["2026-11-18T14:00:00Z..2026-11-18T15:30:00Z"])
    assert at.multiselect(key="_w_services").value == ["chat-api"]


def test_sample_page_marks_unsupported_spans(demo_db: Path, ui_env: pytest.MonkeyPatch) -> None:
    store = Store.open(demo_db, read_only=True)
    rid, response, span_text = store.fetchone(
        "SELECT s.request_id, s.response, sc.details->'unsupported_spans'->0->>'text' FROM scores sc "
        "JOIN samples s USING (request_id) WHERE sc.label = 'hallucinated' "
        "AND json_array_length(sc.details->'unsupported_spans') > 0 ORDER BY sc.value DESC LIMIT 1")
    at = run_page(demo_db, "samples", ui_env, rid=rid)
    marked = [m.value for m in at.markdown if "<mark" in m.value]
    assert marked and span_text and span_text.split()[0] in marked[0]
    assert f"Sample {rid}" in texts(at)


def test_image_sample_shows_its_image(demo_db: Path, ui_env: pytest.MonkeyPatch) -> None:
    rid = Store.open(demo_db, read_only=True).fetchone(
        "SELECT request_id FROM samples WHERE modality = 'image' AND image IS NOT NULL LIMIT 1")[0]
    at = run_page(demo_db, "samples", ui_env, rid=rid)
    assert len(at.image) == 1


def test_highlight_escapes_html_and_ignores_bad_spans() -> None:
    text = "Refunds <b>within</b> 90 days & a $50 credit."
    out = highlighted_html(text, [{"start": 22, "end": 29, "reason": "number not in grounding"},
                                  {"start": 25, "end": 40}, {"start": -1, "end": 3}, {"start": 5}, "x"])
    assert "<b>" not in out and "&lt;b&gt;" in out and "&amp;" in out
    assert out.count("<mark") == 1 and ">90 days</mark>" in out


def test_token_gate_shows_nothing_until_the_right_token(demo_db: Path, ui_env: pytest.MonkeyPatch) -> None:
    ui_env.setenv("GENOBS_UI_TOKEN", "s3cret-token")
    ui_env.setenv("GENOBS_DB", str(demo_db))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.metric and [t.value for t in at.title] == ["genobs"]
    at.text_input[0].input("wrong")
    at.button[0].click()
    at.run()
    assert [e.value for e in at.error] == ["Wrong token."] and not at.metric and not at.sidebar.multiselect
    at.text_input[0].input("s3cret-token")
    at.button[0].click()
    at.run()
    assert at.title[0].value == "Overview" and at.metric


def test_read_only_open_refuses_missing_or_unmigrated_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        Store.open(tmp_path / "absent.duckdb", read_only=True)
    import duckdb

    duckdb.connect(str(tmp_path / "bare.duckdb")).close()
    with pytest.raises(StoreError, match=f"expects {SCHEMA_VERSION}"):
        Store.open(tmp_path / "bare.duckdb", read_only=True)
    Store.open(tmp_path / "ok.duckdb").close()
    store = Store.open(tmp_path / "ok.duckdb", read_only=True)
    try:
        assert store.read_only and store.fetchone("SELECT count(*) FROM samples")[0] == 0
        with pytest.raises(Exception, match="read-only"):
            store.execute("DELETE FROM samples")
    finally:
        store.close()


@pytest.mark.parametrize(("configured", "explicit", "token", "host", "says"), [
    ("127.0.0.1", None, False, "127.0.0.1", "loopback only"),
    ("0.0.0.0", None, False, "127.0.0.1", "ignored"),           # config alone never exposes an open UI
    ("127.0.0.1", "0.0.0.0", False, "0.0.0.0", "WARNING"),       # an explicit --ui-host does, and says so
    ("0.0.0.0", None, True, "0.0.0.0", "access token"),
])
def test_ui_host_rule(configured: str, explicit: str | None, token: bool, host: str, says: str) -> None:
    choice = launch.choose_ui_host(configured, explicit, token_set=token, oidc=False)
    assert choice.host == host and says in choice.note


def test_chart_buckets_are_time_buckets() -> None:
    """queries._bucket (integer epoch arithmetic, 5x faster on 10M rows) puts every instant in
    the same bucket as DuckDB's time_bucket, for every width the pages use, before and after
    time_bucket's origin (2000-01-03), whatever the session's time zone."""
    import duckdb

    from genobs.dashboards.queries import _bucket

    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    con.execute("CREATE TABLE t AS SELECT TIMESTAMPTZ '1969-06-01 00:00:00+00' "
                "+ to_microseconds((hash(i) % 2000000000000000)::BIGINT) AS ts FROM range(50000) r(i)")
    assert con.execute("SELECT min(ts) < TIMESTAMPTZ '2000-01-03 00:00:00+00' FROM t").fetchone()[0]
    for width in (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400):
        differ = con.execute(f"SELECT count(*) FILTER ({_bucket('ts', width)} <> time_bucket(to_seconds({width}), ts)) "
                             "FROM t").fetchone()[0]
        assert differ == 0, width


def test_server_warm_up_reads_ahead_and_leaves_the_query_cache_cold(
        demo_db: Path, tmp_path: Path, ui_env: pytest.MonkeyPatch) -> None:
    """launch.warm_up(db) runs the default views' queries before the UI listens, then empties
    the query cache (a first visit computes its figures); a file it cannot read does not stop
    the server from starting (the pages say what is wrong)."""
    import streamlit as st

    from genobs.dashboards import queries

    st.cache_data.clear()
    launch.warm_up(str(demo_db))
    calls: list[str] = []
    real = queries.store

    def counting(db: str) -> Store:
        calls.append(db)
        return real(db)

    ui_env.setattr(queries, "store", counting)
    queries.table_counts(str(demo_db))
    assert calls, "warm_up left a cached answer behind"
    garbage = tmp_path / "not-a-db.duckdb"
    garbage.write_bytes(b"this is not a DuckDB file" * 100)
    launch.warm_up(str(garbage))
    launch.warm_up(str(tmp_path / "missing.duckdb"))
    assert not (tmp_path / "missing.duckdb").exists()
