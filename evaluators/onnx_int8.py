"""int8 CPU inference for reference models: export to ONNX, quantise dynamically, run with ONNX Runtime.

Precision ``int8`` (evaluators/device.py) runs a model's encoders this way:

1. a copy of the encoder is exported to ONNX (torch's TorchScript-based exporter, fp32, batch
   and sequence axes dynamic); patch-embedding convolutions (kernel = stride, no padding, the
   ViT stem) are rewritten first as a reshape and a matrix product, exactly equal in fp32, so
   that they are quantised like every other matrix product (ONNX Runtime's int8 convolution is
   several times slower on x86 than a matrix product of the same size);
2. ``onnxruntime.quantization.quantize_dynamic`` quantises every MatMul/Gemm weight to int8 per
   output channel (reduce_range: 7-bit weights, so that AVX2's 16-bit intermediate sums do not
   saturate); activations are quantised to uint8 per tensor, per call;
3. ONNX Runtime's CPU provider (MLAS int8 kernels; fused QuickGelu, layer norm, attention
   pieces) runs it with as many threads as torch uses.

Why ONNX Runtime and not torch's own dynamic quantisation of nn.Linear: torch quantises only
the linear layers and leaves the element-wise work (QuickGELU as three passes), layer norms,
attention and the patch embedding in separate fp32 ops, which then take most of the time;
ONNX Runtime fuses them around its int8 matrix products. The scores are not equal to fp32;
bench/bench_clip.py reports the speed and the deviation (bench/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

ONNX_OPSET = 17
# How quantize_dynamic is called; part of the cache key (change it when the call changes).
QUANTISATION = "MatMul,Gemm;QInt8;per_channel;reduce_range"


def cache_dir() -> Path:
    """Where quantised models are kept between processes: ``$GENOBS_CACHE_DIR/onnx-int8``
    (default ``$XDG_CACHE_HOME/genobs``, i.e. ``~/.cache/genobs``)."""
    root = os.environ.get("GENOBS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "genobs")
    return Path(root) / "onnx-int8"


def _cache_key(fp32_path: Path, onnxruntime_version: str) -> str:
    """The quantised model depends only on the exported fp32 graph (its bytes: weights
    included), the quantisation settings and ONNX Runtime's version."""
    digest = hashlib.sha256(f"{QUANTISATION};onnxruntime {onnxruntime_version};".encode())
    with open(fp32_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


class OnnxRuntimeMissing(ImportError):
    """onnxruntime / onnx are not installed."""


class PatchEmbeddingAsMatMul(torch.nn.Module):
    """A Conv2d with kernel = stride and no padding, as reshape + matrix product (same output)."""

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        super().__init__()
        self.patch = int(conv.kernel_size[0])
        self.out_channels = int(conv.out_channels)
        weight = conv.weight.detach().reshape(conv.out_channels, -1)
        self.weight = torch.nn.Parameter(weight.t().contiguous(), requires_grad=False)
        self.bias = None if conv.bias is None else torch.nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        p = self.patch
        h, w = height // p, width // p
        if height % p or width % p:  # decided at export time: the image axes are not dynamic
            x = x[:, :, : h * p, : w * p]  # what a stride-p conv without padding sees
        patches = x.reshape(b, c, h, p, w, p).permute(0, 2, 4, 1, 3, 5).reshape(b, h * w, c * p * p)
        y = patches @ self.weight
        if self.bias is not None:
            y = y + self.bias
        return y.transpose(1, 2).reshape(b, self.out_channels, h, w)


def _is_patch_embedding(module: torch.nn.Module) -> bool:
    return (
        type(module) is torch.nn.Conv2d
        and module.kernel_size[0] == module.kernel_size[1] == module.stride[0] == module.stride[1]
        and tuple(module.padding) == (0, 0)
        and tuple(module.dilation) == (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
    )


def patch_embeddings_as_matmul(model: torch.nn.Module) -> int:
    """Replace ``model``'s patch-embedding convolutions in place; returns how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if _is_patch_embedding(child):
                setattr(parent, name, PatchEmbeddingAsMatMul(child))
                replaced += 1
    return replaced


class _DropMessages(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


@contextlib.contextmanager
def _no_preprocessing_advice():
    """quantize_dynamic logs (on the root logger) advice for static quantisation; not ours."""
    drop = _DropMessages("Please consider to run pre-processing before quantization")
    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


@contextlib.contextmanager
def _mha_fastpath_off():
    """nn.MultiheadAttention's inference fast path is one fused op that ONNX cannot express."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def _import_onnxruntime():  # -> module
    try:
        import onnx  # noqa: F401  (the quantiser needs it)
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - both are dependencies of genobs
        raise OnnxRuntimeMissing(
            f"precision int8 runs the model with ONNX Runtime: pip install onnxruntime onnx ({exc})"
        ) from exc
    return onnxruntime


def _keep(path: Path, cached: Path) -> None:
    """Copy ``path`` to ``cached`` atomically (a reader never sees half a file; two
    processes writing the same key write the same bytes). A cache that cannot be written
    (read-only home, full disk) only costs the next process the quantisation."""
    partial = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, partial)
        os.replace(partial, cached)
    except OSError as exc:
        logging.getLogger(__name__).warning("cannot keep the quantised model in %s: %s", cached.parent, exc)
        with contextlib.suppress(OSError):
            partial.unlink()


class OnnxInt8Encoder:
    """One encoder (a module mapping named tensors to one tensor), int8 in ONNX Runtime.

    ``module`` (fp32, on the CPU, in eval mode) is left as it is: with ``patch_embeddings``
    (image encoders) a copy has its patch-embedding convolutions rewritten as matrix products
    before the export. ``example_inputs`` give the names, dtypes
    and ranks of the inputs (their sizes only steer the export); every axis listed in
    ``dynamic_axes`` may differ at run time.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        example_inputs: dict[str, torch.Tensor],
        dynamic_axes: dict[str, Sequence[int]],
        threads: int | None = None,
        patch_embeddings: bool = False,
    ) -> None:
        ort = _import_onnxruntime()
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        if patch_embeddings and any(_is_patch_embedding(m) for m in module.modules()):
            module = copy.deepcopy(module)
            patch_embeddings_as_matmul(module)
        self.input_names = list(example_inputs)
        axes = {name: {axis: f"{name}_{axis}" for axis in dynamic_axes.get(name, ())} for name in self.input_names}
        axes["output"] = {0: f"{self.input_names[0]}_0"}
        with tempfile.TemporaryDirectory(prefix="genobs-onnx-") as tmp:
            fp32_path, int8_path = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            with warnings.catch_warnings(), torch.no_grad(), _mha_fastpath_off():
                warnings.simplefilter("ignore")  # tracer and exporter deprecation chatter
                torch.onnx.export(
                    module,
                    tuple(example_inputs.values()),
                    str(fp32_path),
                    input_names=self.input_names,
                    output_names=["output"],
                    dynamic_axes=axes,
                    opset_version=ONNX_OPSET,
                    do_constant_folding=True,
                    dynamo=False,
                )
            # Quantising takes most of the load (about 17 of 20 s for a ViT-B/32), so its result
            # is kept on disk, keyed by the exported graph: a later process exports again
            # (a few seconds) and, finding the same bytes, loads the quantised model.
            cached = cache_dir() / f"{_cache_key(fp32_path, ort.__version__)}.onnx"
            self.from_cache = cached.is_file()
            if self.from_cache:
                int8_path = cached
            else:
                with _no_preprocessing_advice():
                    quantize_dynamic(
                        str(fp32_path),
                        str(int8_path),
                        weight_type=QuantType.QInt8,
                        per_channel=True,
                        reduce_range=True,
                        op_types_to_quantize=["MatMul", "Gemm"],
                    )
                _keep(int8_path, cached)
            ops = [node.op_type for node in onnx.load(str(int8_path), load_external_data=False).graph.node]
            # int8 matrix products in the quantised graph (the tests check that there are some)
            self.int8_matmuls = sum(op in ("MatMulInteger", "DynamicQuantizeMatMul") for op in ops)
            options = ort.SessionOptions()
            options.intra_op_num_threads = max(1, threads or torch.get_num_threads())
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # No busy-waiting between calls: on the CPU the scorer decodes the next batch (and
            # other processes run) on these cores while the model is idle.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"])

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        feeds = {name: np.ascontiguousarray(inputs[name].detach().cpu().numpy()) for name in self.input_names}
        (output,) = self.session.run(["output"], feeds)
        return torch.from_numpy(output)
