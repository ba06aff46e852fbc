"""CLIP alignment between a prompt and the image generated for it.

clip_score = 100 x max(cos(image embedding, prompt embedding), 0), the torchmetrics
CLIPScore convention; clip_cosine is the raw cosine in [-1, 1].

Throughput: on CUDA images are decoded and preprocessed in DataLoader worker processes
(pinned memory) while the GPU works on the previous batch; on the CPU, where decoding and the
model share the cores, a pool of threads (one per torch thread) decodes each batch between
forward passes. Prompts are embedded once per distinct prompt per run; inference runs under
torch.inference_mode() and, on CUDA, bf16/fp16 autocast with channels_last images.
``precision="int8"`` (CPU only, asked for explicitly) runs the image and text encoders in
ONNX Runtime with dynamically quantised int8 matrix products (evaluators/onnx_int8.py):
faster, but not equal to fp32; it is recorded in every result's details and in
``reference_model`` (``...+int8``).

A sample whose image cannot be used (missing, unreadable, over the size/pixel limits) or
that has no prompt gets an error result with the reason; the rest of its batch is scored
normally.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from genobs.evaluators.clip_backends import ClipBackend, load_clip_backend
from genobs.evaluators.device import autocast, pin_memory, precision_name, resolve_device
from genobs.evaluators.images import ImageError, ImageLimits, load_sample_image
from genobs.evaluators.reference_models import DEFAULT_CLIP_MODEL, ReferenceModelSpec

EVALUATOR = "clip"
CLIP_SCORE = "clip_score"
CLIP_COSINE = "clip_cosine"
MAX_CACHED_PROMPTS = 200_000
# On the CPU the model sees at most this many images (or prompts) per forward pass: a ViT-B/32
# batch of 64 has 40 MB activation tensors, over glibc's 32 MB mmap threshold, so every call
# maps them anew (page faults); chunks of 16 reuse heap memory and so take less CPU time
# (bench/bench_clip.py). fp32 results do not depend on the split beyond float rounding.
CPU_FORWARD_CHUNK = 16


@dataclass(frozen=True)
class ClipItem:
    request_id: str
    prompt: str | None
    image: str | None  # the sample's image field (path, file:// or data: URI)


@dataclass
class ClipResult:
    request_id: str
    clip_score: float | None = None
    clip_cosine: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def default_num_workers(device: torch.device | None = None) -> int:
    """Decode/preprocess workers: on CUDA half the cores, at most 8, at least 1 (processes that
    run while the GPU works); on the CPU one thread per torch thread (they run between forward
    passes, on the cores the model uses)."""
    if device is not None and device.type == "cpu":
        return max(1, torch.get_num_threads())
    return max(1, min(8, (os.cpu_count() or 2) // 2))


class _ImageDataset(Dataset):
    """Decodes and preprocesses one sample's image; errors travel as strings, never raise."""

    def __init__(self, items: Sequence[ClipItem], image_root: Path, limits: ImageLimits, transform: Any,
                 draft_size: int) -> None:
        self.items = items
        self.image_root = image_root
        self.limits = limits
        self.transform = transform
        self.draft_size = draft_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None, tuple[int, int] | None]:
        item = self.items[index]
        if not (item.prompt or "").strip():
            return index, None, "sample has no prompt to compare the image with", None
        try:
            image = load_sample_image(item.image, self.image_root, self.limits, self.draft_size)
            size = image.size
            pixels = self.transform(image)
        except ImageError as exc:
            return index, None, str(exc), None
        except Exception as exc:  # a preprocessing failure on one image must not stop the run
            return index, None, f"image preprocessing failed: {type(exc).__name__}: {exc}", None
        return index, pixels, None, size


def _collate(rows: list[tuple[int, torch.Tensor | None, str | None, tuple[int, int] | None]]) -> dict[str, Any]:
    good = [r for r in rows if r[1] is not None]
    return {
        "indices": [r[0] for r in good],
        "pixels": torch.stack([r[1] for r in good]) if good else None,  # type: ignore[misc]
        "sizes": [r[3] for r in good],
        "errors": [(r[0], r[2]) for r in rows if r[1] is None],
    }


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode; the main process owns the cores for the model


class ClipScorer:
    """Scores (prompt, image) pairs with one CLIP reference model.

    ``score_batches`` streams results batch by batch (the runner commits each); ``score``
    returns them all. The prompt-embedding cache lives as long as the scorer (one run).
    """

    evaluator = EVALUATOR
    metrics = (CLIP_SCORE, CLIP_COSINE)

    def __init__(
        self,
        spec: ReferenceModelSpec = DEFAULT_CLIP_MODEL,
        device: str | torch.device = "auto",
        batch_size: int = 64,
        num_workers: int | None = None,
        image_root: str | Path = ".",
        limits: ImageLimits = ImageLimits(),
        backend: ClipBackend | None = None,
        precision: str = "auto",
    ) -> None:
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.backend = backend or load_clip_backend(spec, self.device, precision)
        self.spec = self.backend.spec
        self.batch_size = max(1, int(batch_size))
        self.num_workers = default_num_workers(self.device) if num_workers is None else max(0, int(num_workers))
        self.image_root = Path(image_root)
        self.limits = limits
        self.forward_chunk = CPU_FORWARD_CHUNK if self.device.type == "cpu" else self.batch_size
        self._text_cache: dict[str, tuple[torch.Tensor, int, bool]] = {}

    @property
    def reference_model(self) -> str:
        return self.backend.reference_model

    # -- text --------------------------------------------------------------------

    def _prompt_embeddings(self, prompts: list[str]) -> tuple[torch.Tensor, list[int], list[bool]]:
        missing = list(dict.fromkeys(p for p in prompts if p not in self._text_cache))
        if missing:
            if len(self._text_cache) + len(missing) > MAX_CACHED_PROMPTS:
                self._text_cache.clear()
            for start in range(0, len(missing), self.forward_chunk):
                chunk = missing[start : start + self.forward_chunk]
                tokens = self.backend.tokenize(chunk)
                with autocast(self.device):
                    features = self.backend.encode_text(tokens.inputs)
                features = torch.nn.functional.normalize(features.float(), dim=-1)
                for i, prompt in enumerate(chunk):
                    self._text_cache[prompt] = (features[i], tokens.token_counts[i], tokens.truncated[i])
        cached = [self._text_cache[p] for p in prompts]
        return torch.stack([c[0] for c in cached]), [c[1] for c in cached], [c[2] for c in cached]

    # -- images ------------------------------------------------------------------

    def _encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        parts = [self.backend.encode_image(part) for part in pixels.split(self.forward_chunk)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _dataset(self, items: Sequence[ClipItem]) -> _ImageDataset:
        return _ImageDataset(items, self.image_root, self.limits, self.backend.image_transform,
                             self.backend.image_size)

    def _batches(self, items: Sequence[ClipItem]) -> Iterator[dict[str, Any]]:
        """Decoded, preprocessed batches: on the CPU from a thread pool, batch by batch between
        forward passes; on CUDA from DataLoader worker processes, while the GPU works."""
        if self.device.type != "cpu":
            yield from self._loader(items)
            return
        dataset = self._dataset(items)
        starts = range(0, len(items), self.batch_size)
        if self.num_workers <= 1:
            for start in starts:
                yield _collate([dataset[i] for i in range(start, min(start + self.batch_size, len(items)))])
            return
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="clip-decode") as pool:
            for start in starts:
                yield _collate(list(pool.map(dataset.__getitem__,
                                             range(start, min(start + self.batch_size, len(items))))))

    def _loader(self, items: Sequence[ClipItem]) -> DataLoader:
        dataset = self._dataset(items)
        workers = self.num_workers if len(items) > self.batch_size else min(self.num_workers, 1)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=workers,
            collate_fn=_collate,
            pin_memory=pin_memory(self.device),
            worker_init_fn=_worker_init if workers else None,
            prefetch_factor=4 if workers else None,
            persistent_workers=False,
        )

    def score_batches(self, items: Sequence[ClipItem]) -> Iterator[list[ClipResult]]:
        """Yield one list of results per batch of ``items`` (in item order within a batch)."""
        if not items:
            return
        base_details: dict[str, Any] = {"precision": precision_name(self.device, self.backend.precision)}
        if self.spec.random_weights:
            base_details["random_weights"] = True
        channels_last = self.device.type == "cuda"
        with torch.inference_mode():
            for batch in self._batches(items):
                results: dict[int, ClipResult] = {
                    index: ClipResult(items[index].request_id, error=reason) for index, reason in batch["errors"]
                }
                if batch["indices"]:
                    pixels = batch["pixels"].to(self.device, non_blocking=True)
                    if channels_last:
                        pixels = pixels.contiguous(memory_format=torch.channels_last)
                    prompts = [items[i].prompt or "" for i in batch["indices"]]
                    text, counts, truncated = self._prompt_embeddings(prompts)
                    with autocast(self.device):
                        image_features = self._encode_images(pixels)
                    image_features = torch.nn.functional.normalize(image_features.float(), dim=-1)
                    cosines = (image_features * text).sum(dim=-1).cpu().tolist()
                    for slot, index in enumerate(batch["indices"]):
                        cosine = float(cosines[slot])
                        details = dict(base_details)
                        details["image_size"] = list(batch["sizes"][slot])
                        if truncated[slot]:
                            details["prompt_truncated"] = True
                            details["prompt_tokens"] = counts[slot]
                            details["context_length"] = self.backend.context_length
                        results[index] = ClipResult(
                            items[index].request_id,
                            clip_score=100.0 * max(cosine, 0.0),
                            clip_cosine=cosine,
                            details=details,
                        )
                yield [results[i] for i in sorted(results)]

    def score(self, items: Sequence[ClipItem]) -> list[ClipResult]:
        return [result for batch in self.score_batches(items) for result in batch]
