"""Random-initialised CLIP models written to a local directory, for tests and benchmarks.

Nothing here downloads: the tokenizer files are built from the BPE vocabulary that
open_clip ships (``bpe_simple_vocab_16e6.txt.gz``), which is the vocabulary of the
original CLIP tokenizer; open_clip's ``<start_of_text>``/``<end_of_text>`` are
transformers' ``<|startoftext|>``/``<|endoftext|>``.

Two sizes: ``"tiny"`` (a few MB, milliseconds per image, for tests) and ``"vit-b-32"``
(the ViT-B/32 architecture, ~150M parameters, for benchmarks).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Literal

import torch

ModelSize = Literal["tiny", "vit-b-32"]

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
VOCAB_SIZE = 49408
CONTEXT_LENGTH = 77


def _bpe_path() -> Path:
    import open_clip.tokenizer

    return Path(open_clip.tokenizer.default_bpe())


def write_clip_tokenizer_files(directory: str | Path) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` for a transformers CLIPTokenizer.

    The vocabulary is built exactly as open_clip's SimpleTokenizer builds it, so token ids
    agree between the two libraries.
    """
    from open_clip.tokenizer import bytes_to_unicode

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(_bpe_path()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    vocab += ["".join(merge.split()) for merge in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    vocab_file = directory / "vocab.json"
    merges_file = directory / "merges.txt"
    vocab_file.write_text(json.dumps({token: i for i, token in enumerate(vocab)}), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file


def _transformers_config(size: ModelSize):  # -> transformers.CLIPConfig
    from transformers import CLIPConfig

    if size == "vit-b-32":
        return CLIPConfig()  # the defaults are ViT-B/32 (openai/clip-vit-base-patch32)
    return CLIPConfig(
        text_config=dict(
            vocab_size=VOCAB_SIZE,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=CONTEXT_LENGTH,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )


def save_random_transformers_clip(
    directory: str | Path, size: ModelSize = "tiny", seed: int = 0, weights: bool = True
) -> Path:
    """Save a random-initialised ``CLIPModel`` with its ``CLIPProcessor`` to ``directory``.

    ``weights=False`` writes only config.json and the processor files: enough for the
    transformers backend with ``pretrained: none`` (it initialises the weights itself).
    """
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = _transformers_config(size)
    if weights:
        torch.manual_seed(seed)
        CLIPModel(config).eval().save_pretrained(directory)
    else:
        config.save_pretrained(directory)
    vocab_file, merges_file = write_clip_tokenizer_files(directory / "_tokenizer_src")
    tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file))
    image_size = config.vision_config.image_size
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=OPENAI_MEAN,
        image_std=OPENAI_STD,
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def _open_clip_model_cfg(size: ModelSize) -> dict:
    if size == "vit-b-32":
        from open_clip import get_model_config

        return get_model_config("ViT-B-32")
    return {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {
            "context_length": CONTEXT_LENGTH,
            "vocab_size": VOCAB_SIZE,
            "width": 32,
            "heads": 2,
            "layers": 2,
        },
    }


def save_random_open_clip(directory: str | Path, size: ModelSize = "tiny", seed: int = 0) -> Path:
    """Save a random-initialised open_clip model as a ``local-dir:`` model directory.

    The directory holds ``open_clip_config.json`` (model and preprocess config) and
    ``open_clip_model.safetensors``, the layout open_clip loads with ``local-dir:PATH``.
    """
    import open_clip
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_cfg = _open_clip_model_cfg(size)
    config = {
        "model_cfg": model_cfg,
        "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD, "interpolation": "bicubic", "resize_mode": "shortest"},
    }
    (directory / "open_clip_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{directory}", load_weights=False, pretrained_text=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "open_clip_model.safetensors"))
    return directory
