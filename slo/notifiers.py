"""Receivers: what each one is sent (built at enqueue time) and how (at delivery time).

- ``webhook``: Alertmanager's webhook JSON, version "4", one message per group, so any
  Alertmanager webhook receiver works; an optional ``X-Genobs-Signature: sha256=<hex>``
  header, HMAC-SHA256 of the body with the key from the environment variable named by
  ``hmac_secret_env``.
- ``alertmanager``: the alerts posted to an Alertmanager's ``/api/v2/alerts``.
- ``pagerduty``: Events API v2, one event per alert: ``dedup_key`` = fingerprint,
  ``trigger`` / ``resolve``; the routing key comes from the environment at delivery time.
- ``slack``: an incoming-webhook message (text with a link to the dashboard); the webhook
  URL is a secret, so it comes from the environment (``url_env``).

Payloads stored in the outbox never contain secrets: keys, signing secrets and secret URLs
are read from the environment when a message is sent, and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import httpx

from genobs.config import ReceiverConfig
from genobs.slo.alerting import Alert, Notice

AM_ZERO_TIME = "0001-01-01T00:00:00Z"   # Alertmanager's endsAt of a firing alert
PD_DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
PD_SEVERITY = {"page": "critical", "ticket": "warning"}
PD_SUMMARY_MAX = 1024
PD_PAYLOAD_MAX = 512 * 1024


class NotifierError(ValueError):
    """A receiver that cannot be used as configured (missing URL or secret)."""


@dataclass
class Message:
    """One outbox row to be: who, dedup key, body (JSON-able, secret-free)."""

    receiver: str
    dedup_key: str
    payload: Any


@dataclass
class Delivery:
    ok: bool
    retryable: bool
    status_code: int | None
    detail: str
    retry_after_s: float | None = None


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return AM_ZERO_TIME
    return moment.isoformat().replace("+00:00", "Z")


def matches_route(receiver: ReceiverConfig, labels: dict[str, str]) -> bool:
    for key, wanted in receiver.match.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        if labels.get(key) not in values:
            return False
    return True


def generator_url(external_url: str | None, alert: Alert) -> str:
    base = (external_url or "").rstrip("/")
    return f"{base}/slos?slo={alert.slo}" if base else ""


def _am_alert(notice: Notice, external_url: str | None) -> dict[str, Any]:
    alert = notice.alert
    return {
        "status": notice.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": _iso(alert.starts_at),
        "endsAt": _iso(alert.ends_at) if notice.status == "resolved" else AM_ZERO_TIME,
        "generatorURL": generator_url(external_url, alert),
        "fingerprint": alert.fingerprint,
    }


def _group_key(receiver: ReceiverConfig, group_labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return f'{{}}/{{receiver="{receiver.name}"}}:{{{inner}}}'


def _common(maps: Sequence[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def build_messages(receiver: ReceiverConfig, notices: Sequence[Notice], external_url: str | None) -> list[Message]:
    """The outbox rows for ``notices`` (already routed to this receiver)."""
    notices = [n for n in notices if receiver.send_resolved or n.status == "firing"]
    if not notices:
        return []
    if receiver.type == "pagerduty":
        return [Message(receiver.name, n.alert.fingerprint, _pagerduty_event(n, external_url)) for n in notices]
    if receiver.type == "alertmanager":
        return [Message(receiver.name, n.alert.fingerprint, [_am_alert_v2(n, external_url)]) for n in notices]
    groups: dict[tuple[tuple[str, str], ...], list[Notice]] = {}
    for notice in notices:
        key = tuple((name, notice.alert.labels.get(name, "")) for name in receiver.group_by)
        groups.setdefault(key, []).append(notice)
    messages = []
    for key, members in groups.items():
        group_labels = dict(key)
        group_key = _group_key(receiver, group_labels)
        if receiver.type == "webhook":
            messages.append(Message(receiver.name, group_key, _webhook_body(receiver, group_labels, group_key, members, external_url)))
        else:
            messages.append(Message(receiver.name, group_key, _slack_body(members, external_url)))
    return messages


def _webhook_body(receiver: ReceiverConfig, group_labels: dict[str, str], group_key: str, members: list[Notice],
                  external_url: str | None) -> dict[str, Any]:
    alerts = [_am_alert(n, external_url) for n in members]
    truncated = 0
    if receiver.max_alerts and len(alerts) > receiver.max_alerts:
        truncated = len(alerts) - receiver.max_alerts
        alerts = alerts[: receiver.max_alerts]
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": truncated,
        "status": "firing" if any(n.status == "firing" for n in members) else "resolved",
        "receiver": receiver.name,
        "groupLabels": group_labels,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url or "",
        "alerts": alerts,
    }


def _am_alert_v2(notice: Notice, external_url: str | None) -> dict[str, Any]:
    alert = notice.alert
    body: dict[str, Any] = {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": _iso(alert.starts_at),
        "generatorURL": generator_url(external_url, alert) or "http://genobs.invalid/",
    }
    if notice.status == "resolved":
        body["endsAt"] = _iso(alert.ends_at)
    elif notice.valid_until is not None:
        body["endsAt"] = _iso(notice.valid_until)
    return body


def _pagerduty_event(notice: Notice, external_url: str | None) -> dict[str, Any]:
    alert = notice.alert
    event: dict[str, Any] = {
        "event_action": "trigger" if notice.status == "firing" else "resolve",
        "dedup_key": alert.fingerprint,
    }
    if notice.status == "firing":
        summary = alert.annotations.get("summary") or f"{alert.slo} {alert.severity}"
        event["payload"] = {
            "summary": summary[:PD_SUMMARY_MAX],
            "source": alert.labels.get("service") or "genobs",
            "severity": PD_SEVERITY.get(alert.severity, "error"),
            "timestamp": _iso(alert.starts_at),
            "component": alert.labels.get("service"),
            "group": alert.labels.get("slo"),
            "class": alert.labels.get("alertname"),
            "custom_details": {"labels": alert.labels, "annotations": alert.annotations},
        }
        link = generator_url(external_url, alert)
        if link:
            event["links"] = [{"href": link, "text": "genobs SLO dashboard"}]
        if len(json.dumps(event)) > PD_PAYLOAD_MAX - 1024:  # room for the routing key
            event["payload"]["custom_details"] = {"note": "details truncated to fit PagerDuty's 512 KB limit"}
    return event


def _slack_body(members: list[Notice], external_url: str | None) -> dict[str, Any]:
    lines = []
    for notice in members:
        alert = notice.alert
        icon = ":rotating_light:" if notice.status == "firing" and alert.severity == "page" else (
            ":warning:" if notice.status == "firing" else ":white_check_mark:")
        text = f"{icon} *[{notice.status.upper()}] {alert.severity}* {alert.annotations.get('summary', alert.slo)}"
        desc = alert.annotations.get("description")
        if desc and notice.status == "firing":
            text += f"\n> {desc}"
        link = generator_url(external_url, alert)
        if link:
            text += f"\n<{link}|open in genobs>"
        lines.append(text)
    return {"text": "\n".join(lines)}


# ----------------------------------------------------------------------------- delivery


def _env(name: str | None, what: str, receiver: ReceiverConfig) -> str:
    if not name:
        raise NotifierError(f"receiver {receiver.name!r}: {what} is not configured")
    value = os.environ.get(name)
    if not value:
        raise NotifierError(f"receiver {receiver.name!r}: environment variable {name} ({what}) is not set")
    return value


def target_url(receiver: ReceiverConfig) -> str:
    if receiver.type == "slack" or (receiver.url is None and receiver.url_env):
        return _env(receiver.url_env, "url_env (the webhook URL)", receiver)
    if receiver.type == "pagerduty":
        return receiver.url or PD_DEFAULT_URL
    if not receiver.url:
        raise NotifierError(f"receiver {receiver.name!r}: url is not configured")
    if receiver.type == "alertmanager":
        return receiver.url.rstrip("/") + "/api/v2/alerts"
    return receiver.url


def check_receiver(receiver: ReceiverConfig) -> None:
    """Raise NotifierError when a receiver lacks its URL or secret (checked at startup)."""
    target_url(receiver)
    if receiver.type == "pagerduty":
        _env(receiver.routing_key_env, "routing_key_env", receiver)
    if receiver.hmac_secret_env:
        _env(receiver.hmac_secret_env, "hmac_secret_env", receiver)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(receiver: ReceiverConfig, payload: Any, *, notification_id: int, dedup_key: str | None,
         client: httpx.Client) -> Delivery:
    """Deliver one outbox message. Never raises for delivery problems; never puts secrets
    (URLs of secret receivers, keys) into the returned detail."""
    try:
        url = target_url(receiver)
        if receiver.type == "pagerduty":
            payload = {**payload, "routing_key": _env(receiver.routing_key_env, "routing_key_env", receiver)}
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "genobs",
                   "Idempotency-Key": f"genobs-{notification_id}"}
        if dedup_key:
            headers["X-Genobs-Dedup-Key"] = dedup_key
        if receiver.hmac_secret_env:
            headers["X-Genobs-Signature"] = sign(body, _env(receiver.hmac_secret_env, "hmac_secret_env", receiver))
    except NotifierError as exc:
        return Delivery(False, False, None, str(exc))
    try:
        response = client.post(url, content=body, headers=headers, timeout=receiver.timeout_s)
    except httpx.TimeoutException:
        return Delivery(False, True, None, "timed out")
    except httpx.HTTPError as exc:
        return Delivery(False, True, None, f"connection failed: {type(exc).__name__}")
    code = response.status_code
    text = response.text[:300].replace("\n", " ")
    if 200 <= code < 300:
        return Delivery(True, False, code, "ok")
    retry_after = None
    if code == 429:
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
    retryable = code == 429 or code >= 500 or code == 408
    return Delivery(False, retryable, code, f"HTTP {code}: {text}", retry_after)
