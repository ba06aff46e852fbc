"""The `alertmanager` receiver against a real Alertmanager (Debian's prometheus-alertmanager)
on loopback: genobs posts to /api/v2/alerts, Alertmanager routes to a loopback webhook."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from genobs.config import NotifiersConfig
from genobs.slo.engine import check
from genobs.slo.outbox import drain, outbox_rows
from genobs.slo.spec import parse_spec
from genobs.store import Store
from slo_fixtures import Receiver, steady, write_samples

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def alertmanager(tmp_path):
    hook = Receiver()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: genobs-test
  group_by: [slo, severity]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: genobs-test
    webhook_configs:
      - url: {hook.url}/from-alertmanager
        send_resolved: true
""")
    port = _free_port()
    proc = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"alertmanager exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield url, hook
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        hook.close()


def test_alerts_reach_alertmanager_and_are_routed_to_its_webhook(tmp_path, alertmanager):
    am_url, hook = alertmanager
    store = Store.open(tmp_path / "am.duckdb")
    spec = parse_spec("""
slos:
  - name: chat-availability
    service: chat-api
    objective: 99.9
    window: 30d
    sli: {kind: availability}
    labels: {team: llm-platform}
""")
    notifiers = NotifiersConfig(receivers=[{"name": "am", "type": "alertmanager", "url": am_url,
                                            "match": {"severity": "page"}}])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    write_samples(store, steady(now - timedelta(minutes=30), now, 10, error_every=1))
    check(store, spec, at=now, notifiers=notifiers, external_url="http://genobs.example:8501")
    report = drain(store, notifiers)
    assert report.delivered == 1, outbox_rows(store)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not hook.received:
        time.sleep(0.2)
    assert hook.received, "Alertmanager did not call its webhook"
    body = hook.received[0]["json"]
    (alert,) = body["alerts"]
    assert alert["labels"]["slo"] == "chat-availability" and alert["labels"]["severity"] == "page"
    assert alert["labels"]["team"] == "llm-platform" and alert["status"] == "firing"
    assert alert["generatorURL"] == "http://genobs.example:8501/slos?slo=chat-availability"
    # Alertmanager holds it as active.
    active = httpx.get(f"{am_url}/api/v2/alerts").json()
    assert [a["labels"]["slo"] for a in active] == ["chat-availability"]
    store.close()
