"""CLIP model backends: open_clip and transformers' CLIPModel behind one small interface.

A backend knows how to turn a PIL image into a pixel tensor (``image_transform``, run in
DataLoader workers), how to tokenize prompts (truncating to the context length while
keeping the end-of-text token, and saying which prompts were truncated), and how to embed
pixels and tokens. Scoring (cosines, caching, batching) lives in evaluators/clip.py.

A backend is loaded for one precision (evaluators/device.py): ``auto``, or ``int8`` on the
CPU, whose model has its ``nn.Linear`` layers dynamically quantised; the precision is part
of ``reference_model`` so that int8 scores are never mixed with full-precision ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import torch
from PIL import Image

from evaluators.device import Precision, check_precision, quantize_linear_int8
from evaluators.reference_models import (
    ReferenceModelSpec,
    load_once,
    resolve_open_clip,
    resolve_transformers_dir,
)


@dataclass
class TokenizedPrompts:
    inputs: dict[str, torch.Tensor]  # model inputs (input_ids / attention_mask or "text")
    token_counts: list[int]  # tokens including start/end markers, before truncation
    truncated: list[bool]


class ClipBackend(ABC):
    spec: ReferenceModelSpec
    device: torch.device
    precision: Precision = "auto"
    model: torch.nn.Module
    context_length: int
    image_size: int

    @property
    def reference_model(self) -> str:
        """The spec's identifier, plus ``+int8`` for the int8 precision."""
        return self.spec.identifier if self.precision == "auto" else f"{self.spec.identifier}+{self.precision}"

    def _apply_precision(self) -> None:
        if self.precision == "int8":
            self.model = quantize_linear_int8(self.model)

    @property
    @abstractmethod
    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """PIL RGB image -> float tensor [3, H, W]; picklable, runs in DataLoader workers."""

    @abstractmethod
    def tokenize(self, prompts: list[str]) -> TokenizedPrompts: ...

    @abstractmethod
    def encode_text(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @abstractmethod
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor: ...


def _pad(sequences: list[list[int]], pad_id: int, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    width = length or max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def _truncate_keep_end(tokens: list[int], context_length: int, end_id: int) -> list[int]:
    if len(tokens) <= context_length:
        return tokens
    return tokens[: context_length - 1] + [end_id]


# --------------------------------------------------------------------------- open_clip


class OpenClipBackend(ClipBackend):
    def __init__(self, spec: ReferenceModelSpec, device: torch.device, precision: Precision = "auto") -> None:
        import open_clip

        source = resolve_open_clip(spec)
        self.spec = spec
        self.device = device
        self.precision = precision
        pre = source.preprocess
        if spec.random_weights:
            torch.manual_seed(0)  # the same random model in every process and at every precision
        model, _, preprocess = open_clip.create_model_and_transforms(
            source.model_name,
            pretrained=None if source.model_name.startswith("local-dir:") else source.checkpoint,
            load_weights=not spec.random_weights,
            force_quick_gelu=source.quick_gelu,
            pretrained_image=False,
            pretrained_text=False,
            require_pretrained=not spec.random_weights,
            image_mean=pre.get("mean"),
            image_std=pre.get("std"),
            image_interpolation=pre.get("interpolation"),
            image_resize_mode=pre.get("resize_mode"),
            device="cpu",
        )
        self.model = model.eval().to(device)
        if device.type == "cuda":
            self.model.visual.to(memory_format=torch.channels_last)
        self._apply_precision()
        self._preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(source.model_name)
        self.context_length = int(getattr(self.model, "context_length", None) or self.tokenizer.context_length)
        image_size = getattr(self.model.visual, "image_size", 224)
        self.image_size = int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)

    def _apply_precision(self) -> None:
        super()._apply_precision()
        if self.precision == "int8":
            # open_clip reads a block's compute dtype from ``mlp.c_fc.weight``, which a quantised
            # layer does not have; ``int8_original_dtype`` is open_clip's own hook for int8 layers.
            for module in self.model.modules():
                if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
                    module.int8_original_dtype = torch.float32

    @property
    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return self._preprocess

    def tokenize(self, prompts: list[str]) -> TokenizedPrompts:
        from open_clip.tokenizer import SimpleTokenizer

        tok = self.tokenizer
        if isinstance(tok, SimpleTokenizer) and tok.reduction_fn is None:
            full = [[tok.sot_token_id, *tok.encode(p), tok.eot_token_id] for p in prompts]
            kept = [_truncate_keep_end(t, self.context_length, tok.eot_token_id) for t in full]
            ids, _ = _pad(kept, 0, self.context_length)
            return TokenizedPrompts({"text": ids}, [len(t) for t in full], [len(t) > self.context_length for t in full])
        # Other tokenizers (HF-based text towers) truncate internally; lengths unknown.
        ids = tok(prompts, context_length=self.context_length)
        return TokenizedPrompts({"text": ids}, [-1] * len(prompts), [False] * len(prompts))

    def encode_text(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.encode_text(inputs["text"].to(self.device, non_blocking=True))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)


# --------------------------------------------------------------------------- transformers


class _HFImageTransform:
    """Picklable wrapper: a transformers image processor applied to one PIL image."""

    def __init__(self, image_processor: Any) -> None:
        self.image_processor = image_processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]


class TransformersClipBackend(ClipBackend):
    def __init__(self, spec: ReferenceModelSpec, device: torch.device, precision: Precision = "auto") -> None:
        from transformers import AutoProcessor, CLIPConfig, CLIPModel

        directory = resolve_transformers_dir(spec)
        self.spec = spec
        self.device = device
        self.precision = precision
        if spec.random_weights:
            torch.manual_seed(0)
            model = CLIPModel(CLIPConfig.from_pretrained(directory))
        else:
            model = CLIPModel.from_pretrained(directory)
        self.model = model.eval().to(device)
        self._apply_precision()
        self.processor = AutoProcessor.from_pretrained(directory)
        self.tokenizer = self.processor.tokenizer
        self.context_length = int(model.config.text_config.max_position_embeddings)
        self.image_size = int(model.config.vision_config.image_size)
        self._transform = _HFImageTransform(self.processor.image_processor)

    @property
    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return self._transform

    def tokenize(self, prompts: list[str]) -> TokenizedPrompts:
        full = self.tokenizer(prompts, padding=False, truncation=False, verbose=False)["input_ids"]
        end_id = self.tokenizer.eos_token_id
        kept = [_truncate_keep_end(list(t), self.context_length, end_id) for t in full]
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else end_id
        ids, mask = _pad(kept, pad_id)
        return TokenizedPrompts(
            {"input_ids": ids, "attention_mask": mask},
            [len(t) for t in full],
            [len(t) > self.context_length for t in full],
        )

    def encode_text(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.get_text_features(
            input_ids=inputs["input_ids"].to(self.device, non_blocking=True),
            attention_mask=inputs["attention_mask"].to(self.device, non_blocking=True),
        )

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.get_image_features(pixel_values=pixels)


_BACKENDS: dict[str, type[ClipBackend]] = {
    "open_clip": OpenClipBackend,
    "transformers": TransformersClipBackend,
}


def load_clip_backend(spec: ReferenceModelSpec, device: torch.device, precision: str = "auto") -> ClipBackend:
    """The backend for ``spec`` on ``device`` at ``precision``, loaded once per process."""
    checked = check_precision(precision, device)
    backend_class = _BACKENDS[spec.backend]
    return load_once(("clip", spec, str(device), checked), lambda: backend_class(spec, device, checked))
