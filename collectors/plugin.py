"""What the collectors add to the platform (genobs.runtime): the ingest routes, their
metrics, and GPU polling as a periodic task."""

from __future__ import annotations

from genobs.collectors.gpu_poll import GpuPoller
from genobs.collectors.http_api import ApiSettings, ingest_router
from genobs.collectors.metrics import ServerMetrics
from genobs.collectors.pipeline import IngestOptions, ModelPrice
from genobs.config import GenobsConfig
from genobs.runtime import Contribution, RuntimeContext
from genobs.tasks import PeriodicTask


def ingest_options_from_config(config: GenobsConfig) -> IngestOptions:
    """Redaction and the price table from genobs.yaml's ``ingest:`` section."""
    prices = {model: ModelPrice(price.input_per_mtok, price.output_per_mtok)
              for model, price in config.ingest.prices.items()}
    return IngestOptions(redact=config.ingest.redact, prices=prices)


def contribute(ctx: RuntimeContext) -> Contribution:
    settings = ctx.settings
    metrics = ServerMetrics(settings.max_label_series, registry=ctx.registry)
    api = ApiSettings(
        max_body_bytes=settings.max_body_bytes,
        ingest_options=settings.ingest_options or ingest_options_from_config(ctx.config),
        max_label_series=settings.max_label_series,
        max_concurrent_writes=settings.max_concurrent_writes,
    )
    contribution = Contribution(routers=[ingest_router(ctx.store, api, metrics, ctx.require_token)])
    if settings.run_scheduler and (settings.poll_nvml or settings.dcgm_urls):
        interval = max(0.5, float(settings.gpu_poll_interval_s))
        poller = GpuPoller(metrics, poll_nvml=settings.poll_nvml, dcgm_urls=settings.dcgm_urls, interval_s=interval)
        if poller.active:
            contribution.tasks.append(PeriodicTask("gpu", interval, poller.poll_once, initial_delay_s=0.0))
        contribution.on_stop.append(poller.close)
    return contribution
