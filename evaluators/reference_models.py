"""Reference models: what is configured, where its weights are, loading each once.

Offline is the normal case (DESIGN §5). Weights come from a local path or the local
Hugging Face cache, never from the network; when they are missing, ReferenceModelMissing
says which model, where it looked and how to provide the weights. A configured model is
never silently replaced: ``pretrained: none`` (random weights, for tests) must be asked for
and is recorded in every score row (the reference-model id ends in ``@random-init``).

Config (``genobs.yaml``, ``evaluators.clip``)::

    backend: open_clip            # open_clip | transformers
    model: ViT-B-32               # open_clip: built-in name, or a local model directory
                                  #   (open_clip_config.json + weights; "local-dir:" optional)
                                  # transformers: a local directory, or a hub id found in
                                  #   the local Hugging Face cache
    pretrained: laion2b_s34b_b79k # open_clip: a pretrained tag (looked up in the local HF
                                  #   cache) or a checkpoint file; "none" = random weights
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

Backend = Literal["open_clip", "transformers"]
BACKENDS: tuple[str, ...] = ("open_clip", "transformers")
RANDOM_WEIGHTS = "none"

T = TypeVar("T")


class ReferenceModelError(Exception):
    """A reference model is misconfigured (message names the key and the fix)."""


class ReferenceModelMissing(ReferenceModelError):
    """A configured reference model's weights are not on this machine."""

    def __init__(self, model: str, looked_in: list[str], how_to_provide: str) -> None:
        self.model = model
        self.looked_in = list(looked_in)
        self.how_to_provide = how_to_provide
        places = "\n".join(f"  - {place}" for place in self.looked_in) or "  - (nowhere)"
        super().__init__(
            f"reference model {model} is not available offline.\nLooked in:\n{places}\n"
            f"To provide it: {how_to_provide}"
        )


@dataclass(frozen=True)
class ReferenceModelSpec:
    backend: str
    model: str
    pretrained: str | None = None
    cache_dir: str | None = None  # Hugging Face hub cache; default: HF_HUB_CACHE / ~/.cache/huggingface/hub

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ReferenceModelError(
                f"evaluators.clip.backend: {self.backend!r} is not one of {', '.join(BACKENDS)}"
            )
        if not self.model:
            raise ReferenceModelError("evaluators.clip.model: must name a model or a local path")

    @property
    def random_weights(self) -> bool:
        return (self.pretrained or "").strip().lower() == RANDOM_WEIGHTS

    @property
    def identifier(self) -> str:
        """The reference_model value written to score rows."""
        name = f"{self.backend}:{self.model}"
        if self.random_weights:
            return f"{name}@random-init"
        if self.pretrained:
            return f"{name}/{self.pretrained}"
        return name


DEFAULT_CLIP_MODEL = ReferenceModelSpec(backend="open_clip", model="ViT-B-32", pretrained="laion2b_s34b_b79k")


def spec_from_config(section: Any, default: ReferenceModelSpec = DEFAULT_CLIP_MODEL) -> ReferenceModelSpec:
    """Build a spec from a config section (a pydantic model, a dict, or None for the default)."""
    if section is None:
        return default
    if hasattr(section, "model_dump"):
        section = section.model_dump()
    if not isinstance(section, dict):
        raise ReferenceModelError(f"reference model config must be a mapping, got {type(section).__name__}")
    backend = section.get("backend") or default.backend
    model = section.get("model") or (default.model if backend == default.backend else None)
    if model is None:
        raise ReferenceModelError(f"evaluators.clip.model is required with backend {backend!r}")
    pretrained = section.get("pretrained")
    if pretrained is None and backend == default.backend and model == default.model:
        pretrained = default.pretrained
    return ReferenceModelSpec(
        backend=backend, model=str(model), pretrained=None if pretrained is None else str(pretrained),
        cache_dir=section.get("cache_dir"),
    )


# --------------------------------------------------------------------------- locating weights


def hf_cache_dir(spec: ReferenceModelSpec) -> str:
    if spec.cache_dir:
        return str(Path(spec.cache_dir).expanduser())
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _hf_cached_file(repo_id: str, filename: str, cache_dir: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return found if isinstance(found, str) and os.path.isfile(found) else None


@dataclass(frozen=True)
class OpenClipSource:
    """What to hand open_clip: a model name (built-in or ``local-dir:``) and a weights file."""

    model_name: str
    checkpoint: str | None
    quick_gelu: bool = False
    preprocess: dict[str, Any] = field(default_factory=dict)


def _local_dir(model: str) -> Path | None:
    raw = model[len("local-dir:"):] if model.startswith("local-dir:") else model
    path = Path(raw).expanduser()
    if model.startswith("local-dir:") or path.is_dir() or os.sep in raw:
        return path
    return None


def _check_local_config(spec: ReferenceModelSpec, directory: Path) -> None:
    config = directory / "open_clip_config.json"
    if not config.is_file():
        raise ReferenceModelMissing(
            spec.identifier,
            [str(config)],
            "evaluators.clip.model must be an open_clip model directory holding "
            "open_clip_config.json and its weights (open_clip_model.safetensors), "
            "or a built-in open_clip model name such as ViT-B-32",
        )


def resolve_open_clip(spec: ReferenceModelSpec) -> OpenClipSource:
    """Find an open_clip model's weights on this machine, or raise ReferenceModelMissing."""
    directory = _local_dir(spec.model)
    if directory is not None:
        _check_local_config(spec, directory)   # before the imports: precheck_available uses it
    import open_clip
    from open_clip.factory import _find_checkpoint_in_dir
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

    if directory is not None:
        model_name = f"local-dir:{directory.resolve()}"
        if spec.random_weights:
            return OpenClipSource(model_name, None)
        if spec.pretrained:
            raise ReferenceModelError(
                "evaluators.clip.pretrained: a local open_clip model directory carries its own weights; "
                "leave pretrained unset (or 'none' for random weights)"
            )
        checkpoint = _find_checkpoint_in_dir(directory)
        if checkpoint is None:
            raise ReferenceModelMissing(
                spec.identifier,
                [f"{directory}/*.safetensors, *.bin, *.pth"],
                f"put the model's weights (open_clip_model.safetensors) into {directory}",
            )
        return OpenClipSource(model_name, checkpoint)

    name = spec.model.replace("/", "-")
    if name not in open_clip.list_models():
        raise ReferenceModelError(
            f"evaluators.clip.model: {spec.model!r} is neither a built-in open_clip model nor a "
            f"local directory (built-ins include ViT-B-32, ViT-B-16, ViT-L-14)"
        )
    if spec.random_weights:
        return OpenClipSource(name, None)
    pretrained = spec.pretrained
    if not pretrained:
        raise ReferenceModelError(
            f"evaluators.clip.pretrained: required for open_clip model {name} "
            f"(a tag such as {', '.join(list_pretrained_tags_by_model(name)[:4])}, a checkpoint file, "
            "or 'none' for random weights)"
        )
    tag_cfg = get_pretrained_cfg(name, pretrained)
    if not tag_cfg:
        path = Path(pretrained).expanduser()
        if path.is_file():
            return OpenClipSource(name, str(path))
        looks_like_path = os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if looks_like_path:
            raise ReferenceModelMissing(
                spec.identifier, [str(path)], "put the checkpoint file there or fix evaluators.clip.pretrained"
            )
        raise ReferenceModelError(
            f"evaluators.clip.pretrained: {pretrained!r} is not a pretrained tag of {name} "
            f"(tags: {', '.join(list_pretrained_tags_by_model(name))}) nor an existing file"
        )
    preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    quick_gelu = bool(tag_cfg.get("quick_gelu", False))
    found, looked, how = _pretrained_weights(spec, tag_cfg.get("hf_hub", ""), tag_cfg.get("url", ""))
    if found:
        return OpenClipSource(name, found, quick_gelu, preprocess)
    raise ReferenceModelMissing(spec.identifier, looked, how)


def _pretrained_weights(spec: ReferenceModelSpec, hub: str, url: str) -> tuple[str | None, list[str], str]:
    """Where a pretrained tag's weights are (its Hugging Face repo in the local cache, or
    open_clip's legacy download folder): (the file or None, the places looked, how to provide)."""
    cache_dir = hf_cache_dir(spec)
    looked: list[str] = []
    repo_id, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
    if hub:
        candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for candidate in candidates:
            looked.append(f"Hugging Face cache {cache_dir}: {repo_id}/{candidate}")
            found = _hf_cached_file(repo_id, candidate, cache_dir)
            if found:
                return found, looked, ""
    if url:
        legacy = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        looked.append(str(legacy))
        if legacy.is_file():
            return str(legacy), looked, ""
    how = (
        f"on a machine with network access run `hf download {repo_id}` "
        f"and copy the Hugging Face cache ({cache_dir}) here, or set HF_HUB_CACHE / evaluators.clip.cache_dir, "
        "or set evaluators.clip.pretrained to a local checkpoint file"
        if hub
        else "download the checkpoint and set evaluators.clip.pretrained to its path"
    )
    return None, looked, how


# Where the weights of common open_clip pretrained tags are published (open_clip's own
# table, open_clip.pretrained, says the same): lets precheck_available answer for them
# without importing open_clip, which imports torch (seconds, and about 1 GB of memory).
_KNOWN_PRETRAINED: dict[tuple[str, str], tuple[str, str]] = {
    ("ViT-B-32", "laion2b_s34b_b79k"): ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K/", ""),
}


def precheck_available(spec: ReferenceModelSpec) -> None:
    """``check_available`` where the files alone can tell, without importing open_clip or
    torch: raises ReferenceModelMissing when the weights are certainly not here (the same
    message as check_available), returns when they may be (check_available decides then)."""
    if spec.backend != "open_clip":
        resolve_transformers_dir(spec)        # reads files and the local HF cache only
        return
    directory = _local_dir(spec.model)
    if directory is not None:
        _check_local_config(spec, directory)
        return
    known = _KNOWN_PRETRAINED.get((spec.model.replace("/", "-"), spec.pretrained or ""))
    if known is None or spec.random_weights:
        return
    found, looked, how = _pretrained_weights(spec, *known)
    if not found:
        raise ReferenceModelMissing(spec.identifier, looked, how)


def resolve_transformers_dir(spec: ReferenceModelSpec) -> Path:
    """A local directory with a transformers CLIPModel (config + weights + processor files)."""
    path = Path(spec.model).expanduser()
    looked: list[str] = []
    if path.is_dir():
        directory = path
    elif path.is_absolute() or spec.model.startswith((".", "~")) or spec.model.count("/") != 1:
        raise ReferenceModelMissing(
            spec.identifier, [str(path)],
            "set evaluators.clip.model to a directory written by CLIPModel.save_pretrained and "
            "CLIPProcessor.save_pretrained, or to a hub id present in the local Hugging Face cache",
        )
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        cache_dir = hf_cache_dir(spec)
        looked.append(f"local directory {path.resolve()}")
        looked.append(f"Hugging Face cache {cache_dir}: {spec.model}")
        try:
            directory = Path(snapshot_download(spec.model, cache_dir=cache_dir, local_files_only=True))
        except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
            raise ReferenceModelMissing(
                spec.identifier, looked,
                f"on a machine with network access run `hf download {spec.model}` and copy the "
                f"Hugging Face cache ({cache_dir}) here (or set HF_HUB_CACHE), or save the model "
                "to a directory and set evaluators.clip.model to it",
            ) from None
    if not (directory / "config.json").is_file():
        raise ReferenceModelMissing(spec.identifier, [str(directory / "config.json")],
                                    "the directory must hold a transformers CLIP config.json")
    if not spec.random_weights:
        weights = [p for p in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                               "pytorch_model.bin.index.json") if (directory / p).is_file()]
        if not weights:
            raise ReferenceModelMissing(
                spec.identifier, [f"{directory}/model.safetensors", f"{directory}/pytorch_model.bin"],
                f"put the model weights into {directory} (CLIPModel.save_pretrained writes them)",
            )
    return directory


def check_available(spec: ReferenceModelSpec) -> None:
    """Raise ReferenceModelMissing (or ReferenceModelError) unless the weights are here."""
    if spec.backend == "open_clip":
        resolve_open_clip(spec)
    else:
        resolve_transformers_dir(spec)


# --------------------------------------------------------------------------- loaded once

_loaded: dict[tuple[Any, ...], Any] = {}
_loaded_lock = threading.Lock()


def load_once(key: tuple[Any, ...], loader: Callable[[], T]) -> T:
    """Load a model once per process per ``key`` (spec, device, ...); later calls reuse it."""
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = loader()
        return _loaded[key]
