"""GPU telemetry for the demo: one reading per GPU per interval (DESIGN §3 GPU fields),
utilisation following the traffic each GPU serves, and the thermal-throttling episode."""

from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta
from typing import Any, Iterator

from genobs.sample_data.timeline import DATA_END, DATA_START, ERROR_BURST, GPU_THERMAL
from genobs.sample_data.traffic import GPUS, IMAGE_REPLICA, chat_share_of_gpu, traffic_shape

GPU_NAME = "NVIDIA H100 80GB HBM3"
MEMORY_TOTAL_MIB = 81559
MAX_CLOCK_MHZ = 1980
THERMAL_GPU = (str(GPU_THERMAL.properties["host"]), int(GPU_THERMAL.properties["gpu_index"]))
THROTTLE_REASON = str(GPU_THERMAL.properties["throttle_reason"])


def _peak_shape() -> float:
    return max(traffic_shape(DATA_START + timedelta(minutes=m)) for m in range(0, 24 * 60, 5))


def _thermal_target(when: datetime) -> float | None:
    """The temperature the thermal GPU is driven towards while it overheats; None otherwise.
    (It cools back down through the normal lag once the window ends.)"""
    heating_from: datetime = GPU_THERMAL.properties["heating_from"]
    if heating_from <= when < GPU_THERMAL.start:
        return 86.0
    if GPU_THERMAL.contains(when):
        return 89.5 + 1.5 * math.sin((when - GPU_THERMAL.start).total_seconds() / 900)
    return None


def gpu_readings(seed: int, interval_s: int = 60) -> Iterator[dict[str, Any]]:
    """Readings in time order (then host, GPU index)."""
    rng = random.Random(f"{seed}:gpu")
    uuids = {gpu: f"GPU-{uuid.UUID(int=rng.getrandbits(128), version=4)}" for gpu in GPUS}
    temperature = {gpu: 40.0 for gpu in GPUS}
    peak = _peak_shape()
    peak_temperature = float(GPU_THERMAL.properties["peak_temperature_c"])
    steps = int((DATA_END - DATA_START).total_seconds() // interval_s)
    for step in range(steps):
        when = DATA_START + timedelta(seconds=step * interval_s)
        load = traffic_shape(when) / peak
        for gpu in GPUS:
            host, index = gpu
            if gpu == IMAGE_REPLICA:
                util = 4 + 55 * load + rng.gauss(0, 6)
                memory = 14_200 + util * 45 + rng.gauss(0, 120)
            else:
                util = 6 + 230 * load * chat_share_of_gpu(gpu, when) + rng.gauss(0, 3.5)
                memory = 71_900 + util * 62 + rng.gauss(0, 150)
                if ERROR_BURST.contains(when) and host == "gpu-node-a":
                    util = 96 + rng.uniform(0, 4)            # saturated: KV cache exhausted
                    memory = MEMORY_TOTAL_MIB - rng.uniform(40, 300)
            util = max(0.0, min(100.0, util))
            power = 72 + 5.9 * util + rng.gauss(0, 8)
            target = 29 + 0.40 * util + (2.0 if host == "gpu-node-a" else 0.0)
            lag = 0.35
            hot = _thermal_target(when) if gpu == THERMAL_GPU else None
            if hot is not None:
                target, lag = hot, 0.2
            temperature[gpu] += lag * (target - temperature[gpu]) + rng.gauss(0, 0.4)
            temp = min(temperature[gpu], peak_temperature)
            clock = MAX_CLOCK_MHZ if util > 3 else 1755
            throttle = "none"   # what NVML's reason bitmask 0 decodes to (collectors/gpu_records)
            if gpu == THERMAL_GPU:
                if GPU_THERMAL.contains(when):
                    util = min(100.0, util + 12)             # slower kernels: busier GPU
                    clock = int(rng.uniform(1050, 1300) // 15 * 15)
                    power = 310 + rng.gauss(0, 15)
                    throttle = THROTTLE_REASON
                    if temp >= 90:   # names and order as collectors/gpu_records decodes them
                        throttle = "sw_thermal_slowdown," + THROTTLE_REASON
            yield {
                "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "host": host,
                "gpu_index": index,
                "gpu_uuid": uuids[gpu],
                "gpu_name": GPU_NAME,
                "utilization_pct": round(util),
                "memory_used_mib": round(min(memory, MEMORY_TOTAL_MIB)),
                "memory_total_mib": MEMORY_TOTAL_MIB,
                "power_w": round(max(power, 60.0), 1),
                "temperature_c": round(temp),
                "sm_clock_mhz": clock,
                "throttle_reasons": throttle,
                "ecc_uncorrected": 0,
            }
