"""The SLO engine's interfaces: CLI, HTTP routes (uvicorn on loopback), /metrics collector,
and the generated Prometheus rules run through the real promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from genobs.cli import app
from genobs.slo.api import build_router
from genobs.slo.engine import check
from genobs.slo.metrics import SloCollector
from genobs.slo.rules import LATENCY_BUCKETS, TTFT_BUCKETS, prometheus_rules
from genobs.slo.spec import SpecError, load_spec, parse_spec
from genobs.store import Store
from slo_fixtures import T0, steady, write_samples

SPEC = """
slos:
  - name: chat-availability
    service: chat-api
    objective: 99.9
    window: 30d
    sli: {kind: availability}
  - name: chat-latency
    service: chat-api
    objective: 99
    window: 28d
    sli: {kind: latency, threshold_ms: 2000}
"""

runner = CliRunner()


@pytest.fixture
def outage_db(tmp_path):
    """A database with an outage at T0 + 1h and the spec file beside it."""
    db = tmp_path / "g.duckdb"
    store = Store.open(db)
    write_samples(store, steady(T0, T0 + timedelta(hours=1), 10))
    write_samples(store, steady(T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=10), 10, error_every=1))
    store.close()
    spec = tmp_path / "slo.yaml"
    spec.write_text(SPEC)
    return db, spec


# ----------------------------------------------------------------------------- spec errors


def test_validate_names_file_line_slo_and_key(tmp_path):
    bad = tmp_path / "slo.yaml"
    bad.write_text(SPEC.replace("threshold_ms: 2000", "threshold_mss: 2000"))
    result = runner.invoke(app, ["slo", "validate", str(bad)])
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert f"{bad}:12" in out and "slo 'chat-latency'" in out and "sli.threshold_ms" in out


@pytest.mark.parametrize("change, expected", [
    (("objective: 99.9", "objective: 100.5"), "slo 'chat-availability': objective"),
    (("window: 30d", "window: 36h"), "slo 'chat-availability': window"),
    (("kind: availability", "kind: uptime"), "slo 'chat-availability': sli"),
    (("kind: latency, threshold_ms: 2000", "kind: quality, metric: x"), "good_below"),
])
def test_spec_errors(change, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(SPEC.replace(*change), "slo.yaml")
    assert expected in str(err.value)


def test_ratio_sql_is_checked_by_validate(tmp_path):
    spec = tmp_path / "slo.yaml"
    spec.write_text("slos:\n  - {name: r, service: s, objective: 99, window: 7d, "
                    "sli: {kind: ratio, good: \"no_such_column > 1\"}}\n")
    result = runner.invoke(app, ["slo", "validate", str(spec)])
    assert result.exit_code == 2 and "slo 'r'" in result.output and "no_such_column" in result.output


def test_catalog_factors_are_derived_for_28_days():
    spec = parse_spec(SPEC)
    factors = {w.name: round(w.factor, 4) for w in spec.slo("chat-latency").catalog.windows}
    assert factors == {"page-quick": 13.44, "page-slow": 5.6, "ticket-quick": 2.8, "ticket-slow": 0.9333}
    factors30 = {w.name: round(w.factor, 4) for w in spec.slo("chat-availability").catalog.windows}
    assert factors30 == {"page-quick": 14.4, "page-slow": 6.0, "ticket-quick": 3.0, "ticket-slow": 1.0}


def test_user_catalog_file(tmp_path):
    (tmp_path / "fast.yaml").write_text(
        "kind: AlertWindows\nspec:\n  sloPeriod: 30d\n"
        "  page:\n    quick: {errorBudgetPercent: 1, shortWindow: 2m, longWindow: 30m}\n"
        "    slow: {errorBudgetPercent: 5, shortWindow: 30m, longWindow: 6h}\n"
        "  ticket:\n    quick: {errorBudgetPercent: 10, shortWindow: 2h, longWindow: 1d}\n"
        "    slow: {errorBudgetPercent: 10, shortWindow: 6h, longWindow: 3d}\n")
    spec_file = tmp_path / "slo.yaml"
    spec_file.write_text(SPEC.replace("sli: {kind: availability}", "sli: {kind: availability}\n    alerting: {windows: fast.yaml}"))
    quick = load_spec(spec_file).slo("chat-availability").catalog.windows[0]
    assert (quick.long, quick.short, round(quick.factor, 6)) == (timedelta(minutes=30), timedelta(minutes=2), 14.4)


# ----------------------------------------------------------------------------- CLI


def test_cli_check_status_alerts_and_silences(outage_db):
    db, spec = outage_db
    at = (T0 + timedelta(hours=1, minutes=9)).isoformat()
    ok = runner.invoke(app, ["slo", "check", "--db", str(db), "--spec", str(spec), "--at", at, "--format", "json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    avail = next(s for s in data["slos"] if s["slo"] == "chat-availability")
    assert avail["alerting"] == ["page", "ticket"] and data["transitions"] == []  # no --notify: no state change
    gate = runner.invoke(app, ["slo", "check", "--db", str(db), "--spec", str(spec), "--at", at, "--notify",
                               "--fail-on-breach"])
    assert gate.exit_code == 1 and "chat-availability" in gate.output
    firing = runner.invoke(app, ["alerts", "--db", str(db), "--state", "firing", "--format", "json"])
    alerts = json.loads(firing.output)["alerts"]
    assert {(a["slo"], a["severity"]) for a in alerts} == {("chat-availability", "page"), ("chat-availability", "ticket")}
    assert runner.invoke(app, ["alerts", "--db", str(db), "--state", "burning"]).exit_code == 2
    status = runner.invoke(app, ["slo", "status", "--db", str(db), "--spec", str(spec), "--at", at, "--format", "json"])
    assert status.exit_code == 0, status.output
    report = {s["slo"]: s for s in json.loads(status.output)["slos"]}
    assert report["chat-availability"]["firing"] == ["page", "ticket"]
    assert runner.invoke(app, ["slo", "status", "--db", str(db), "--spec", str(spec)]).exit_code == 0
    added = runner.invoke(app, ["silence", "add", "--db", str(db), "--match", "slo=chat-availability",
                                "--match", "severity=~page|ticket", "--end", "2030-01-01T00:00:00Z",
                                "--comment", "db migration"])
    assert added.exit_code == 0, added.output
    listed = json.loads(runner.invoke(app, ["silence", "list", "--db", str(db), "--format", "json"]).output)
    (silence,) = listed["silences"]
    assert silence["matchers"] == ["slo=chat-availability", "severity=~page|ticket"] and silence["state"] == "active"
    assert runner.invoke(app, ["silence", "expire", "--db", str(db), str(silence["id"])]).exit_code == 0
    assert runner.invoke(app, ["silence", "expire", "--db", str(db), str(silence["id"])]).exit_code == 2
    bad = runner.invoke(app, ["silence", "add", "--db", str(db), "--match", "slo", "--end", "1d", "--comment", "x"])
    assert bad.exit_code == 2 and "--match" in bad.output


# ----------------------------------------------------------------------------- HTTP + metrics


class _Server:
    def __init__(self, api: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=0, log_level="warning"))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_http_routes_and_metrics(outage_db):
    db, spec_path = outage_db
    store = Store.open(db)
    spec = load_spec(spec_path)
    check(store, spec, at=T0 + timedelta(hours=1, minutes=9))
    api = FastAPI()
    api.include_router(build_router(lambda: store, lambda: spec))
    server = _Server(api)
    try:
        at = (T0 + timedelta(hours=1, minutes=9)).isoformat()
        body = httpx.get(f"{server.url}/v1/slo", params={"at": at}).json()
        avail = next(s for s in body["slos"] if s["slo"] == "chat-availability")
        assert avail["firing"] == ["page", "ticket"] and avail["burn_rates"]["5m"] == pytest.approx(1000)
        assert set(avail["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d", "window"}
        assert httpx.get(f"{server.url}/v1/slo", params={"at": "yesterday-ish"}).status_code == 400
        alerts = httpx.get(f"{server.url}/v1/alerts", params={"state": "firing"}).json()["alerts"]
        assert len(alerts) == 2
        assert httpx.get(f"{server.url}/v1/alerts", params={"state": "x"}).status_code == 400
        assert httpx.post(f"{server.url}/v1/silences", json={"matchers": ["slo~x"], "ends_at": "2030-01-01",
                                                              "comment": "c"}).status_code == 400
        created = httpx.post(f"{server.url}/v1/silences", json={"matchers": ["slo=chat-latency"],
                                                                 "ends_at": "2030-01-01T00:00:00Z", "comment": "c"})
        assert created.status_code == 201
        assert httpx.delete(f"{server.url}/v1/silences/{created.json()['id']}").status_code == 200
        assert httpx.delete(f"{server.url}/v1/silences/999").status_code == 404
    finally:
        server.stop()
    registry = CollectorRegistry()
    registry.register(SloCollector(lambda: store))
    text = generate_latest(registry).decode()
    assert 'genobs_slo_objective_ratio{service="chat-api",slo="chat-availability"} 0.999' in text
    assert 'genobs_slo_burn_rate{service="chat-api",slo="chat-availability",window="5m"}' in text
    assert 'genobs_alerts_firing{severity="page"} 1.0' in text
    assert "genobs_notifications_pending 0.0" in text
    assert "genobs_slo_error_budget_remaining_ratio" in text
    store.close()


# ----------------------------------------------------------------------------- promtool


def test_rule_buckets_match_the_exporter():
    from genobs.collectors import metrics

    assert LATENCY_BUCKETS == metrics.LATENCY_BUCKETS and TTFT_BUCKETS == metrics.TTFT_BUCKETS


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed")
def test_generated_rules_pass_promtool_and_the_outage_fires_the_page(tmp_path):
    spec = parse_spec(SPEC, "slo.yaml")
    rules = tmp_path / "rules.yml"
    rules.write_text(prometheus_rules(spec))
    checked = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # 600 requests a minute; after 60 minutes every request fails.
    labels = 'service="chat-api",model="chat-large",model_version="v1",variant="primary"'
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'genobs_requests_total{{{labels},status="ok"}}', "values": "0+600x60 36000x60"},
                {"series": f'genobs_requests_total{{{labels},status="error"}}', "values": "0x60 600+600x60"},
            ],
            "alert_rule_test": [
                {"eval_time": "50m", "alertname": "GenobsSLOErrorBudgetBurn", "exp_alerts": []},
                {"eval_time": "70m", "alertname": "GenobsSLOErrorBudgetBurn", "exp_alerts": [
                    {"exp_labels": {"slo": "chat-availability", "service": "chat-api", "severity": "page",
                                    "sli": "availability"},
                     "exp_annotations": {"summary": "chat-availability: chat-api is burning its 99.9% / 30d "
                                                    "error budget (page)"}},
                    {"exp_labels": {"slo": "chat-availability", "service": "chat-api", "severity": "ticket",
                                    "sli": "availability"},
                     "exp_annotations": {"summary": "chat-availability: chat-api is burning its 99.9% / 30d "
                                                    "error budget (ticket)"}},
                ]},
            ],
        }],
    }
    test_file = tmp_path / "test.yml"
    test_file.write_text(json.dumps(test))
    tested = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


# ----------------------------------------------------------------------------- the runtime


def test_plugin_in_the_platform(tmp_path):
    from datetime import datetime, timezone

    from genobs.config import GenobsConfig
    from genobs.runtime import ServerSettings, start_platform
    from genobs.slo import plugin
    from slo_fixtures import Receiver

    hook = Receiver()
    spec_file = tmp_path / "slo.yaml"
    spec_file.write_text(SPEC)
    config = GenobsConfig.model_validate({
        "slo": {"file": str(spec_file), "evaluate_interval_s": 3600},
        "notifiers": {"drain_interval_s": 3600, "receivers": [{"name": "hook", "type": "webhook", "url": hook.url}]},
    })
    handle = start_platform(tmp_path / "p.duckdb", settings=ServerSettings(ingest_token=None), config=config,
                            plugins=[plugin.contribute])
    try:
        now = datetime.now(timezone.utc)
        write_samples(handle.store, steady(now - timedelta(minutes=20), now, 10, error_every=1))
        evaluated = handle.scheduler.run_now("slo-evaluate")
        assert evaluated["transitions"]
        handle.scheduler.run_now("notification-outbox")
        assert hook.delivered and hook.delivered[0]["json"]["version"] == "4"
        slo = httpx.get(f"{handle.url}/v1/slo").json()
        assert {s["slo"] for s in slo["slos"]} == {"chat-availability", "chat-latency"}
        firing = httpx.get(f"{handle.url}/v1/alerts", params={"state": "firing"}).json()["alerts"]
        assert {a["severity"] for a in firing} == {"page", "ticket"}
        metrics = httpx.get(f"{handle.url}/metrics").text
        assert 'genobs_alerts_firing{severity="page"} 1.0' in metrics
        assert 'genobs_slo_error_budget_remaining_ratio{service="chat-api",slo="chat-availability"}' in metrics
        # The CLI talks to the server that holds the database.
        out = runner.invoke(app, ["alerts", "--server", handle.url, "--state", "firing", "--format", "json"])
        assert out.exit_code == 0 and len(json.loads(out.output)["alerts"]) == 2
        added = runner.invoke(app, ["silence", "add", "--server", handle.url, "--match", "slo=chat-latency",
                                    "--end", "2030-01-01T00:00:00Z", "--comment", "planned"])
        assert added.exit_code == 0, added.output
        listed = runner.invoke(app, ["silence", "list", "--server", handle.url, "--format", "json"])
        assert json.loads(listed.output)["silences"][0]["comment"] == "planned"
    finally:
        handle.stop()
        handle.store.close()
        hook.close()


def test_alert_history_is_served(tmp_path) -> None:
    """GET /v1/alerts?history=true (schemathesis found a 500: "at" is a keyword to DuckDB's parser)."""
    import httpx

    from genobs.runtime import ServerSettings, start_platform

    handle = start_platform(tmp_path / "h.duckdb", settings=ServerSettings(ingest_token=None, run_scheduler=False),
                            record_url=False)
    try:
        answer = httpx.get(handle.url + "/v1/alerts", params={"history": "true"})
        assert answer.status_code == 200 and answer.json()["history"] == []
    finally:
        handle.stop()
