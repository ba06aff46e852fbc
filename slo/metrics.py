"""Prometheus metrics of the SLO engine, read from the store at scrape time.

``genobs_slo_objective_ratio``, ``genobs_slo_error_budget_remaining_ratio``,
``genobs_slo_burn_rate{window}`` come from the last evaluation (table ``slo_status``);
``genobs_alerts_firing{severity}``, ``genobs_notifications_pending`` and
``genobs_notification_failures_total{receiver}`` from the alerts and the outbox.
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from genobs.slo.engine import saved_statuses
from genobs.store import Store


class SloCollector(Collector):
    def __init__(self, get_store: Callable[[], Store]) -> None:
        self._get_store = get_store

    def describe(self) -> list:  # no description at registration: collect() reads the store
        return []

    def collect(self) -> Iterator:
        store = self._get_store()
        objective = GaugeMetricFamily("genobs_slo_objective_ratio", "SLO objective as a ratio (99.9% -> 0.999).",
                                      labels=["slo", "service"])
        remaining = GaugeMetricFamily("genobs_slo_error_budget_remaining_ratio",
                                      "Share of the SLO window's error budget left (negative when overspent).",
                                      labels=["slo", "service"])
        burn = GaugeMetricFamily("genobs_slo_burn_rate", "Error budget burn rate over a window (1 = exactly on budget).",
                                 labels=["slo", "service", "window"])
        for status in saved_statuses(store):
            labels = [status["slo"], status["service"] or ""]
            objective.add_metric(labels, status["objective"] / 100.0)
            remaining.add_metric(labels, status["budget_remaining"])
            for window, value in status["burn_rates"].items():
                burn.add_metric([*labels, window], value)
        yield objective
        yield remaining
        yield burn
        firing = GaugeMetricFamily("genobs_alerts_firing", "Alerts firing now, by severity.", labels=["severity"])
        counts = dict(store.fetchall("SELECT severity, count(*) FROM alerts WHERE state = 'firing' GROUP BY 1"))
        for severity in sorted(set(counts) | {"page", "ticket"}):
            firing.add_metric([severity], counts.get(severity, 0))
        yield firing
        (pending,) = store.fetchone("SELECT count(*) FROM notifications WHERE status = 'pending'") or (0,)
        yield GaugeMetricFamily("genobs_notifications_pending", "Notifications waiting in the outbox.", value=pending)
        failures = CounterMetricFamily("genobs_notification_failures", "Failed notification delivery attempts.",
                                       labels=["receiver"])
        for receiver, count in store.fetchall(
                "SELECT receiver, sum(coalesce(failures, 0)) FROM notifications GROUP BY 1 ORDER BY 1"):
            failures.add_metric([receiver], float(count or 0))
        yield failures
