"""Device selection and mixed precision for reference models.

``auto`` picks CUDA when a GPU is visible and the CPU otherwise. On CUDA, models run
under autocast in bf16 (fp16 where the GPU lacks bf16); on the CPU they run in fp32.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Literal

import torch

DeviceChoice = Literal["auto", "cpu", "cuda"]


class DeviceError(Exception):
    """The requested device cannot be used (message is shown as is)."""


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` / ``cuda:N`` / ``cpu`` as given.

    Raises DeviceError for CUDA on a machine without a usable GPU, or an unknown name.
    """
    choice = (requested or "auto").strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {requested}: no CUDA GPU is available to this process "
                "(torch.cuda.is_available() is False); use --device cpu or --device auto"
            )
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
        return device
    raise DeviceError(f"--device {requested}: expected auto, cpu or cuda[:N]")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that support it, fp16 on older GPUs, None (fp32) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device) -> ContextManager[object]:
    """Mixed-precision context for inference on ``device`` (a no-op on the CPU)."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def precision_name(device: torch.device) -> str:
    dtype = autocast_dtype(device)
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def pin_memory(device: torch.device) -> bool:
    """Pinned host memory speeds host-to-GPU copies; it is pointless on the CPU."""
    return device.type == "cuda"
