"""The SLO engine on hand-computed scenarios (issue 11): real DuckDB files, a real webhook
receiver on loopback, no mocks of genobs parts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from genobs.config import NotifiersConfig
from genobs.slo import rollups
from genobs.slo.burn import conditions, evaluate
from genobs.slo.engine import all_series, check
from genobs.slo.outbox import drain, outbox_rows
from genobs.slo.silences import add_silence, expire_silence, parse_matcher
from genobs.slo.spec import parse_spec
from genobs.store import Store
from slo_fixtures import T0, Receiver, sample, steady, write_samples

AVAILABILITY = """
slos:
  - name: chat-availability
    service: chat-api
    objective: 99.9
    window: 30d
    sli: {kind: availability}
    alerting: {min_events: %d}
"""


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "slo.duckdb")
    yield s
    s.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def webhook(receiver: Receiver, **extra) -> NotifiersConfig:
    return NotifiersConfig(receivers=[{"name": "hook", "type": "webhook", "url": receiver.url, **extra}],
                           backoff_initial_s=1.0)


def firing(result, severity: str) -> bool:
    return severity in result.alerting.get("chat-availability", [])


# ----------------------------------------------------------------------------- independent oracle


def workbook_decisions(events: list[tuple[datetime, bool]], at: datetime, objective: float, period_days: int,
                       min_events: int) -> dict[str, bool]:
    """Page/ticket straight from the SRE Workbook (ch. 5, table 5-8): burn rate thresholds
    14.4 (1h & 5m), 6 (6h & 30m), 3 (1d & 2h), 1 (3d & 6h) for 30 days, scaled by
    period / 30d; windows over minute buckets ending with at's minute."""
    end = at.replace(second=0, microsecond=0)
    budget = 1 - objective / 100
    per_minute: dict[datetime, list[int]] = {}
    for ts, bad in events:
        bucket = per_minute.setdefault(ts.replace(second=0, microsecond=0), [0, 0])
        bucket[0] += 1
        bucket[1] += bad

    def burn(minutes: int) -> tuple[float, int]:
        n = bad = 0
        for k in range(minutes):
            got = per_minute.get(end - timedelta(minutes=k))
            if got:
                n, bad = n + got[0], bad + got[1]
        return ((bad / n) / budget if n else 0.0), n

    scale = period_days / 30
    rules = {"page": [(14.4, 60, 5), (6, 360, 30)], "ticket": [(3, 1440, 120), (1, 4320, 360)]}
    out = {}
    for severity, pairs in rules.items():
        hit = False
        for factor, long_m, short_m in pairs:
            (bl, nl), (bs, ns) = burn(long_m), burn(short_m)
            hit |= bl > factor * scale and bs > factor * scale and nl >= min_events and ns >= 1
        out[severity] = hit
    return out


# ----------------------------------------------------------------------------- scenarios


def test_full_outage_pages_within_one_minute_of_data_time(store, receiver):
    spec = parse_spec(AVAILABILITY % 10)
    config = webhook(receiver)
    write_samples(store, steady(T0, T0 + timedelta(hours=3), 10))
    outage = T0 + timedelta(hours=3)
    failing = steady(outage, outage + timedelta(minutes=4), 10, error_every=1)
    paged_at = None
    at = outage
    while at <= outage + timedelta(minutes=3):
        # Data arrives as it happens: what happened in the last 30 s is ingested, then the cycle runs.
        write_samples(store, [s for s in failing if at - timedelta(seconds=30) < s["timestamp"] <= at])
        result = check(store, spec, at=at, notifiers=config)
        if firing(result, "page") and paged_at is None:
            paged_at = at
        at += timedelta(seconds=30)
    assert paged_at is not None and paged_at - outage <= timedelta(minutes=1)
    drain(store, config)
    pages = [(r["json"], a) for r in receiver.delivered for a in r["json"]["alerts"] if a["labels"]["severity"] == "page"]
    assert len(pages) == 1  # fired once, not once per cycle
    body, alert = pages[0]
    assert body["version"] == "4" and alert["status"] == "firing" and body["groupLabels"] == {"service": "chat-api"}
    assert alert["labels"]["slo"] == "chat-availability" and alert["endsAt"] == "0001-01-01T00:00:00Z"


def test_steady_double_burn_raises_a_ticket_and_no_page(store):
    spec = parse_spec(AVAILABILITY % 10)
    rows = steady(T0, T0 + timedelta(hours=12), 10, error_every=500)   # 0.2 % errors: burn rate 2
    write_samples(store, rows)
    at = T0 + timedelta(hours=12) - timedelta(seconds=1)
    result = check(store, spec, at=at)
    status = result.statuses[0]
    assert status.windows[timedelta(hours=6)].burn_rate == pytest.approx(2.0, rel=0.05)
    assert result.alerting == {"chat-availability": ["ticket"]}
    events = [(r["timestamp"], r["status"] == "error") for r in rows]
    assert workbook_decisions(events, at, 99.9, 30, 10) == {"page": False, "ticket": True}


def test_low_traffic_single_failure_does_not_page_with_min_events(store):
    # 10 requests an hour, one of them failing: a 10 % error ratio over the hour.
    rows = [sample(T0 + timedelta(minutes=6 * k), status="error" if k == 9 else "ok") for k in range(10)]
    write_samples(store, rows)
    at = T0 + timedelta(minutes=54, seconds=30)
    quiet = check(store, parse_spec(AVAILABILITY % 20), at=at, manage_alerts=False)
    assert "page" not in quiet.alerting.get("chat-availability", [])
    # Without the minimum the same data pages: the minimum is what holds it back.
    noisy = check(store, parse_spec(AVAILABILITY % 0), at=at, manage_alerts=False)
    assert "page" in noisy.alerting["chat-availability"]


def test_decisions_match_the_workbook_table_on_random_traffic(store):
    rng = random.Random(11)
    rows, events = [], []
    at = T0
    # Four days with quiet stretches, slow burns and bursts.
    while at < T0 + timedelta(days=4):
        hour = int((at - T0).total_seconds() // 3600)
        error_rate = [0.0, 0.0005, 0.003, 0.01, 0.3][(hour * 7) % 5] if hour % 9 else 0.0
        n = rng.randint(0, 6)
        for k in range(n):
            ts = at + timedelta(seconds=rng.randint(0, 59))
            bad = rng.random() < error_rate
            rows.append(sample(ts, status="error" if bad else "ok"))
            events.append((ts, bad))
        at += timedelta(minutes=1)
    write_samples(store, rows)
    spec = parse_spec(AVAILABILITY % 10)
    checked = 0
    for k in range(0, 4 * 24 * 60, 131):
        moment = T0 + timedelta(minutes=k, seconds=30)
        result = check(store, spec, at=moment, manage_alerts=False)
        conds = conditions(result.statuses[0])
        ours = {sev: c.active for sev, c in conds.items()}
        assert ours == workbook_decisions(events, moment, 99.9, 30, 10), moment
        checked += ours["page"] + ours["ticket"]
    assert checked > 5  # the table is not all "no"


def test_late_batch_of_errors_from_an_hour_ago_is_counted(store):
    spec = parse_spec(AVAILABILITY % 10)
    write_samples(store, steady(T0, T0 + timedelta(hours=2), 10))
    at = T0 + timedelta(hours=2)
    before = check(store, spec, at=at, manage_alerts=False).statuses[0]
    assert before.windows[timedelta(hours=1)].error_ratio == 0
    # 60 errors stamped an hour ago arrive now (an agent's buffer flushed late).
    late = [sample(at - timedelta(minutes=55, seconds=k), status="error") for k in range(60)]
    write_samples(store, late)
    after = check(store, spec, at=at, manage_alerts=False).statuses[0]
    one_hour = after.windows[timedelta(hours=1)]
    assert one_hour.total == 590 + 60 and one_hour.total - one_hour.good == 60  # minutes 1:01..2:00
    # The burst is over (nothing bad in the last 5 minutes): no page, but the budget it
    # spent raises the slow-burn ticket.
    conds = conditions(after)
    assert not conds["page"].active and conds["ticket"].active


QUALITY = """
slos:
  - name: chat-grounded
    service: chat-api
    objective: 98
    window: 7d
    sli: {kind: quality, metric: hallucination_score, good_below: 0.5}
    alerting: {min_events: 10}
"""


def _scores(rows, value_of):
    return [{"request_id": r["request_id"], "metric": "hallucination_score", "value": value_of(i, r),
             "evaluator": "hallucination", "reference_model": "builtin"} for i, r in enumerate(rows)]


def test_quality_slo_pages_on_a_hallucination_spike_and_late_scores_move_it(store):
    spec = parse_spec(QUALITY)
    normal = steady(T0, T0 + timedelta(hours=2), 5)
    spike = steady(T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=10), 5)
    write_samples(store, normal + spike)
    store.write_scores(_scores(normal, lambda i, r: 0.1))
    at = T0 + timedelta(hours=2, minutes=9, seconds=30)
    calm = check(store, spec, at=at, manage_alerts=False)
    assert calm.alerting == {}
    # The spike's samples are scored minutes later: 40 % hallucinated.
    store.write_scores(_scores(spike, lambda i, r: 0.8 if i % 5 < 2 else 0.2))
    hot = check(store, spec, at=at, manage_alerts=False)
    assert "page" in hot.alerting["chat-grounded"]
    five = hot.statuses[0].windows[timedelta(minutes=5)]
    assert five.error_ratio == pytest.approx(0.4)
    # One more late score for an old sample changes the window's counts.
    total_before = hot.statuses[0].window.total
    store.write_scores(_scores([normal[1]], lambda i, r: 0.95))  # was 0.1 (good): now bad
    moved = check(store, spec, at=at, manage_alerts=False).statuses[0]
    assert moved.window.total == total_before
    assert moved.window.total - moved.window.good == hot.statuses[0].window.total - hot.statuses[0].window.good + 1


TWO_JUDGES = """
slos:
  - {name: worst, service: chat-api, objective: 90, window: 7d, sli: {kind: quality, metric: hallucination_score, good_below: 0.5}}
  - {name: judge-b, service: chat-api, objective: 90, window: 7d, sli: {kind: quality, metric: hallucination_score, good_below: 0.5, reference_model: b}}
"""


def test_quality_sli_counts_the_worst_score_once_several_reference_models_scored_a_sample(store):
    spec = parse_spec(TWO_JUDGES)
    rows = steady(T0, T0 + timedelta(minutes=10), 4)
    write_samples(store, rows)
    judge_a = [dict(s, reference_model="a") for s in _scores(rows, lambda i, r: 0.1)]
    store.write_scores(judge_a)
    at = T0 + timedelta(minutes=9, seconds=30)
    first = {s.slo.name: s.window for s in check(store, spec, at=at, manage_alerts=False).statuses}
    assert (first["worst"].good, first["worst"].total) == (40, 40)
    assert first["judge-b"].total == 0
    # A second reference model scores later and disagrees on every 4th sample: the worst
    # of the two counts, each sample once; the SLO pinned to model b sees b's scores only.
    judge_b = [dict(s, reference_model="b") for s in _scores(rows, lambda i, r: 0.9 if i % 4 == 0 else 0.2)]
    store.write_scores(judge_b)
    later = {s.slo.name: s.window for s in check(store, spec, at=at, manage_alerts=False).statuses}
    assert (later["worst"].good, later["worst"].total) == (30, 40)
    assert (later["judge-b"].good, later["judge-b"].total) == (30, 40)
    incremental = _snapshot(store, spec)
    rollups.rebuild(store, all_series(spec))
    assert _snapshot(store, spec) == incremental


def test_rollup_minutes_are_utc_minutes_also_before_1970(store):
    """The rollups bucket samples by an integer minute key (cheaper than date_trunc on a
    TIMESTAMPTZ); it must be the minute date_trunc gives, rounding down before the epoch too."""
    instants = [datetime(1969, 12, 31, 23, 59, 30, tzinfo=timezone.utc), datetime(1969, 12, 31, 23, 59, tzinfo=timezone.utc),
                datetime(1960, 5, 1, 12, 0, 0, 1, tzinfo=timezone.utc), datetime(1970, 1, 1, tzinfo=timezone.utc),
                datetime(1970, 1, 1, 0, 0, 59, 999999, tzinfo=timezone.utc), T0 + timedelta(seconds=61)]
    for at in instants:
        key = rollups.minute_of_key_sql(rollups.minute_key_sql("?::TIMESTAMPTZ"))
        mine, theirs = store.fetchone(f"SELECT {key}, date_trunc('minute', ?::TIMESTAMPTZ)",
                                      [at, at, at])
        assert mine == theirs == at.replace(second=0, microsecond=0), at


def test_silenced_alert_is_not_sent_then_sent_when_the_silence_ends(store, receiver):
    spec = parse_spec(AVAILABILITY % 10)
    config = webhook(receiver)
    write_samples(store, steady(T0, T0 + timedelta(hours=1), 10))
    outage = T0 + timedelta(hours=1)
    write_samples(store, steady(outage, outage + timedelta(minutes=40), 10, error_every=1))
    silence = add_silence(store, [parse_matcher("slo=chat-availability")], T0, outage + timedelta(minutes=10),
                          comment="maintenance")
    for minute in range(0, 10, 2):
        check(store, spec, at=outage + timedelta(minutes=minute, seconds=30), notifiers=config)
    drain(store, config)
    assert receiver.received == []
    # The silence ends while the outage goes on: the page goes out.
    check(store, spec, at=outage + timedelta(minutes=10, seconds=30), notifiers=config)
    drain(store, config)
    assert [r["json"]["alerts"][0]["labels"]["severity"] for r in receiver.delivered] == ["page"]
    # Expiring it (already over) is recorded; a second expire finds nothing to do.
    assert expire_silence(store, silence) is True
    assert expire_silence(store, silence) is False


def test_resolve_carries_the_same_fingerprint_and_dedup_key(store, receiver):
    spec = parse_spec(AVAILABILITY % 10)
    config = NotifiersConfig(receivers=[
        {"name": "hook", "type": "webhook", "url": receiver.url},
        {"name": "pd", "type": "pagerduty", "url": receiver.url + "/pd", "routing_key_env": "GENOBS_TEST_PD_KEY",
         "match": {"severity": "page"}},
    ])
    # Replayed data (ingested a while ago), so cycles only read their rollups.
    ago = datetime.now(timezone.utc) - timedelta(hours=1)
    write_samples(store, steady(T0, T0 + timedelta(hours=1), 10, ingested_at=ago))
    outage = T0 + timedelta(hours=1)
    write_samples(store, steady(outage, outage + timedelta(minutes=5), 10, error_every=1, ingested_at=ago))
    write_samples(store, steady(outage + timedelta(minutes=5), outage + timedelta(hours=8), 10, ingested_at=ago))
    import os
    os.environ["GENOBS_TEST_PD_KEY"] = "pd-secret-key"
    try:
        for minute in range(0, 8 * 60, 5):
            check(store, spec, at=outage + timedelta(minutes=minute, seconds=30), notifiers=config)
        drain(store, config)
    finally:
        del os.environ["GENOBS_TEST_PD_KEY"]
    hooks = [r for r in receiver.delivered if r["path"] == "/"]
    pages = [(a["status"], a["fingerprint"], r["headers"]["X-Genobs-Dedup-Key"])
             for r in hooks for a in r["json"]["alerts"] if a["labels"]["severity"] == "page"]
    assert [p[0] for p in pages] == ["firing", "resolved"]
    assert pages[0][1:] == pages[1][1:]
    pd = [r["json"] for r in receiver.delivered if r["path"] == "/pd"]
    assert [e["event_action"] for e in pd] == ["trigger", "resolve"]
    assert pd[0]["dedup_key"] == pd[1]["dedup_key"] == pages[0][1]
    assert pd[0]["routing_key"] == "pd-secret-key" and pd[0]["payload"]["severity"] == "critical"
    # The routing key is read at delivery time: never stored in the outbox.
    assert all("pd-secret-key" not in str(row["payload"]) for row in outbox_rows(store))


def test_receiver_503_three_times_then_200_gets_it_once_even_across_a_restart(tmp_path, receiver):
    path = tmp_path / "outbox.duckdb"
    store = Store.open(path)
    spec = parse_spec(AVAILABILITY % 10)
    config = webhook(receiver)
    write_samples(store, steady(T0, T0 + timedelta(minutes=30), 10, error_every=1))
    check(store, spec, at=T0 + timedelta(minutes=29), notifiers=config)
    receiver.responses = [503, 503, 503]
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    drain(store, config, now=now)
    drain(store, config, now=now + timedelta(seconds=5))
    store.close()  # the process restarts in the middle of the retries
    store = Store.open(path)
    try:
        later = now + timedelta(minutes=5)
        drain(store, config, now=later)           # third 503
        drain(store, config, now=later + timedelta(minutes=5))   # 200
        drain(store, config, now=later + timedelta(minutes=30))  # nothing left
        assert [r["answered"] for r in receiver.received] == [503, 503, 503, 200]
        assert len(receiver.delivered) == 1
        (row,) = outbox_rows(store)
        assert row["status"] == "delivered" and row["attempts"] == 4
    finally:
        store.close()


def test_client_errors_are_not_retried(store, receiver):
    spec = parse_spec(AVAILABILITY % 10)
    config = webhook(receiver)
    write_samples(store, steady(T0, T0 + timedelta(minutes=30), 10, error_every=1))
    check(store, spec, at=T0 + timedelta(minutes=29), notifiers=config)
    receiver.responses = [400]
    drain(store, config)
    drain(store, config, now=datetime.now(timezone.utc) + timedelta(hours=1))
    assert len(receiver.received) == 1
    (row,) = outbox_rows(store)
    assert row["status"] == "failed" and row["last_status_code"] == 400 and "HTTP 400" in row["last_error"]


def test_webhook_hmac_signature(store, receiver, monkeypatch):
    import hashlib
    import hmac

    monkeypatch.setenv("GENOBS_TEST_HMAC", "s3cret")
    spec = parse_spec(AVAILABILITY % 10)
    config = webhook(receiver, hmac_secret_env="GENOBS_TEST_HMAC")
    write_samples(store, steady(T0, T0 + timedelta(minutes=30), 10, error_every=1))
    check(store, spec, at=T0 + timedelta(minutes=29), notifiers=config)
    drain(store, config)
    (got,) = receiver.delivered
    expected = "sha256=" + hmac.new(b"s3cret", got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["X-Genobs-Signature"] == expected


def test_page_inhibits_ticket_and_repeat_interval(store, receiver):
    spec = parse_spec((AVAILABILITY % 10).replace("min_events: 10", "min_events: 10, repeat_interval: 1h"))
    config = webhook(receiver, group_by=["slo", "severity"])
    write_samples(store, steady(T0, T0 + timedelta(hours=3), 10, error_every=1))
    for minute in range(0, 150, 10):
        check(store, spec, at=T0 + timedelta(minutes=minute, seconds=30), notifiers=config)
    drain(store, config)
    sent = [(r["json"]["alerts"][0]["labels"]["severity"], r["json"]["status"]) for r in receiver.delivered]
    # Both conditions hold the whole time; the ticket is inhibited by the page; the page
    # repeats every hour: at 0:00, 1:00 and 2:00.
    assert sent == [("page", "firing")] * 3


# ----------------------------------------------------------------------------- rollups


def _snapshot(store, spec):
    return {s.key: rollups.rollup_rows(store, s.key) for s in all_series(spec)}


ALL_KINDS = """
slos:
  - {name: a, service: chat-api, objective: 99.9, window: 30d, sli: {kind: availability}}
  - {name: l, service: chat-api, objective: 99, window: 28d, sli: {kind: latency, threshold_ms: 700}}
  - {name: t, service: chat-api, objective: 99, window: 7d, sli: {kind: ttft, threshold_ms: 150}, filter: {variant: [primary, canary]}}
  - {name: q, service: chat-api, objective: 98, window: 7d, sli: {kind: quality, metric: hallucination_score, good_below: 0.5}}
  - {name: s, service: chat-api, objective: 99, window: 7d, sli: {kind: safety}}
  - {name: r, service: chat-api, objective: 95, window: 7d, sli: {kind: ratio, good: "coalesce(feedback, 0) >= 0", total: "status = 'ok'"}}
spend:
  - {name: chat-spend, service: chat-api, daily_budget_usd: 10}
"""


def test_incremental_rollups_equal_a_full_recompute(store):
    rng = random.Random(5)
    spec = parse_spec(ALL_KINDS)
    series = all_series(spec)
    live: dict[str, dict] = {}

    def batch(n, start, spread_min):
        rows = []
        for _ in range(n):
            ts = start + timedelta(seconds=rng.randint(0, spread_min * 60))
            row = sample(ts, status=rng.choice(["ok"] * 8 + ["error", "timeout", "filtered"]),
                         latency_ms=rng.uniform(100, 1500), ttft_ms=rng.uniform(50, 300),
                         safety_flagged=rng.random() < 0.1, feedback=rng.choice([None, -1, 1]),
                         variant=rng.choice(["primary", "canary", "baseline"]), cost_usd=rng.uniform(0, 0.1))
            rows.append(row)
        return rows

    for step in range(8):
        now_data = T0 + timedelta(hours=step)
        rows = batch(300, now_data, 60)
        if step >= 2:
            rows += batch(40, T0, 60 * step)      # late samples with old timestamps
        if live and step >= 1:
            # Re-ingest some request_ids with another status, latency and minute.
            for rid in rng.sample(sorted(live), 30):
                changed = dict(live[rid])
                changed.update(status=rng.choice(["ok", "error"]), latency_ms=rng.uniform(100, 3000),
                               timestamp=changed["timestamp"] + timedelta(minutes=rng.randint(-90, 90)))
                rows.append(changed)
        dedup = {r["request_id"]: r for r in rows}
        write_samples(store, dedup.values())
        live.update(dedup)
        if step >= 3:
            gone = rng.sample(sorted(live), 20)
            store.delete_samples(gone)
            for rid in gone:
                live.pop(rid)
        scored = rng.sample(sorted(live), min(len(live), 150))
        store.write_scores(_scores([live[r] for r in scored], lambda i, r: rng.random()))
        if step == 6:
            store.delete_samples(before=T0 + timedelta(minutes=30))   # retention
            live = {k: v for k, v in live.items() if v["timestamp"] >= T0 + timedelta(minutes=30)}
        rollups.refresh(store, series)
        incremental = _snapshot(store, spec)
        rollups.rebuild(store, series)
        assert _snapshot(store, spec) == incremental, f"step {step}"
    # And the rollups agree with the samples themselves.
    (n,) = store.fetchone("SELECT count(*) FROM samples WHERE service = 'chat-api'")
    key = next(s.key for s in series if s.key.startswith("availability"))
    assert sum(r[2] for r in rollups.rollup_rows(store, key)) == n == len(live)


SEVERAL_SERVICES = """
slos:
  - {name: chat, service: chat-api, objective: 99, window: 7d, sli: {kind: availability}}
  - {name: search, service: search-api, objective: 99, window: 7d, sli: {kind: availability}}
spend:
  - {name: everything, daily_budget_usd: 100}
"""


@pytest.mark.parametrize("with_spend", [True, False])
def test_a_pass_over_several_services_counts_each_series_on_its_own_service(store, with_spend):
    # Without the spend rule every series names its service, and the pass reads only the
    # rows of those services; with it, the pass reads all rows.
    spec = parse_spec(SEVERAL_SERVICES if with_spend else SEVERAL_SERVICES.split("spend:")[0])
    hour = (T0, T0 + timedelta(hours=1))
    write_samples(store, steady(*hour, 10, error_every=10) + steady(*hour, 5, error_every=5, service="search-api")
                  + steady(*hour, 3, service="batch-api"))
    rollups.refresh(store, all_series(spec))
    # More samples of each service, some late: the incremental pass must agree as well.
    write_samples(store, steady(T0 + timedelta(minutes=30), T0 + timedelta(minutes=31), 2, error_every=2)
                  + steady(T0 + timedelta(minutes=30), T0 + timedelta(minutes=31), 2, service="batch-api"))
    rollups.refresh(store, all_series(spec))
    sums = {s.key: (sum(r[1] for r in rows), sum(r[2] for r in rows))
            for s in all_series(spec) for rows in [rollups.rollup_rows(store, s.key)]}
    chat, search, *spend = (sums[s.key] for s in all_series(spec))
    assert chat == (600 - 60 + 1, 602)
    assert search == (300 - 60, 300)
    if with_spend:
        assert spend[0][1] == 602 + 300 + 182      # a spend rule without a service reads them all
    incremental = _snapshot(store, spec)
    rollups.rebuild(store, all_series(spec))
    assert _snapshot(store, spec) == incremental


def test_refresh_only_recomputes_dirty_minutes(store):
    spec = parse_spec(AVAILABILITY % 10)
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    write_samples(store, steady(T0, T0 + timedelta(hours=10), 10, ingested_at=an_hour_ago))
    first = rollups.refresh(store, all_series(spec))
    assert first.built and first.dirty_minutes == 0
    assert rollups.refresh(store, all_series(spec)).dirty_minutes == 0
    # One late sample: one minute is recomputed, not the 600 others.
    write_samples(store, [sample(T0 + timedelta(hours=3, seconds=5), status="error")])
    report = rollups.refresh(store, all_series(spec))
    assert report.dirty_minutes == 1 and report.built == []
    status = evaluate(store, spec.slos, T0 + timedelta(hours=10))[0]
    assert status.window.total - status.window.good == 1 and status.window.total == 6001


# ----------------------------------------------------------------------------- spend, drift, slack

SPEND = """
spend:
  - {name: chat-spend, service: chat-api, daily_budget_usd: 5, day_over_day_pct: 20, min_spend_usd: 1}
"""


def test_spend_over_budget_and_day_over_day_raise_tickets(store, receiver):
    spec = parse_spec(SPEND)
    config = webhook(receiver, group_by=["alertname"])
    # Day 1: $0.01 a request, 240 requests an hour -> $57.6 a day ($2.40 an hour).
    write_samples(store, steady(T0, T0 + timedelta(days=1), 4, cost_usd=0.01))
    at = T0 + timedelta(hours=1, minutes=59)
    early = check(store, spec, at=at, notifiers=config)
    assert early.spend[0].today_usd == pytest.approx(4.8)   # minutes 0:00..1:59 of day 1
    assert early.applied.transitions == []                  # under $5, no day before to compare with
    later = check(store, spec, at=T0 + timedelta(hours=3), notifiers=config)
    assert [t[1:] for t in later.applied.transitions] == [("chat-spend/ticket", "pending"), ("chat-spend/ticket", "firing")]
    # Day 2 spends 50 % more per request: the day-over-day ticket fires once 24h of it are in.
    write_samples(store, steady(T0 + timedelta(days=1), T0 + timedelta(days=2), 4, cost_usd=0.015))
    day2 = check(store, spec, at=T0 + timedelta(days=2) - timedelta(seconds=1), notifiers=config)
    assert day2.spend[0].day_over_day == pytest.approx(0.5, abs=0.01)
    drain(store, config)
    names = {a["labels"]["alertname"]: a["labels"]["severity"] for r in receiver.delivered for a in r["json"]["alerts"]}
    assert names == {"GenobsSpendOverDailyBudget": "ticket", "GenobsSpendDayOverDayIncrease": "ticket"}


def test_drift_sli_counts_drift_runs(store):
    spec = parse_spec("""
slos:
  - {name: chat-drift, service: chat-api, objective: 90, window: 7d, sli: {kind: drift, good_below: 0.5}}
""")
    for hour, score in enumerate([0.1, 0.2, 0.7, 0.9]):
        store.execute(
            "INSERT INTO drift_results (run_id, computed_at, service, feature, drift_score) VALUES (?, ?, ?, 'dataset', ?)",
            [f"run{hour}", T0 + timedelta(hours=hour), "chat-api", score])
    status = check(store, spec, at=T0 + timedelta(hours=4), manage_alerts=False).statuses[0]
    assert (status.window.good, status.window.total) == (2, 4)


def test_slack_receiver_reads_its_url_from_the_environment(store, receiver, monkeypatch):
    monkeypatch.setenv("GENOBS_TEST_SLACK_URL", receiver.url + "/services/T000/B000/secret")
    spec = parse_spec(AVAILABILITY % 10)
    config = NotifiersConfig(receivers=[{"name": "slack", "type": "slack", "url_env": "GENOBS_TEST_SLACK_URL",
                                         "match": {"severity": "page"}}])
    write_samples(store, steady(T0, T0 + timedelta(minutes=30), 10, error_every=1))
    check(store, spec, at=T0 + timedelta(minutes=29), notifiers=config, external_url="http://dash:8501")
    drain(store, config)
    (got,) = receiver.delivered
    assert got["path"] == "/services/T000/B000/secret"
    text = got["json"]["text"]
    assert "[FIRING] page" in text and "<http://dash:8501/slos?slo=chat-availability|open in genobs>" in text
    assert all("secret" not in str(row) for row in outbox_rows(store))


def test_read_models_for_the_dashboard(store):
    from genobs.slo.read_models import budget_burndown, error_ratio_timeline

    spec = parse_spec(AVAILABILITY % 10)
    write_samples(store, steady(T0, T0 + timedelta(hours=3), 10, error_every=100))   # 1 % errors: 10x burn
    check(store, spec, at=T0 + timedelta(hours=3), manage_alerts=False)
    slo = spec.slos[0]
    timeline = error_ratio_timeline(store, slo, T0, T0 + timedelta(hours=3))
    assert [(r[1], r[2]) for r in timeline] == [(594, 600)] * 3
    assert timeline[0][4] == pytest.approx(10.0)
    burndown = budget_burndown(store, slo, T0 + timedelta(hours=2, minutes=59))
    # 1 % errors against a 0.1 % budget of all 1,800 events: -9 (spent ten times over) at the end.
    assert burndown[-1][1] == pytest.approx(1 - 18 / (0.001 * 1800))


def test_slo_migration_upgrades_an_older_database_and_survives_kill_9(tmp_path):
    import os
    import subprocess
    import sys

    import duckdb

    from genobs.store import MIGRATIONS

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)")
    # Every other part's migrations (e.g. the canary's 20) but not the SLO engine's 10:
    # a database made by a genobs without the SLO engine.
    for version, description, statements in MIGRATIONS:
        if 10 <= version < 20:
            continue
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [version, description])
    con.execute("INSERT INTO notifications (created_at, receiver, payload) VALUES (now(), 'hook', '{}')")
    con.execute("INSERT INTO silences (matchers, starts_at, ends_at, comment) VALUES ('[]', now(), now(), 'old')")
    con.close()
    # Migrate in a process that dies (kill -9 style) before any checkpoint: the WAL must replay.
    code = ("import os; from genobs.store import Store; s = Store.open(%r); "
            "s.execute(\"INSERT INTO notifications (created_at, receiver, payload) VALUES (now(), 'b', '{}')\"); "
            "os._exit(0)" % str(path))
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
    store = Store.open(path)
    try:
        assert store.schema_version() == MIGRATIONS[-1][0]
        assert store.fetchall("SELECT id, receiver, status, failures FROM notifications ORDER BY id") == [
            (1, "hook", "pending", 0), (2, "b", "pending", 0)]
        assert store.fetchall("SELECT comment, expired_at FROM silences") == [("old", None)]
    finally:
        store.close()
