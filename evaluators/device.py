"""Device selection and reduced precision for reference models.

``auto`` picks CUDA when a GPU is visible and the CPU otherwise. Precision ``auto`` (the
default): on CUDA, models run under autocast in bf16 (fp16 where the GPU lacks bf16); on
the CPU they run in fp32. Precision ``int8`` (CPU only, asked for explicitly): the model's
encoders are exported to ONNX, their matrix products dynamically quantised to int8 (weights
per output channel, activations per call) and run by ONNX Runtime (evaluators/onnx_int8.py):
about half the CPU time of fp32 for a ViT-B on an AVX2 CPU, with scores that deviate
slightly from fp32, so it is recorded in every score row.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Literal

import torch

DeviceChoice = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "int8")


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


def check_precision(precision: str, device: torch.device) -> Precision:
    """Validate a precision setting for ``device``; DeviceError says what is allowed."""
    if precision not in PRECISIONS:
        raise DeviceError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "int8" and device.type != "cpu":
        raise DeviceError(
            f"precision int8 is for the CPU (ONNX Runtime's int8 kernels); on {device} use precision auto "
            "(bf16/fp16 autocast)"
        )
    return precision  # type: ignore[return-value]


def precision_name(device: torch.device, precision: str = "auto") -> str:
    """What score rows record: fp32, bf16, fp16 or int8."""
    if precision == "int8":
        return "int8"
    dtype = autocast_dtype(device)
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def pin_memory(device: torch.device) -> bool:
    """Pinned host memory speeds host-to-GPU copies; it is pointless on the CPU."""
    return device.type == "cuda"
