"""The persistent outbox (table ``notifications``): every notification goes through it.

``enqueue`` stores messages in the same database as the alert state, so a notification
decided is a notification kept, across restarts. ``drain`` delivers what is due:

- success (2xx): ``delivered``;
- timeouts, connection errors, 408, 429 and 5xx: retried with exponential backoff and
  jitter (``backoff_initial_s`` doubling up to ``backoff_max_s``, each delay scaled by a
  random factor in [0.5, 1]; a 429's Retry-After is honoured), up to ``max_attempts``;
- other 4xx: ``failed`` at once, with the response recorded in ``last_error``.

Delivery is at least once: a crash between a receiver's 2xx and the ``delivered`` update
sends the message again, with the same dedup key (the alert fingerprint for PagerDuty and
Alertmanager, the group key for webhooks) and the same ``Idempotency-Key`` header. Messages
with the same receiver and dedup key are delivered in order (a resolve never overtakes
its trigger).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

import httpx

from genobs.config import NotifiersConfig, ReceiverConfig
from genobs.slo.notifiers import Delivery, Message, send
from genobs.slo.timeutil import as_utc, utcnow
from genobs.store import Store

log = logging.getLogger("genobs.slo.outbox")


@dataclass
class DrainReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retried": self.retried, "failed": self.failed}


def enqueue(store: Store, messages: Sequence[Message], now: datetime | None = None) -> list[int]:
    if not messages:
        return []
    now = as_utc(now or utcnow())
    ids = []
    with store.transaction() as cur:
        for message in messages:
            (nid,) = cur.execute(
                "INSERT INTO notifications (created_at, receiver, dedup_key, payload, attempts, next_attempt_at, status, failures) "
                "VALUES (?, ?, ?, ?, 0, ?, 'pending', 0) RETURNING id",
                [now, message.receiver, message.dedup_key, json.dumps(message.payload, default=str), now],
            ).fetchone()
            ids.append(int(nid))
    return ids


def backoff(attempts: int, config: NotifiersConfig, rng: Callable[[], float] = random.random) -> timedelta:
    """Delay before the next try after ``attempts`` tries: exponential, capped, jittered."""
    base = min(config.backoff_max_s, config.backoff_initial_s * (2 ** max(0, attempts - 1)))
    return timedelta(seconds=base * (0.5 + 0.5 * rng()))


def drain(store: Store, config: NotifiersConfig, *, now: datetime | None = None, client: httpx.Client | None = None,
          limit: int = 200, rng: Callable[[], float] = random.random) -> DrainReport:
    """Deliver the notifications that are due (``next_attempt_at <= now``)."""
    now = as_utc(now or utcnow())
    receivers = {r.name: r for r in config.receivers}
    report = DrainReport()
    own_client = client is None
    client = client or httpx.Client()
    try:
        # Rounds: a message waits for the earlier ones with its receiver and dedup key, so
        # a delivered trigger lets its resolve go in the next round of the same drain.
        while limit > 0:
            rows = store.fetchall(
                "SELECT id, receiver, dedup_key, payload, attempts FROM notifications n "
                "WHERE status = 'pending' AND next_attempt_at <= ? AND NOT EXISTS ("
                "  SELECT 1 FROM notifications o WHERE o.status = 'pending' AND o.receiver = n.receiver "
                "  AND o.dedup_key IS NOT DISTINCT FROM n.dedup_key AND o.id < n.id) "
                "ORDER BY id LIMIT ?",
                [now, limit],
            )
            delivered_before = report.delivered
            for nid, name, dedup_key, payload, attempts in rows:
                receiver = receivers.get(name)
                if receiver is None:
                    delivery = Delivery(False, False, None, f"receiver {name!r} is not configured")
                else:
                    delivery = send(receiver, json.loads(payload), notification_id=int(nid), dedup_key=dedup_key,
                                    client=client)
                _record(store, int(nid), int(attempts) + 1, delivery, config, now, rng, report, receiver)
            limit -= len(rows)
            if not rows or report.delivered == delivered_before:
                break
    finally:
        if own_client:
            client.close()
    return report


def _record(store: Store, nid: int, attempts: int, delivery: Delivery, config: NotifiersConfig, now: datetime,
            rng: Callable[[], float], report: DrainReport, receiver: ReceiverConfig | None) -> None:
    name = receiver.name if receiver else "?"
    with store.transaction() as cur:
        if delivery.ok:
            cur.execute(
                "UPDATE notifications SET status = 'delivered', attempts = ?, delivered_at = ?, last_status_code = ? "
                "WHERE id = ?", [attempts, now, delivery.status_code, nid],
            )
            report.delivered += 1
            return
        if delivery.retryable and attempts < config.max_attempts:
            delay = backoff(attempts, config, rng)
            if delivery.retry_after_s:
                delay = max(delay, timedelta(seconds=min(delivery.retry_after_s, config.backoff_max_s)))
            cur.execute(
                "UPDATE notifications SET attempts = ?, failures = failures + 1, next_attempt_at = ?, last_error = ?, "
                "last_status_code = ? WHERE id = ?",
                [attempts, now + delay, delivery.detail, delivery.status_code, nid],
            )
            report.retried += 1
            log.warning("notification %s to %s: %s; retry in %.1fs", nid, name, delivery.detail, delay.total_seconds())
            return
        cur.execute(
            "UPDATE notifications SET status = 'failed', attempts = ?, failures = failures + 1, last_error = ?, "
            "last_status_code = ? WHERE id = ?", [attempts, delivery.detail, delivery.status_code, nid],
        )
        report.failed += 1
        log.error("notification %s to %s failed for good: %s", nid, name, delivery.detail)


def outbox_rows(store: Store, *, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    sql = ("SELECT id, created_at, receiver, dedup_key, status, attempts, next_attempt_at, delivered_at, last_error, "
           "last_status_code, payload FROM notifications")
    params: list[Any] = []
    if status:
        sql += " WHERE status = ?"
        params.append(status)
    rows = store.fetchall(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
    keys = ("id", "created_at", "receiver", "dedup_key", "status", "attempts", "next_attempt_at", "delivered_at",
            "last_error", "last_status_code", "payload")
    return [dict(zip(keys, r)) | {"payload": json.loads(r[-1])} for r in rows]
