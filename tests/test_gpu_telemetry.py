"""GPU telemetry: DCGM exporter scrapes, nvidia-smi CSV, NVML, validation and storage.

The DCGM tests use a real exporter scrape (DataDog/integrations-core
dcgm/tests/fixtures/metrics.txt, in tests/data)
served from a loopback HTTP server.
"""

from __future__ import annotations

import http.server
import threading
import time
import types
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from genobs.collectors.gpu_collect import CollectOptions, ServerSink, StoreSink, collect
from genobs.collectors.gpu_dcgm import is_dcgm_blank, parse_dcgm_metrics, scrape_dcgm
from genobs.collectors.gpu_nvml import NvmlReader, NvmlUnavailable
from genobs.collectors.gpu_records import decode_clock_event_reasons, store_readings
from genobs.collectors.gpu_smi import SmiCsvError, read_smi_csv
from genobs.runtime import ServerSettings, start_platform
from genobs.store import Store
from helpers import TEST_DATA

DCGM_SCRAPE = TEST_DATA / "dcgm_exporter_scrape.txt"


@pytest.fixture
def dcgm_text() -> str:
    return DCGM_SCRAPE.read_text()


@pytest.fixture
def exporter(dcgm_text: str) -> Iterator[str]:
    """A loopback HTTP server answering /metrics with the real scrape."""
    body = dcgm_text.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/metrics":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_dcgm_scrape_over_http(exporter: str) -> None:
    result = scrape_dcgm(exporter)
    readings = {r["host"]: r for r in result.readings}
    assert set(readings) == {"424773df46e0", "551bdf382151", "ip-11111"}
    t4 = readings["424773df46e0"]
    assert (t4["gpu_index"], t4["gpu_uuid"], t4["gpu_name"]) == (0, "GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e", "Tesla T4")
    assert t4["sm_clock_mhz"] == 300.0 and t4["temperature_c"] == 25.0 and t4["power_w"] == pytest.approx(8.969)
    assert t4["utilization_pct"] == 0.0 and t4["memory_used_mib"] == 0.0
    assert t4["memory_total_mib"] == 15109.0          # used + free: this exporter has no FB_TOTAL
    assert t4["attributes"]["driver_version"] == "460.106.00"
    other = readings["551bdf382151"]
    assert other["memory_total_mib"] == 15109.0 and other["throttle_reasons"] == "gpu_idle"
    assert "memory_used_mib" not in other or other["memory_used_mib"] is None   # FB_USED_PERCENT is not FB_USED
    a10g = readings["ip-11111"]
    assert a10g["gpu_name"] == "NVIDIA A10G"
    assert {k: a10g["attributes"][k] for k in ("pod", "namespace", "container")} == {
        "pod": "ray-1111111", "namespace": "ray-llm", "container": "ray-worker"}
    assert result.skipped_samples == 4                 # the label-less dummy lines


def test_dcgm_name_unit_and_sentinel_variants() -> None:
    text = """\
# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in Hz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{gpu="1",uuid="GPU-x",hostname="h1",exported_pod="web-0",exported_namespace="prod"} 1410000000
dcgm_fi_dev_fb_used_bytes{gpu="1",hostname="h1"} 1073741824
DCGM_FI_DEV_FB_FREE{gpu="1",hostname="h1"} 1024
DCGM_FI_DEV_GPU_UTIL_ratio{gpu="1",hostname="h1"} 0.75
DCGM_FI_DEV_POWER_USAGE{gpu="1",hostname="h1"} 9223372036854775794
DCGM_FI_DEV_GPU_TEMP{gpu="1",hostname="h1"} NaN
DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="1",hostname="h1"} 2
DCGM_FI_DEV_CLOCKS_EVENT_REASONS{gpu="1",hostname="h1"} 68
dcgm_gpu_temp{gpu="0",uuid="GPU-old"} 41
dcgm_power_usage{gpu="0",uuid="GPU-old"} 2147483634
"""
    readings = {(r["host"], r["gpu_index"]): r for r in parse_dcgm_metrics(text, default_host="scraped-host").readings}
    new = readings[("h1", 1)]
    assert new["sm_clock_mhz"] == 1410.0
    assert new["memory_used_mib"] == 1024.0 and new["memory_total_mib"] == 2048.0
    assert new["utilization_pct"] == 75.0
    assert new["power_w"] is None and new["temperature_c"] is None
    assert new["ecc_uncorrected"] == 2
    assert new["throttle_reasons"] == "sw_power_cap,hw_thermal_slowdown"
    assert (new["attributes"]["pod"], new["attributes"]["namespace"]) == ("web-0", "prod")
    old = readings[("scraped-host", 0)]       # 1.x exporter names, no hostname label
    assert old["temperature_c"] == 41.0 and old["power_w"] is None and old["gpu_uuid"] == "GPU-old"
    assert is_dcgm_blank(140737488355328.0) and not is_dcgm_blank(300.0)


def test_collect_gpu_from_dcgm_into_the_database(exporter: str, store: Store) -> None:
    messages: list[str] = []
    code = collect(StoreSink(store), CollectOptions(dcgm_urls=[exporter], count=1), messages.append)
    assert code == 0
    rows = store.fetchall("SELECT host, gpu_index, power_w, source FROM gpu_telemetry ORDER BY host")
    assert [r[0] for r in rows] == ["424773df46e0", "551bdf382151", "ip-11111"]
    assert rows[0][2] == pytest.approx(8.969) and rows[0][3] == f"dcgm:{exporter}"
    assert "stored 3 GPU reading(s)" in messages[0]


def test_collect_gpu_unreachable_exporter_is_an_error_with_a_message(store: Store) -> None:
    messages: list[str] = []
    code = collect(StoreSink(store), CollectOptions(dcgm_urls=["http://127.0.0.1:9/metrics"], count=1), messages.append)
    assert code == 2 and "127.0.0.1:9" in messages[0]


def test_server_scrapes_configured_dcgm_urls(exporter: str, tmp_path: Path) -> None:
    settings = ServerSettings(poll_nvml=False, dcgm_urls=[exporter], gpu_poll_interval_s=0.5, ingest_token=None)
    handle = start_platform(tmp_path / "genobs.duckdb", settings=settings)
    try:
        deadline = time.monotonic() + 20
        while handle.store.fetchone("SELECT count(*) FROM gpu_telemetry")[0] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert handle.store.fetchone("SELECT count(DISTINCT host) FROM gpu_telemetry") == (3,)
        metrics = httpx.get(handle.url + "/metrics").text
        assert 'genobs_gpu_power_watts{gpu="0",gpu_name="Tesla T4",host="424773df46e0"} 8.969' in metrics
        assert 'genobs_gpu_temperature_celsius{gpu="0",gpu_name="Tesla T4",host="424773df46e0"} 25.0' in metrics
    finally:
        handle.stop()
        handle.store.close()


def test_collect_gpu_posts_to_a_server(exporter: str, tmp_path: Path) -> None:
    handle = start_platform(tmp_path / "genobs.duckdb", settings=ServerSettings(poll_nvml=False, ingest_token=None))
    try:
        code = collect(ServerSink(handle.url), CollectOptions(dcgm_urls=[exporter], count=1), lambda _: None)
        assert code == 0
        assert handle.store.fetchone("SELECT count(*) FROM gpu_telemetry") == (3,)
    finally:
        handle.stop()
        handle.store.close()


SMI_CSV = """\
timestamp, index, uuid, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], power.draw [W], temperature.gpu, clocks.current.sm [MHz], clocks_event_reasons.active, ecc.errors.uncorrected.volatile.total, pstate
2025/01/15 10:00:00.123, 0, GPU-aaa, NVIDIA H100 80GB HBM3, 45 %, 1234 MiB, 81559 MiB, 70.52 W, 33, 1980 MHz, 0x0000000000000004, 0, P0
2025/01/15 10:00:00.123, 1, GPU-bbb, NVIDIA H100 80GB HBM3, [N/A], 10 MiB, 81559 MiB, [Not Supported], 31, 1980 MHz, 0x0000000000000000, [N/A], P0
timestamp, index, uuid, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], power.draw [W], temperature.gpu, clocks.current.sm [MHz], clocks_event_reasons.active, ecc.errors.uncorrected.volatile.total, pstate
2025/01/15 10:00:05.123, zero, GPU-aaa, NVIDIA H100 80GB HBM3, 45 %, 1234 MiB, 81559 MiB, 70.52 W, 33, 1980 MHz, 0x0, 0, P0
"""


def test_nvidia_smi_csv(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "gpus.csv"
    path.write_text(SMI_CSV)
    parsed = read_smi_csv(path, host="node-7", tz=timezone.utc)
    assert parsed.errors == [(5, "index: cannot read 'zero'")]
    first, second = parsed.readings
    assert first["timestamp"] == datetime(2025, 1, 15, 10, 0, 0, 123000, tzinfo=timezone.utc)
    assert (first["utilization_pct"], first["memory_used_mib"], first["power_w"], first["sm_clock_mhz"]) == (
        45.0, 1234.0, 70.52, 1980.0)
    assert first["throttle_reasons"] == "sw_power_cap" and first["ecc_uncorrected"] == 0
    assert first["attributes"]["pstate"] == "P0"
    assert second["utilization_pct"] is None and second["power_w"] is None and second["ecc_uncorrected"] is None
    assert second["throttle_reasons"] == "none"

    messages: list[str] = []
    code = collect(StoreSink(store), CollectOptions(smi_csv=path, host="node-7"), messages.append)
    assert code == 3       # two stored, one line rejected
    assert store.fetchone("SELECT count(*) FROM gpu_telemetry WHERE host = 'node-7'") == (2,)
    assert any("line 5" in m for m in messages)


def test_nvidia_smi_csv_without_header_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text("2025/01/15 10:00:00.123, 0, 45 %\n")
    with pytest.raises(SmiCsvError, match="noheader"):
        read_smi_csv(path)


def test_invalid_readings_go_to_dead_letter(store: Store) -> None:
    result = store_readings(store, [
        {"timestamp": 1736935200, "host": "h", "gpu_index": 0, "power_w": 100},
        {"timestamp": 1736935200000, "host": "h", "gpu_index": 1, "power_w": -5},
        {"timestamp": "yesterday", "host": "h", "gpu_index": 2},
        {"host": "h", "gpu_index": 3, "timestamp": "2025-01-15T10:00:00Z", "attributes": {"nested": {"x": 1}}},
    ], source="test")
    assert (result.accepted, result.rejected) == (1, 3)
    assert [e["line"] for e in result.errors] == [2, 3, 4]
    assert "power_w" in result.errors[0]["message"] and "timestamp" in result.errors[1]["message"]
    assert store.fetchone("SELECT count(*) FROM dead_letter WHERE source = 'test'") == (3,)
    assert store.fetchone("SELECT timestamp FROM gpu_telemetry")[0] == datetime(2025, 1, 15, 10, 0, tzinfo=timezone.utc)


def test_clock_event_reasons() -> None:
    assert decode_clock_event_reasons(None) is None
    assert decode_clock_event_reasons(0) == "none"
    assert decode_clock_event_reasons(0x1 | 0x8) == "gpu_idle,hw_slowdown"
    assert decode_clock_event_reasons(0x10000) == "0x10000"


# ---------------------------------------------------------------- NVML


def _nvml_present() -> bool:
    try:
        with NvmlReader():
            return True
    except NvmlUnavailable:
        return False


def test_no_gpu_gives_a_clear_message_and_exit_0_with_optional(store: Store) -> None:
    if _nvml_present():
        pytest.skip("this machine has a working NVIDIA driver")
    messages: list[str] = []
    assert collect(StoreSink(store), CollectOptions(count=1, optional=True), messages.append) == 0
    assert messages and messages[0].startswith("NVML unavailable")
    messages.clear()
    assert collect(StoreSink(store), CollectOptions(count=1), messages.append) == 2
    assert "--optional" in messages[0]


class _FakeNvml(types.SimpleNamespace):
    """Stands in for the pynvml module (a third-party library): two GPUs, the second
    without power or ECC support."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801
        pass

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0

    def __init__(self) -> None:
        super().__init__()
        self.shutdowns = 0

    def nvmlInit(self) -> None:  # noqa: N802
        pass

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetName(self, h: int) -> str:  # noqa: N802
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUUID(self, h: int) -> str:  # noqa: N802
        return f"GPU-{h}"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> object:  # noqa: N802
        return types.SimpleNamespace(gpu=93, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> object:  # noqa: N802
        return types.SimpleNamespace(used=40 * 1024**3, total=80 * 1024**3, free=40 * 1024**3)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:  # noqa: N802
        if h == 1:
            raise self.NVMLError_NotSupported()
        return 612_345   # mW

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:  # noqa: N802
        return 67

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:  # noqa: N802
        return 1980

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: int) -> int:  # noqa: N802
        return 0x4

    def nvmlDeviceGetTotalEccErrors(self, h: int, kind: int, counter: int) -> int:  # noqa: N802
        if h == 1:
            raise self.NVMLError_NotSupported()
        return 0


def test_nvml_readings_units_and_unsupported_fields() -> None:
    fake = _FakeNvml()
    with NvmlReader(nvml=fake, host="gpu-node") as reader:  # type: ignore[arg-type]
        first, second = reader.read()
    assert fake.shutdowns == 1
    assert (first["host"], first["gpu_index"], first["gpu_uuid"]) == ("gpu-node", 0, "GPU-0")
    assert first["power_w"] == pytest.approx(612.345)                   # mW → W
    assert (first["memory_used_mib"], first["memory_total_mib"]) == (40960.0, 81920.0)   # bytes → MiB
    assert (first["utilization_pct"], first["temperature_c"], first["sm_clock_mhz"]) == (93.0, 67.0, 1980.0)
    assert first["throttle_reasons"] == "sw_power_cap" and first["ecc_uncorrected"] == 0
    assert second["power_w"] is None and second["ecc_uncorrected"] is None   # NotSupported → null


def test_collect_gpu_command(tmp_path: Path, exporter: str) -> None:
    from typer.testing import CliRunner

    from genobs.cli import app

    runner = CliRunner()
    csv_file = tmp_path / "gpus.csv"
    csv_file.write_text(SMI_CSV)
    db = tmp_path / "cli.duckdb"
    result = runner.invoke(app, ["collect-gpu", "--db", str(db), "--nvidia-smi-csv", str(csv_file), "--host", "n7"])
    assert result.exit_code == 3, result.output          # one CSV line was bad
    assert "line 5" in result.output
    result = runner.invoke(app, ["collect-gpu", "--db", str(db), "--dcgm-url", exporter, "--count", "1"])
    assert result.exit_code == 0, result.output
    with Store.open(db) as store:
        assert store.fetchone("SELECT count(*) FROM gpu_telemetry") == (5,)
    if not _nvml_present():
        result = runner.invoke(app, ["collect-gpu", "--db", str(tmp_path / "none.duckdb"), "--optional"])
        assert result.exit_code == 0 and "NVML unavailable" in result.output
        assert not (tmp_path / "none.duckdb").exists()     # nothing to collect: no database made
