"""GPU readings from NVML (the ``nvidia-ml-py`` package, imported as ``pynvml``).

NVML reports power in milliwatts and memory in bytes; readings are converted to W and
MiB. A query the GPU or driver does not support gives null for that field only. No
driver, no library or no GPU raises ``NvmlUnavailable`` with a message saying which.
"""

from __future__ import annotations

import socket
import threading
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable

from genobs.collectors.gpu_records import decode_clock_event_reasons

_MIB = 1024 * 1024


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used on this machine (message says why and what to do)."""


def _load_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError:  # pragma: no cover - nvidia-ml-py is a dependency
        raise NvmlUnavailable("the nvidia-ml-py package is not installed (pip install nvidia-ml-py)") from None
    return pynvml


def _unavailable_message(nvml: ModuleType, exc: Exception) -> str:
    names = {
        "NVMLError_LibraryNotFound": "the NVIDIA driver library (libnvidia-ml.so) was not found: no NVIDIA driver on this machine",
        "NVMLError_DriverNotLoaded": "the NVIDIA driver is not loaded",
        "NVMLError_NoPermission": "no permission to use NVML (run with access to /dev/nvidia*)",
        "NVMLError_LibRmVersionMismatch": "the NVML library and the kernel driver versions differ (reboot or reinstall the driver)",
    }
    for name, message in names.items():
        cls = getattr(nvml, name, None)
        if cls is not None and isinstance(exc, cls):
            return f"NVML unavailable: {message}"
    return f"NVML unavailable: {exc}"


class NvmlReader:
    """Reads every GPU on this machine through NVML. Use as a context manager."""

    def __init__(self, nvml: ModuleType | None = None, host: str | None = None) -> None:
        self._nvml = nvml if nvml is not None else _load_pynvml()
        self.host = host or socket.gethostname()
        self._lock = threading.Lock()
        self._initialised = False

    def open(self) -> "NvmlReader":
        nvml = self._nvml
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            raise NvmlUnavailable(_unavailable_message(nvml, exc)) from None
        self._initialised = True
        if count == 0:
            self.close()
            raise NvmlUnavailable("NVML unavailable: the driver reports no GPUs")
        return self

    def close(self) -> None:
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass

    def __enter__(self) -> "NvmlReader":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, call: Callable[[], Any]) -> Any:
        """One NVML query; NotSupported (and any per-field NVML error) → None."""
        try:
            return call()
        except self._nvml.NVMLError:
            return None

    def read(self) -> list[dict[str, Any]]:
        """One reading per GPU, all with the same timestamp."""
        nvml = self._nvml
        if not self._initialised:
            self.open()
        now = datetime.now(timezone.utc)
        readings: list[dict[str, Any]] = []
        with self._lock:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                readings.append(self._read_one(handle, index, now))
        return readings

    def _read_one(self, handle: Any, index: int, now: datetime) -> dict[str, Any]:
        nvml = self._nvml
        q = self._query
        name = q(lambda: nvml.nvmlDeviceGetName(handle))
        uuid = q(lambda: nvml.nvmlDeviceGetUUID(handle))
        utilization = q(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        memory = q(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        power_mw = q(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        temperature = q(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        sm_clock = q(lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
        reasons_call = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons"
        )
        reasons = q(lambda: reasons_call(handle))
        ecc = q(
            lambda: nvml.nvmlDeviceGetTotalEccErrors(
                handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
            )
        )
        return {
            "timestamp": now,
            "host": self.host,
            "gpu_index": index,
            "gpu_uuid": _text(uuid),
            "gpu_name": _text(name),
            "utilization_pct": None if utilization is None else float(utilization.gpu),
            "memory_used_mib": None if memory is None else memory.used / _MIB,
            "memory_total_mib": None if memory is None else memory.total / _MIB,
            "power_w": None if power_mw is None else power_mw / 1000.0,
            "temperature_c": None if temperature is None else float(temperature),
            "sm_clock_mhz": None if sm_clock is None else float(sm_clock),
            "throttle_reasons": decode_clock_event_reasons(reasons),
            "ecc_uncorrected": None if ecc is None else int(ecc),
            "attributes": {"collector": "nvml"},
        }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
