"""The demo's week through the SLO engine: the planted error burst pages, and nothing else
pages chat availability (sample_data/README.md, incident 1)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from genobs.collectors.files import ingest_file
from genobs.sample_data import CHAT_SAMPLES_FILE, IMAGE_SAMPLES_FILE, INCIDENTS, data_dir
from genobs.slo.replay import replay_week
from genobs.slo.spec import load_spec
from genobs.store import Store
from slo_fixtures import Receiver

SPEC = data_dir().parent / "slo.yaml"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    store = Store.open(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    for name in (CHAT_SAMPLES_FILE, IMAGE_SAMPLES_FILE):
        ingest_file(store, str(data_dir() / name))
    receiver = Receiver()
    try:
        # Day 3, from midnight to the evening: the burst at 14:00-15:30 and quiet hours
        # around it (the whole week takes ~2,000 cycles at this step).
        day = INCIDENTS["error_burst"].start.replace(hour=0)
        report = replay_week(store, load_spec(SPEC), receiver.url, start=day, end=day + timedelta(hours=20),
                             step=timedelta(minutes=5))
    finally:
        receiver.close()
    yield store, report, receiver
    store.close()


def _when(item):
    return datetime.fromisoformat(item["at"])


def test_error_burst_pages_chat_availability_and_nothing_else_does(replayed):
    _, report, receiver = replayed
    burst = INCIDENTS["error_burst"]
    pages = [t for t in report.fired() if t["alert"] == "chat-availability/page"]
    assert pages, report.transitions
    assert all(burst.start <= _when(t) <= burst.end for t in pages)
    assert _when(pages[0]) - burst.start <= timedelta(minutes=15)
    latency_pages = [t for t in report.fired() if t["alert"] == "chat-latency/page"]
    assert latency_pages and all(burst.start <= _when(t) <= burst.end + timedelta(minutes=30) for t in latency_pages)
    # The webhook saw the page, firing then resolved, as Alertmanager v4 JSON.
    bodies = [r["json"] for r in receiver.delivered]
    page_states = [a["status"] for b in bodies for a in b["alerts"]
                   if a["labels"]["slo"] == "chat-availability" and a["labels"]["severity"] == "page"]
    assert page_states[:2] == ["firing", "resolved"]
    assert report.failed == 0


def test_the_burst_spent_the_availability_budget(replayed):
    store, report, _ = replayed
    final = {s["slo"]: s for s in report.final["slos"]}
    # README: the burst's 94 failures (plus a few before it) against a 0.1 % budget of
    # the ~13,000 requests of days 1-3.
    assert final["chat-availability"]["budget_remaining"] < 0
    (n,) = store.fetchone("SELECT count(*) FROM samples WHERE service = 'chat-api' AND timestamp < ?",
                          [datetime.fromisoformat(report.final["at"]).replace(second=0) + timedelta(minutes=1)])
    assert final["chat-availability"]["total"] == n
