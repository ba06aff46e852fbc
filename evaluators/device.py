"""Device selection and reduced precision for reference models.

``auto`` picks CUDA when a GPU is visible and the CPU otherwise. Precision ``auto`` (the
default): on CUDA, models run under autocast in bf16 (fp16 where the GPU lacks bf16); on
the CPU they run in fp32. Precision ``int8`` (CPU only, asked for explicitly): the model's
``nn.Linear`` layers are dynamically quantised to int8 (weights per output channel,
activations per call; PyTorch's fbgemm/x86 kernels): about 1.5x less CPU time for a ViT-B
on an AVX2 CPU, with scores that deviate slightly from fp32, so it is recorded in every
score row.
"""

from __future__ import annotations

import contextlib
import warnings
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
            f"precision int8 is for the CPU (dynamic int8 kernels); on {device} use precision auto "
            "(bf16/fp16 autocast)"
        )
    return precision  # type: ignore[return-value]


def precision_name(device: torch.device, precision: str = "auto") -> str:
    """What score rows record: fp32, bf16, fp16 or int8."""
    if precision == "int8":
        return "int8"
    dtype = autocast_dtype(device)
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def quantize_linear_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamically quantise ``model``'s ``nn.Linear`` layers to int8, in place (CPU inference).

    Weights are quantised once per output channel; activations per call, per tensor.
    Subclasses of ``nn.Linear`` (e.g. ``nn.MultiheadAttention``'s output projection) and
    non-linear layers stay fp32.
    """
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, but it is the eager-mode
        # dynamic int8 path that ships with torch (and the fast one on x86 CPUs).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*deprecated")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                                inplace=True)


def pin_memory(device: torch.device) -> bool:
    """Pinned host memory speeds host-to-GPU copies; it is pointless on the CPU."""
    return device.type == "cuda"
