"""GPU polling inside `genobs serve`: NVML on this machine and the configured DCGM exporter
URLs, read every ``server.gpu_poll_interval_s`` by a periodic task into the store and the
GPU gauges."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from genobs.collectors.gpu_dcgm import DcgmScrapeError, scrape_dcgm
from genobs.collectors.gpu_nvml import NvmlReader, NvmlUnavailable
from genobs.collectors.gpu_records import store_readings, validate_readings
from genobs.collectors.metrics import ServerMetrics
from genobs.store import Store

log = logging.getLogger("genobs.server")


class GpuPoller:
    """One poll of every source per call; a failing source is logged once until it works again."""

    def __init__(self, metrics: ServerMetrics, *, poll_nvml: bool, dcgm_urls: Sequence[str], interval_s: float) -> None:
        self.metrics = metrics
        self.dcgm_urls = list(dcgm_urls)
        self.interval_s = interval_s
        self._nvml: NvmlReader | None = None
        self._warned: set[str] = set()
        if poll_nvml:
            try:
                self._nvml = NvmlReader().open()
                log.info("GPU polling: NVML, every %.0f s", interval_s)
            except NvmlUnavailable as exc:
                log.warning("GPU polling via NVML is off: %s", exc)

    @property
    def active(self) -> bool:
        return self._nvml is not None or bool(self.dcgm_urls)

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.close()
            self._nvml = None

    def poll_once(self, store: Store) -> int:
        stored = 0
        if self._nvml is not None:
            try:
                stored += self._store(store, self._nvml.read(), "nvml")
                self._warned.discard("nvml")
            except Exception as exc:  # noqa: BLE001 - a poll failure must not stop the others
                self._warn("nvml", f"NVML read failed: {exc}")
        for url in self.dcgm_urls:
            try:
                stored += self._store(store, scrape_dcgm(url).readings, f"dcgm:{url}")
                self._warned.discard(url)
            except DcgmScrapeError as exc:
                self._warn(url, str(exc))
            except Exception as exc:  # noqa: BLE001
                self._warn(url, f"DCGM exporter {url}: {exc}")
        return stored

    def _store(self, store: Store, readings: list[dict[str, Any]], source: str) -> int:
        result = store_readings(store, readings, source=source)
        self.metrics.observe_gpu(validate_readings(readings)[0])
        self.metrics.observe_ingest("gpu", result.accepted, result.rejected)
        return result.accepted

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:  # once per source until it works again
            self._warned.add(key)
            log.warning("%s (will keep trying every %.0f s)", message, self.interval_s)
