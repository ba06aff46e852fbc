"""The shape of demo traffic over time: a diurnal curve, quieter weekends, and who serves a
request (model version, variant, host/GPU) at a given moment."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from genobs.sample_data.timeline import (
    CANARY_SHARE,
    CANARY_START,
    DATA_END,
    DATA_START,
    ROLLOUT_END,
    ROLLOUT_START,
)

MINUTES = int((DATA_END - DATA_START).total_seconds() // 60)

# Chat replicas: (host, gpu_index) -> share of non-canary traffic. The canary runs alone on
# gpu-node-b GPU 0; image generation has gpu-node-b GPU 1 to itself.
CHAT_REPLICAS: dict[tuple[str, int], float] = {
    ("gpu-node-a", 0): 0.36, ("gpu-node-a", 1): 0.36, ("gpu-node-b", 0): 0.28,
}
CANARY_REPLICA = ("gpu-node-b", 0)
IMAGE_REPLICA = ("gpu-node-b", 1)
GPUS: tuple[tuple[str, int], ...] = (
    ("gpu-node-a", 0), ("gpu-node-a", 1), ("gpu-node-b", 0), ("gpu-node-b", 1),
)


def minute_start(index: int) -> datetime:
    return DATA_START + timedelta(minutes=index)


def traffic_shape(when: datetime) -> float:
    """Relative request rate: a peak in the European/US afternoon, a smaller APAC bump at
    night, weekends at 60 %."""
    hour = when.hour + when.minute / 60.0
    day_peak = math.exp(-0.5 * ((hour - 14.5) / 4.0) ** 2)
    night_bump = 0.25 * math.exp(-0.5 * ((hour - 3.0) / 2.5) ** 2)
    weekend = 0.6 if when.weekday() >= 5 else 1.0
    return (0.30 + day_peak + night_bump) * weekend


def expected_per_minute(total: float) -> list[float]:
    """Expected request count in each minute of the data span, summing to ``total``."""
    shape = [traffic_shape(minute_start(i)) for i in range(MINUTES)]
    norm = total / sum(shape)
    return [s * norm for s in shape]


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; fine for the small per-minute rates used here."""
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def v15_share(when: datetime) -> float:
    """Share of chat traffic on v1.5 during the v1.4 -> v1.5 rollout."""
    if when < ROLLOUT_START:
        return 0.0
    if when >= ROLLOUT_END:
        return 1.0
    return (when - ROLLOUT_START) / (ROLLOUT_END - ROLLOUT_START)


@dataclass(frozen=True)
class Deployment:
    model_version: str
    variant: str
    host: str
    gpu_index: int


def chat_deployment(rng: random.Random, when: datetime) -> Deployment:
    """Which model version, arm and replica serve a chat request at ``when``."""
    if when >= CANARY_START:
        if rng.random() < CANARY_SHARE:
            return Deployment("v1.6", "canary", *CANARY_REPLICA)
        version, variant = "v1.5", "baseline"
    else:
        version = "v1.5" if rng.random() < v15_share(when) else "v1.4"
        variant = "primary"
    replicas = list(CHAT_REPLICAS)
    host, gpu = rng.choices(replicas, weights=[CHAT_REPLICAS[r] for r in replicas])[0]
    return Deployment(version, variant, host, gpu)


def chat_share_of_gpu(gpu: tuple[str, int], when: datetime) -> float:
    """Expected share of all chat traffic that ``gpu`` serves at ``when``."""
    base = CHAT_REPLICAS.get(gpu, 0.0)
    if when < CANARY_START:
        return base
    return base * (1 - CANARY_SHARE) + (CANARY_SHARE if gpu == CANARY_REPLICA else 0.0)
