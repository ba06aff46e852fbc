"""The canary gate end to end: a real DuckDB file, `genobs canary` (exit codes, reports,
continuous analysis, reading through a running server from another process), the HTTP routes
on a real server on 127.0.0.1, and the deploy-tool snippets of docs/canary.md (Argo Rollouts'
successCondition evaluated on real API output, Flagger's webhook payload, the CI commands).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from xml.etree import ElementTree as ET

import httpx
import numpy as np
import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from genobs.cli import app
from genobs.runtime import ServerSettings, start_platform
from genobs.slo import canary_plugin
from genobs.slo.canary_config import default_spec, load_spec, spec_from_mapping
from genobs.slo.canary_run import advance_analyses, analysis_status, run_canary, start_analysis
from genobs.store import SAMPLE_COLUMNS, Store

DOCS = Path(__file__).resolve().parent.parent / "docs" / "canary.md"
NOW = datetime.now(timezone.utc)
PERF_ONLY = {"min_samples": 50, "metrics": [
    {"name": "latency_ms", "column": "latency_ms", "allowed_increase": 1.05},
    {"name": "ttft_ms", "column": "ttft_ms", "allowed_increase": 1.05},
    {"name": "hallucination_score", "score": "hallucination_score", "allowed_increase": 1.1, "critical": True},
]}


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    defaults = {"service": "chat-api", "model": "chat-large", "modality": "text", "status": "ok",
                "ingested_at": NOW, "source": "test"}
    columns: dict[str, list[Any]] = {name: [] for name, _ in SAMPLE_COLUMNS}
    for row in rows:
        for name in columns:
            columns[name].append(row.get(name, defaults.get(name)))
    return pa.table({name: columns[name] for name in columns})


def fill(store: Store, *, n: int = 300, latency_factor: float = 1.0, hallucination: float = 0.05,
         seed: int = 7, start: datetime | None = None) -> None:
    """n samples per arm over the 50 minutes before ``start`` (default now), with scores."""
    rng = np.random.default_rng(seed)
    start = start or NOW
    rows, scores = [], []
    for arm, version, factor, rate in (("baseline", "v1.5", 1.0, 0.05), ("canary", "v1.6", latency_factor,
                                                                          hallucination)):
        for i in range(n):
            rid = f"{arm}-{seed}-{i}"
            rows.append({"request_id": rid, "timestamp": start - timedelta(seconds=float(rng.uniform(60, 3000))),
                         "model_version": version, "variant": arm,
                         "latency_ms": round(float(rng.lognormal(np.log(700), 0.3)) * factor, 1),
                         "ttft_ms": round(float(rng.lognormal(np.log(200), 0.3)), 1),
                         "output_tokens": int(rng.poisson(46)), "cost_usd": 0.001,
                         "safety_flagged": False})
            hallucinated = rng.random() < rate
            value = float(rng.uniform(0.5, 1.0) if hallucinated else rng.beta(2, 8))
            scores.append({"request_id": rid, "metric": "hallucination_score", "value": value,
                           "label": "hallucinated" if value >= 0.5 else "grounded", "evaluator": "hallucination",
                           "reference_model": "builtin"})
    store.upsert_samples(_table(rows))
    store.write_scores(scores)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "genobs.duckdb"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    s = Store.open(db)
    yield s
    s.close()


@pytest.fixture
def perf_config(tmp_path: Path) -> Path:
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(PERF_ONLY))
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["canary", *args], catch_exceptions=False)


# --------------------------------------------------------------------------- CLI


def test_cli_pass_is_exit_0_and_the_verdict_is_stored(store: Store, db: Path, perf_config: Path) -> None:
    fill(store)
    result = cli("--db", str(db), "--baseline", "variant=baseline", "--canary", "variant=canary",
                 "--config", str(perf_config), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["verdict"] == "pass" and data["score"] == 100
    assert {m["name"]: m["classification"] for m in data["metrics"]} == {
        "latency_ms": "Pass", "ttft_ms": "Pass", "hallucination_score": "Pass"}
    row = store.fetchone("SELECT verdict, window_start, window_end, details, baseline FROM canary_verdicts "
                         "WHERE id = ?", [data["id"]])
    assert row[0] == "pass" and row[4] == "variant=baseline"
    assert row[2] - row[1] == timedelta(hours=1)  # the default window
    details = json.loads(row[3])
    assert details["config"]["metrics"][0]["name"] == "latency_ms" and details["exit_code"] == 0
    assert [m["name"] for m in details["metrics"]] == ["latency_ms", "ttft_ms", "hallucination_score"]


def test_cli_fails_on_a_hallucination_regression_with_junit_and_markdown(
        store: Store, db: Path, perf_config: Path, tmp_path: Path) -> None:
    fill(store, hallucination=0.35)
    xml_path, md_path = tmp_path / "canary.xml", tmp_path / "canary.md"
    result = cli("--db", str(db), "--baseline", "variant=baseline", "--canary", "variant=canary",
                 "--config", str(perf_config), "--output", str(xml_path), "--output", str(md_path))
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.stdout and "hallucination_score" in result.stdout
    suite = ET.parse(xml_path).getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"latency_ms", "ttft_ms", "hallucination_score"}
    failure = cases["hallucination_score"].find("failure")
    assert failure is not None and failure.get("type") == "High" and "higher than allowed" in failure.get("message")
    assert cases["latency_ms"].find("failure") is None
    assert suite.get("failures") == "1"
    markdown = md_path.read_text()
    assert markdown.startswith("### ❌ Canary fail") and "| hallucination_score | HIGH CRITICAL |" in markdown


def test_cli_defaults_say_inconclusive_with_samples_needed(store: Store, db: Path) -> None:
    fill(store, n=120)
    result = cli("--db", str(db), "--baseline", "variant=baseline", "--canary", "variant=canary")
    assert result.exit_code == 3, result.output
    assert "INCONCLUSIVE" in result.stdout and "more samples per arm needed" in result.stdout
    assert "error_rate" in result.stdout


def test_cli_input_errors_are_exit_2(store: Store, db: Path, tmp_path: Path) -> None:
    fill(store, n=60)
    bad = cli("--db", str(db), "--baseline", "flavour=baseline", "--canary", "variant=canary")
    assert bad.exit_code == 2 and "'flavour' is not one of" in bad.stderr
    overlap = cli("--db", str(db), "--baseline", "service=chat-api", "--canary", "variant=canary")
    assert overlap.exit_code == 2 and "must not overlap" in overlap.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("metrics:\n  - name: x\n    column: prompt\n")
    config = cli("--db", str(db), "--baseline", "variant=baseline", "--canary", "variant=canary",
                 "--config", str(broken))
    assert config.exit_code == 2 and "broken.yaml" in config.stderr and "metrics.0" in config.stderr
    window = cli("--db", str(db), "--baseline", "variant=baseline", "--canary", "variant=canary",
                 "--since", "yesterday-ish")
    assert window.exit_code == 2 and "yesterday-ish" in window.stderr


def test_cli_continuous_analysis_stops_early_on_a_critical_failure(
        store: Store, db: Path, perf_config: Path) -> None:
    fill(store, hallucination=0.35)
    result = cli("--db", str(db), "--baseline", "variant=baseline", "--canary", "variant=canary",
                 "--config", str(perf_config), "--since", "1h", "--interval", "1s", "--lifetime", "5s")
    assert result.exit_code == 1, result.output
    assert "interval 1: fail" in result.stderr and "stopped early at interval 1" in result.stderr
    assert "interval 2" not in result.stderr
    assert store.fetchone("SELECT count(*) FROM canary_verdicts")[0] == 1


def test_cli_continuous_analysis_keeps_every_interval(store: Store, db: Path, perf_config: Path) -> None:
    fill(store)
    result = cli("--db", str(db), "--baseline", "variant=baseline", "--canary", "variant=canary",
                 "--config", str(perf_config), "--since", "1h", "--interval", "1s", "--lifetime", "2s")
    assert result.exit_code == 0, result.output
    assert "interval 1: pass" in result.stderr and "interval 2: pass" in result.stderr
    windows = store.fetchall("SELECT window_start, window_end FROM canary_verdicts ORDER BY id")
    assert len(windows) == 2 and windows[0][0] == windows[1][0] and windows[1][1] > windows[0][1]


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
def server(db: Path, store: Store) -> Iterator[Any]:
    handle = start_platform(db, settings=ServerSettings(poll_nvml=False, ingest_token=None),
                            plugins=[canary_plugin.contribute])
    yield handle
    handle.stop()


def test_verdict_and_gate_routes(server: Any, store: Store) -> None:
    fill(store, hallucination=0.35)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        verdict = http.get("/v1/canary/verdict", params={"baseline": "variant=baseline", "canary": "variant=canary"})
        assert verdict.status_code == 200
        data = verdict.json()
        assert data["verdict"] == "fail"
        assert {m["name"]: m["classification"] for m in data["metrics"]}["hallucination_rate"] == "High"
        gate = http.get("/v1/canary/gate", params={"baseline": "variant=baseline", "canary": "variant=canary"})
        assert gate.status_code == 412 and gate.json()["verdict"] == "fail"
        rollback = http.get("/v1/canary/gate", params={"baseline": "variant=baseline", "canary": "variant=canary",
                                                        "expect": "fail"})
        assert rollback.status_code == 200
        passing = http.post("/v1/canary/gate", json={"baseline": "variant=baseline", "canary": "variant=canary",
                                                      "config": {"metrics": PERF_ONLY["metrics"][:2]}})
        assert passing.status_code == 200 and passing.json()["verdict"] == "pass"
        bad = http.get("/v1/canary/verdict", params={"baseline": "nope", "canary": "variant=canary"})
        assert bad.status_code == 400 and "FIELD=VALUE" in bad.json()["detail"]
        missing = http.get("/v1/canary/gate")
        assert missing.status_code == 400
        bad_config = http.post("/v1/canary/verdict", json={"baseline": "variant=baseline", "canary": "variant=canary",
                                                           "config": {"confidence": 3}})
        assert bad_config.status_code == 400 and "confidence" in bad_config.json()["detail"]
        history = http.get("/v1/canary/verdicts").json()
        assert len(history) == 4 and history[0]["verdict"] == "pass"  # verdict, gate x3


def test_continuous_analysis_through_the_api(server: Any, store: Store) -> None:
    fill(store, hallucination=0.35, start=NOW - timedelta(hours=2))
    with httpx.Client(base_url=server.url, timeout=60) as http:
        created = http.post("/v1/canary/analyses", json={
            "baseline": "variant=baseline", "canary": "variant=canary", "interval": "70m", "lifetime": "3h",
            "config": PERF_ONLY})
        assert created.status_code == 201, created.text
        aid = created.json()["id"]
        assert created.json()["state"] == "running"
    # The server's periodic task (run now through the platform's API): nothing is due yet.
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post(f"/v1/tasks/{canary_plugin.ANALYSIS_TASK}/run").status_code == 200
    assert analysis_status(store, aid)["verdicts"] == []
    # Move the analysis 3 h back: its first 70-minute interval is due.
    store.execute("UPDATE canary_analyses SET started_at = ?, next_at = ? WHERE id = ?",
                  [NOW - timedelta(hours=3), NOW - timedelta(hours=3) + timedelta(minutes=70), aid])
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post(f"/v1/tasks/{canary_plugin.ANALYSIS_TASK}/run").status_code == 200
    status = analysis_status(store, aid)
    # The data lies 2-3 h back: the first 70-minute interval holds it all and fails critically.
    assert status["state"] == "stopped" and status["final_verdict"] == "fail"
    assert len(status["verdicts"]) == 1 and status["verdicts"][0]["interval"] == 1
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get(f"/v1/canary/analyses/{aid}").json()["state"] == "stopped"
        assert http.get("/v1/canary/analyses/999").status_code == 404


def test_an_analysis_that_passes_runs_its_lifetime(store: Store) -> None:
    fill(store)  # the 50 minutes before NOW
    spec = spec_from_mapping(PERF_ONLY)
    begin = NOW - timedelta(hours=2)
    aid = start_analysis(store, "variant=baseline", "variant=canary", interval=timedelta(hours=1),
                         lifetime=timedelta(hours=2), spec=spec, start=begin)
    assert advance_analyses(store, now=begin + timedelta(minutes=61)) == 1
    status = analysis_status(store, aid)
    assert status["state"] == "running" and status["verdicts"][0]["verdict"] == "inconclusive"  # no data yet
    assert advance_analyses(store, now=NOW) == 1
    status = analysis_status(store, aid)
    assert status["state"] == "completed" and status["final_verdict"] == "pass"
    assert [v["interval"] for v in status["verdicts"]] == [1, 2]


def test_cli_reads_through_the_server_that_holds_the_database(server: Any, store: Store, db: Path,
                                                              perf_config: Path) -> None:
    fill(store, hallucination=0.35)
    env = {**os.environ, "GENOBS_DB": str(db)}
    proc = subprocess.run([sys.executable, "-m", "genobs.cli", "canary", "--baseline", "variant=baseline",
                           "--canary", "variant=canary", "--config", str(perf_config), "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["verdict"] == "fail" and data["id"] is not None
    # it was judged by the server (the only process that can open the file) and stored there
    assert store.fetchone("SELECT verdict FROM canary_verdicts WHERE id = ?", [data["id"]])[0] == "fail"


# --------------------------------------------------------------------------- docs/canary.md


def _yaml_blocks() -> list[Any]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)]


def _argo_condition(expr: str, result: dict[str, Any]) -> bool:
    """Evaluate an Argo Rollouts (expr-lang) condition of the form the docs use:
    comparisons of result.a.b with literals, joined by && / ||."""
    python = expr.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"result((?:\.[A-Za-z_]\w*)+)",
                    lambda m: "result" + "".join(f"[{p!r}]" for p in m.group(1).split(".")[1:]), python)
    assert re.fullmatch(r"[\w\[\]'\" .=!<>()-]+", python), python
    return bool(eval(python, {"__builtins__": {}}, {"result": result}))  # noqa: S307 - test oracle


def test_docs_canary_yaml_block_is_the_defaults() -> None:
    block = next(b for b in _yaml_blocks() if isinstance(b, dict) and "metrics" in b and "thresholds" in b)
    assert spec_from_mapping(block).model_dump() == default_spec().model_dump()


def test_docs_argo_analysis_template_against_the_api(server: Any, store: Store) -> None:
    template = next(b for b in _yaml_blocks() if isinstance(b, dict) and b.get("kind") == "AnalysisTemplate")
    assert template["apiVersion"] == "argoproj.io/v1alpha1"
    metric = template["spec"]["metrics"][0]
    web = metric["provider"]["web"]
    assert web["jsonPath"] == "{$}" and metric["failureLimit"] == 0
    args = {a["name"]: a.get("value") for a in template["spec"]["args"]}
    url = re.sub(r"\{\{args\.([\w-]+)\}\}", lambda m: args[m.group(1)], web["url"])
    url = re.sub(r"^https?://[^/]+", server.url, url)
    for hallucination, expected in ((0.05, "success"), (0.35, "failure")):
        store.execute("DELETE FROM samples")
        store.execute("DELETE FROM scores")
        fill(store, hallucination=hallucination, seed=3 if expected == "success" else 4)
        with httpx.Client(timeout=60) as http:
            answer = http.get(url)
        assert answer.status_code == 200
        result = answer.json()
        success = _argo_condition(metric["successCondition"], result)
        failure = _argo_condition(metric["failureCondition"], result)
        # 300 samples per arm: the default proportions are inconclusive, so a good canary is
        # an inconclusive measurement (neither condition), a bad one a failure.
        if expected == "failure":
            assert failure and not success
        else:
            assert not failure and result["verdict"] == "inconclusive" and not success


def test_docs_flagger_webhooks_against_the_gate(server: Any, store: Store) -> None:
    canary = next(b for b in _yaml_blocks() if isinstance(b, dict) and b.get("kind") == "Canary")
    hooks = {h["type"]: h for h in canary["spec"]["analysis"]["webhooks"]}
    fill(store, hallucination=0.35)
    with httpx.Client(timeout=60) as http:
        for kind, expected in (("confirm-promotion", 412), ("rollback", 200)):
            hook = hooks[kind]
            url = re.sub(r"^https?://[^/]+", server.url, hook["url"])
            payload = {"name": "chat-api", "namespace": "prod", "phase": "Progressing", "checksum": "abc",
                       "metadata": hook["metadata"]}
            answer = http.post(url, json=payload)
            assert answer.status_code == expected, (kind, answer.text)
            assert answer.json()["verdict"] == "fail"


def test_docs_ci_commands_run(store: Store, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(store, hallucination=0.35)
    blocks = _yaml_blocks()
    github = next(b for b in blocks if isinstance(b, dict) and "jobs" in b)
    gitlab = next(b for b in blocks if isinstance(b, dict) and "canary-gate" in b)
    commands = [line for step in github["jobs"]["canary"]["steps"] for line in str(step.get("run", "")).splitlines()
                if line.strip().startswith("genobs canary")]
    commands += [line for line in gitlab["canary-gate"]["script"] if line.startswith("genobs canary")]
    assert len(commands) == 2
    assert "reports" in gitlab["canary-gate"]["artifacts"]
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)[2:]
        at = argv.index("--server")
        argv[at:at + 2] = ["--db", str(db)]
        result = cli(*argv)
        assert result.exit_code == 1, result.output
        assert ET.parse(tmp_path / "canary.xml").getroot().tag == "testsuites"
        assert (tmp_path / "canary.md").read_text().startswith("### ❌ Canary fail")


def test_load_spec_reads_canary_yaml_from_the_working_directory(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_spec(None).model_dump() == default_spec().model_dump()
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(PERF_ONLY))
    assert [m.name for m in load_spec(None).metrics] == ["latency_ms", "ttft_ms", "hallucination_score"]


def test_run_canary_is_what_the_demo_calls(store: Store) -> None:
    fill(store, latency_factor=1.0, hallucination=0.35, start=datetime(2026, 11, 23, tzinfo=timezone.utc))
    verdict = run_canary(store, "variant=baseline", "variant=canary", "2026-11-22T00:00:00Z",
                         "2026-11-23T00:00:00Z")
    by_name = {m.name: m for m in verdict.metrics}
    assert verdict.verdict == "fail" and verdict.exit_code == 1
    assert by_name["hallucination_rate"].classification == "High"
    assert by_name["latency_ms"].classification == "Pass"


def test_bad_input_is_4xx_never_5xx(server: Any, store: Store) -> None:
    fill(store, n=60)
    sel = {"baseline": "variant=baseline", "canary": "variant=canary"}
    cases = [
        ("get", "/v1/canary/verdict", {**sel, "since": "99999999999999999999w"}, None),
        ("get", "/v1/canary/verdict", {**sel, "since": "99999999999999999999"}, None),
        ("get", "/v1/canary/verdict", {**sel, "since": "2026-01-02", "until": "2026-01-01"}, None),
        ("get", "/v1/canary/verdict", {**sel, "window": "-5m"}, None),
        ("get", "/v1/canary/gate", {**sel, "expect": "maybe"}, None),
        ("get", "/v1/canary/verdict", {"baseline": "variant=canary", "canary": "variant=canary"}, None),
        ("post", "/v1/canary/verdict", None, [1, 2]),
        ("post", "/v1/canary/verdict", None, {**sel, "config": ["not", "a", "mapping"]}),
        ("post", "/v1/canary/gate", None, {"metadata": {"baseline": "x"}}),
        ("post", "/v1/canary/analyses", None, {**sel, "interval": "99999999999999999w"}),
        ("post", "/v1/canary/analyses", None, {**sel, "interval": "0s"}),
        ("get", "/v1/canary/analyses/notanumber", None, None),
    ]
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for method, path, params, body in cases:
            answer = http.request(method.upper(), path, params=params, json=body)
            assert 400 <= answer.status_code < 500, (path, params, body, answer.status_code, answer.text)


def test_routes_follow_the_servers_bearer_token(db: Path, store: Store) -> None:
    fill(store, n=60)
    handle = start_platform(db, settings=ServerSettings(poll_nvml=False, ingest_token="s3cret"),
                            plugins=[canary_plugin.contribute])
    try:
        params = {"baseline": "variant=baseline", "canary": "variant=canary"}
        with httpx.Client(base_url=handle.url, timeout=60) as http:
            assert http.get("/v1/canary/verdict", params=params).status_code == 401
            ok = http.get("/v1/canary/verdict", params=params, headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200 and ok.json()["verdict"] in ("inconclusive", "pass", "marginal", "fail")
    finally:
        handle.stop()
