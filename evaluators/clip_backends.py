"""CLIP model backends: open_clip and transformers' CLIPModel behind one small interface.

A backend knows how to turn a PIL image into a pixel tensor (``image_transform``, run in
DataLoader worker processes on CUDA, in decode threads on the CPU), how to tokenize prompts
(truncating to the context length while keeping the end-of-text token, and saying which
prompts were truncated), and how to embed pixels and tokens. Scoring (cosines, caching, batching) lives in evaluators/clip.py.

A backend is loaded for one precision (evaluators/device.py): ``auto``, or ``int8`` on the
CPU, whose image and text encoders are exported to ONNX, dynamically quantised to int8 and
run by ONNX Runtime (evaluators/onnx_int8.py); the precision is part of ``reference_model``
so that int8 scores are never mixed with full-precision ones.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from genobs.evaluators.device import Precision, check_precision
from genobs.evaluators.onnx_int8 import OnnxInt8Encoder
from genobs.evaluators.reference_models import (
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
    # precision int8: the encoders in ONNX Runtime (``model`` stays the fp32 torch model)
    int8_image: OnnxInt8Encoder | None = None
    int8_text: OnnxInt8Encoder | None = None

    @property
    def reference_model(self) -> str:
        """The spec's identifier, plus ``+int8`` for the int8 precision."""
        return self.spec.identifier if self.precision == "auto" else f"{self.spec.identifier}+{self.precision}"

    def _apply_precision(self) -> None:
        if self.precision == "int8":
            self.int8_image, self.int8_text = self._int8_encoders()

    @abstractmethod
    def _int8_encoders(self) -> tuple[OnnxInt8Encoder, OnnxInt8Encoder]:
        """The image and text encoders exported to ONNX and quantised (precision int8)."""

    @property
    @abstractmethod
    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """PIL RGB image -> float tensor [3, H, W]; picklable and thread-safe (DataLoader workers
        on CUDA, decode threads on the CPU)."""

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

    def _int8_encoders(self) -> tuple[OnnxInt8Encoder, OnnxInt8Encoder]:
        size = getattr(self.model.visual, "image_size", 224)
        height, width = size if isinstance(size, (tuple, list)) else (size, size)
        image = OnnxInt8Encoder(_OpenClipImage(self.model), {"pixels": torch.zeros(2, 3, int(height), int(width))},
                                {"pixels": [0]}, patch_embeddings=True)
        context = int(getattr(self.model, "context_length", None) or 77)
        tokens = torch.zeros(2, context, dtype=torch.long)
        tokens[:, 0], tokens[:, 1] = 1, 2  # the pooled position (argmax) is data, not a constant
        text = OnnxInt8Encoder(_OpenClipText(self.model), {"text": tokens}, {"text": [0]})
        return image, text

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
        if self.int8_text is not None:
            return self.int8_text(text=inputs["text"])
        return self.model.encode_text(inputs["text"].to(self.device, non_blocking=True))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.int8_image is not None:
            return self.int8_image(pixels=pixels)
        return self.model.encode_image(pixels)


class _OpenClipImage(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.visual = model.visual

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual(pixels)  # what open_clip's encode_image(normalize=False) returns


class _OpenClipText(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model  # encode_text reads the text tower's attributes off the model

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(text)


# --------------------------------------------------------------------------- transformers


class _HFImageTransform:
    """Picklable wrapper: a transformers image processor applied to one PIL image."""

    def __init__(self, image_processor: Any) -> None:
        self.image_processor = image_processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]


class _CLIPImageTransform:
    """transformers' (slow) CLIPImageProcessor for one PIL RGB image, bit for bit, at a third of
    its CPU time: the same PIL bicubic resize (shortest edge) and center crop (zero padding
    where the image is smaller), then rescale and normalise as one 256-entry lookup table per
    channel, computed with the processor's own float64/float32 arithmetic, instead of three
    passes over float arrays. ``for_processor`` returns None for any configuration it does not
    reproduce (the processor itself is used then); tests/test_clip.py compares the two.
    """

    def __init__(self, shortest_edge: int, crop: tuple[int, int], resample: int, table: np.ndarray,
                 fallback: _HFImageTransform) -> None:
        self.shortest_edge = shortest_edge
        self.crop_height, self.crop_width = crop
        self.resample = resample
        self.tables = [np.ascontiguousarray(table[:, c]) for c in range(table.shape[1])]  # per channel: [256]
        self.fallback = fallback

    @classmethod
    def for_processor(cls, processor: Any) -> "_CLIPImageTransform | None":
        from transformers import CLIPImageProcessor

        size, crop = processor.size or {}, processor.crop_size or {}
        if not (
            type(processor) is CLIPImageProcessor
            and processor.do_resize and set(size) == {"shortest_edge"}
            and processor.do_center_crop and set(crop) == {"height", "width"}
            and processor.do_rescale and processor.do_normalize and processor.do_convert_rgb is not False
            and len(processor.image_mean) == len(processor.image_std) == 3
        ):
            return None
        # transformers' rescale (float64 multiply, then float32) and normalize (float32).
        scaled = (np.arange(256, dtype=np.uint8).astype(np.float64) * processor.rescale_factor).astype(np.float32)
        mean = np.array(processor.image_mean, dtype=np.float32)
        std = np.array(processor.image_std, dtype=np.float32)
        table = (scaled[:, None] - mean) / std  # [256, 3] float32
        return cls(int(size["shortest_edge"]), (int(crop["height"]), int(crop["width"])), int(processor.resample),
                   table, _HFImageTransform(processor))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB" or min(image.size) <= 3:
            # transformers guesses the channel axis from the array shape: a side of 1 or 3
            # pixels reads as channels; the processor itself decides what happens then
            return self.fallback(image)
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        new_height, new_width = (new_long, new_short) if width <= height else (new_short, new_long)
        pixels = np.asarray(image.resize((new_width, new_height), resample=self.resample))
        top, left = (new_height - self.crop_height) // 2, (new_width - self.crop_width) // 2
        if top >= 0 and left >= 0:
            pixels = pixels[top : top + self.crop_height, left : left + self.crop_width]
        else:  # smaller than the crop: centred on zeros, as transformers' center_crop pads
            canvas = np.zeros((max(self.crop_height, new_height), max(self.crop_width, new_width), 3), np.uint8)
            pad_top = -((new_height - canvas.shape[0]) // 2)  # ceil((canvas - image) / 2)
            pad_left = -((new_width - canvas.shape[1]) // 2)
            canvas[pad_top : pad_top + new_height, pad_left : pad_left + new_width] = pixels
            top, left = max(0, top + pad_top), max(0, left + pad_left)
            pixels = canvas[top : top + self.crop_height, left : left + self.crop_width]
        return torch.from_numpy(np.stack([table.take(pixels[..., c]) for c, table in enumerate(self.tables)]))


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
        self.processor = AutoProcessor.from_pretrained(directory)
        self.tokenizer = self.processor.tokenizer
        self.context_length = int(model.config.text_config.max_position_embeddings)
        self.image_size = int(model.config.vision_config.image_size)
        processor = self.processor.image_processor
        self._transform = _CLIPImageTransform.for_processor(processor) or _HFImageTransform(processor)
        self._apply_precision()

    def _int8_encoders(self) -> tuple[OnnxInt8Encoder, OnnxInt8Encoder]:
        generator = torch.Generator().manual_seed(0)
        pixels = torch.randn(2, 3, self.image_size, self.image_size, generator=generator)
        wrapper = _HFImage(self.model)
        with torch.inference_mode():
            full, pruned = self.model.get_image_features(pixel_values=pixels), wrapper(pixels)
        if not torch.allclose(pruned, full, rtol=1e-4, atol=1e-4 * float(full.abs().max())):
            # a transformers version whose CLIP layers compute differently: export it whole
            warnings.warn("int8 export: the class-token-only last layer does not reproduce "
                          "get_image_features; exporting the full vision tower", RuntimeWarning, stacklevel=2)
            wrapper = _HFImage(self.model, class_token_only=False)
        image = OnnxInt8Encoder(wrapper, {"pixel_values": pixels}, {"pixel_values": [0]}, patch_embeddings=True)
        ids = torch.full((2, 8), self.tokenizer.eos_token_id, dtype=torch.long)
        ids[:, :-1] = 1
        text = OnnxInt8Encoder(_HFText(self.model), {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                               {"input_ids": [0, 1], "attention_mask": [0, 1]})
        return image, text

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
        if self.int8_text is not None:
            return self.int8_text(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        return self.model.get_text_features(
            input_ids=inputs["input_ids"].to(self.device, non_blocking=True),
            attention_mask=inputs["attention_mask"].to(self.device, non_blocking=True),
        )

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.int8_image is not None:
            return self.int8_image(pixel_values=pixels)
        return self.model.get_image_features(pixel_values=pixels)


class _HFImage(torch.nn.Module):
    """CLIPModel.get_image_features with only the vision tower (what the int8 export copies).

    CLIP pools the class token (position 0) of the last layer's output, so the last layer
    only computes that token: its attention query, output projection and MLP for one token
    instead of all 50 (ViT-B/32), with keys and values from all of them. The same function
    (equal to ``get_image_features`` up to float rounding, checked at load), with ~7% fewer
    multiply-adds.
    """

    def __init__(self, model: torch.nn.Module, class_token_only: bool = True) -> None:
        super().__init__()
        self.vision_model, self.visual_projection = model.vision_model, model.visual_projection
        self.class_token_only = class_token_only

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if not self.class_token_only:
            return self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output)
        vision = self.vision_model
        hidden = vision.pre_layrnorm(vision.embeddings(pixel_values))
        layers = vision.encoder.layers
        for layer in layers[:-1]:
            hidden = layer(hidden, None, None)[0]
        pooled = _class_token_of_last_layer(layers[-1], hidden)
        return self.visual_projection(vision.post_layernorm(pooled))


def _class_token_of_last_layer(layer: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """A transformers CLIPEncoderLayer's output at position 0 only (no attention mask)."""
    attn = layer.self_attn
    batch, length, width = hidden.shape
    x = layer.layer_norm1(hidden)

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(batch, t.shape[1], attn.num_heads, attn.head_dim).transpose(1, 2)

    out = torch.nn.functional.scaled_dot_product_attention(
        heads(attn.q_proj(x[:, :1])), heads(attn.k_proj(x)), heads(attn.v_proj(x)), scale=attn.scale
    )
    token = hidden[:, :1] + attn.out_proj(out.transpose(1, 2).reshape(batch, 1, width))
    token = token + layer.mlp(layer.layer_norm2(token))
    return token[:, 0]


class _HFText(torch.nn.Module):
    """CLIPModel.get_text_features with only the text tower."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.text_model, self.text_projection = model.text_model, model.text_projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text_projection(self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output)


_BACKENDS: dict[str, type[ClipBackend]] = {
    "open_clip": OpenClipBackend,
    "transformers": TransformersClipBackend,
}


def load_clip_backend(spec: ReferenceModelSpec, device: torch.device, precision: str = "auto") -> ClipBackend:
    """The backend for ``spec`` on ``device`` at ``precision``, loaded once per process."""
    checked = check_precision(precision, device)
    backend_class = _BACKENDS[spec.backend]
    return load_once(("clip", spec, str(device), checked), lambda: backend_class(spec, device, checked))
