"""Pluggable reference models for the hallucination score: claim checkers and span detectors.

Four kinds, each a transformers model loaded from a local directory or the local Hugging Face
cache (never downloaded; a missing model raises ReferenceModelMissing naming the model, where it
looked and how to provide it, as CLIP does):

  nli        any sequence-classification NLI cross-encoder (premise = grounding chunk, hypothesis
             = claim); the entailment and contradiction labels are found in the model's id2label
  hhem       Vectara's HHEM-2.1-open: a T5-based classifier shipped with its own Python code. It is
             loaded only from a local directory the user gives, with trust_remote_code, so *the code
             in that directory runs*; its `predict(pairs)` gives the consistency probability
  minicheck  MiniCheck-style claim checkers: RoBERTa / DeBERTa sequence classifiers (label 1 =
             supported, unless id2label names a "supported"/"entailment" label) and Flan-T5
             seq2seq checkers (the probability of the token "1" against "0" at the first decoder
             step, for "premise: <chunk> hypothesis: <claim>")
  token      token-classification span detectors in the style of LettuceDetect: grounding chunk
             and response as a pair, a label per response token; the hallucinated label comes from
             id2label ("hallucinated", "unsupported", ...; else the label that is not "supported")

Grounding longer than the model's window is cut into chunks of whole sentences that fit beside the
claim (a single longer sentence is cut by tokens); each claim takes its best support over the
chunks (for `token`: each response token its lowest hallucination probability over the chunks).
All pairs of one call are sorted by length and run in batches under torch.inference_mode, on CUDA
with bf16 (fp16 where the GPU lacks it) when present, else on the CPU in fp32.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genobs.evaluators.claims import split_sentences
from genobs.evaluators.reference_models import ReferenceModelError, ReferenceModelMissing

KINDS: tuple[str, ...] = ("nli", "hhem", "minicheck", "token")

_ENTAIL_RE = re.compile(r"entail|support|consistent|faithful|grounded", re.IGNORECASE)
_CONTRA_RE = re.compile(r"contradict", re.IGNORECASE)
_HALLUC_RE = re.compile(r"hallucinat|unsupported|not.?supported|inconsistent|unfaithful", re.IGNORECASE)


@dataclass(frozen=True)
class CheckerSpec:
    """A configured reference model (config `evaluators.hallucination.reference_model`)."""

    kind: str
    model: str  # a local directory, or a hub id present in the local Hugging Face cache (not for hhem)
    cache_dir: str | None = None  # Hugging Face hub cache; default HF_HUB_CACHE / ~/.cache/huggingface/hub
    max_length: int | None = None  # the model's window in tokens; default: the tokenizer's, capped at 512
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ReferenceModelError(
                f"evaluators.hallucination.reference_model.kind: {self.kind!r} is not one of {', '.join(KINDS)}"
            )
        if not self.model:
            raise ReferenceModelError("evaluators.hallucination.reference_model.model: must name a local path or a cached hub id")

    @property
    def identifier(self) -> str:
        """The reference_model value of score rows: kind and the model's directory name or hub id."""
        path = Path(self.model).expanduser()
        name = path.name if path.is_dir() or os.sep in self.model and not _is_hub_id(self.model) else self.model
        return f"{self.kind}:{name}"


def _is_hub_id(model: str) -> bool:
    return model.count("/") == 1 and not model.startswith((".", "~", "/")) and not Path(model).expanduser().is_dir()


def spec_from_config(section: Any) -> CheckerSpec | None:
    """A CheckerSpec from a mapping {kind, model, cache_dir?, max_length?, batch_size?}, or None."""
    if section is None or section == {} or section == "":
        return None
    if hasattr(section, "model_dump"):
        section = section.model_dump()
    if not isinstance(section, dict):
        raise ReferenceModelError(
            "evaluators.hallucination.reference_model: expected a mapping with kind and model, "
            f"got {type(section).__name__}"
        )
    unknown = set(section) - {"kind", "model", "cache_dir", "max_length", "batch_size"}
    if unknown:
        raise ReferenceModelError(f"evaluators.hallucination.reference_model: unknown keys {sorted(unknown)}")
    return CheckerSpec(
        kind=str(section.get("kind") or ""), model=str(section.get("model") or ""),
        cache_dir=section.get("cache_dir"), max_length=section.get("max_length"),
        batch_size=int(section.get("batch_size") or 16),
    )


_HOW = {
    "nli": "save an NLI cross-encoder (e.g. a DeBERTa-v3 MNLI model) with save_pretrained into a directory",
    "minicheck": "save a MiniCheck model (RoBERTa, DeBERTa or Flan-T5) with save_pretrained into a directory",
    "token": "save a token-classification span detector (e.g. LettuceDetect) with save_pretrained into a directory",
}


def resolve_model_dir(spec: CheckerSpec) -> Path:
    """The local directory holding the model, or ReferenceModelMissing. Never downloads."""
    path = Path(spec.model).expanduser()
    looked: list[str] = [f"local directory {path.resolve() if not path.is_absolute() else path}"]
    if path.is_dir():
        directory = path
    elif spec.kind == "hhem":
        raise ReferenceModelMissing(
            spec.identifier, looked,
            "HHEM-2.1-open runs its own Python code, so it is loaded only from a directory you provide: "
            "on a machine with network access run `hf download vectara/hallucination_evaluation_model "
            "--local-dir DIR` (and `hf download google/flan-t5-base --local-dir DIR/flan-t5-base` for its "
            "tokenizer), copy DIR here and set evaluators.hallucination.reference_model.model to it",
        )
    elif _is_hub_id(spec.model):
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        cache_dir = str(Path(spec.cache_dir).expanduser()) if spec.cache_dir else str(constants.HF_HUB_CACHE)
        looked.append(f"Hugging Face cache {cache_dir}: {spec.model}")
        try:
            directory = Path(snapshot_download(spec.model, cache_dir=cache_dir, local_files_only=True))
        except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
            raise ReferenceModelMissing(
                spec.identifier, looked,
                f"on a machine with network access run `hf download {spec.model}` and copy the Hugging Face "
                f"cache ({cache_dir}) here (or set HF_HUB_CACHE / reference_model.cache_dir), or "
                f"{_HOW[spec.kind]} and set evaluators.hallucination.reference_model.model to it",
            ) from None
    else:
        raise ReferenceModelMissing(spec.identifier, looked, f"{_HOW[spec.kind]} and set evaluators.hallucination.reference_model.model to it")
    if not (directory / "config.json").is_file():
        raise ReferenceModelMissing(spec.identifier, [str(directory / "config.json")],
                                    f"the directory must hold a transformers config.json; {_HOW.get(spec.kind, 'see docs/evaluators.md')}")
    weights = [p for p in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                           "pytorch_model.bin.index.json") if (directory / p).is_file()]
    if not weights:
        raise ReferenceModelMissing(spec.identifier, [f"{directory}/model.safetensors", f"{directory}/pytorch_model.bin"],
                                    f"put the model weights into {directory} (save_pretrained writes them)")
    return directory


# --------------------------------------------------------------------------- results


@dataclass
class ClaimSupport:
    """A claim's best support over the grounding chunks."""

    support: float  # probability that the grounding supports the claim (best chunk)
    contradiction: float | None = None  # NLI only: contradiction probability at the chunk that contradicts most
    support_chunk: int | None = None  # index into the chunks passed for this claim
    contradiction_chunk: int | None = None


@dataclass
class TokenSpans:
    """A response's hallucinated spans from a token-level detector."""

    probability: float  # the largest token probability of "hallucinated" (best over chunks)
    spans: list[dict[str, Any]] = field(default_factory=list)  # {start, end, probability} in response chars


# --------------------------------------------------------------------------- loading


def _torch_device(device: str) -> Any:
    from genobs.evaluators.device import resolve_device

    return resolve_device(device)


class _Model:
    """Tokenizer + model of one spec on one device, and the pieces every kind shares."""

    def __init__(self, spec: CheckerSpec, device: str = "auto") -> None:
        import torch

        self.spec = spec
        self.directory = resolve_model_dir(spec)
        self.device = _torch_device(device)
        self.dtype = None
        if self.device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.model, self.tokenizer = self._load()
        self.model.eval()
        self.model.to(self.device)
        if self.dtype is not None:
            self.model.to(self.dtype)
        limit = getattr(self.tokenizer, "model_max_length", 512) or 512
        self.max_length = int(spec.max_length or min(512, limit if limit < 100_000 else 512))

    def _load(self) -> tuple[Any, Any]:  # pragma: no cover - each kind overrides
        raise NotImplementedError

    def _offline(self) -> dict[str, Any]:
        return {"local_files_only": True}

    # --- chunking
    def n_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def chunks(self, grounding: Sequence[str], room: int) -> list[tuple[str, str]]:
        """(source, text) pieces of the grounding texts of at most `room` tokens each: whole
        sentences packed greedily, a longer sentence cut by tokens. Sources name the text
        ("context[0]", "reference") they come from."""
        out: list[tuple[str, str]] = []
        room = max(16, room)
        for source, text in grounding_sources(grounding):
            current, used = "", 0
            for s, e in split_sentences(text) or [(0, len(text))]:
                sentence = text[s:e]
                n = self.n_tokens(sentence)
                if n > room:
                    if current:
                        out.append((source, current))
                        current, used = "", 0
                    ids = self.tokenizer(sentence, add_special_tokens=False)["input_ids"]
                    for k in range(0, len(ids), room):
                        out.append((source, self.tokenizer.decode(ids[k:k + room])))
                    continue
                if current and used + n > room:
                    out.append((source, current))
                    current, used = "", 0
                current = f"{current} {sentence}" if current else sentence
                used += n
            if current:
                out.append((source, current))
        return out

    def batches(self, pairs: list[tuple[str, str]]) -> list[list[int]]:
        """Indices of `pairs` in batches of similar length (longest first): little padding."""
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        size = max(1, self.spec.batch_size)
        return [order[k:k + size] for k in range(0, len(order), size)]


def grounding_sources(grounding: Sequence[str]) -> list[tuple[str, str]]:
    """(source name, text): the context documents, then the reference when it is the last item
    passed as ("reference", text) by the scorer."""
    out = []
    for i, text in enumerate(grounding):
        if isinstance(text, tuple):
            out.append(text)
        elif isinstance(text, str) and text.strip():
            out.append((f"context[{i}]", text))
    return out


def _find_label(id2label: dict[int, str], pattern: re.Pattern[str], skip_negated: bool = True) -> int | None:
    """The first label id whose name matches `pattern`; with `skip_negated`, not one named
    "not_entailment" / "non-entailment" (the other class of a two-way RTE-style model)."""
    for i, label in sorted(id2label.items()):
        if pattern.search(label) and not (skip_negated and re.match(r"(not|non)[\s_-]?", label, re.IGNORECASE)):
            return int(i)
    return None


class ClaimChecker(_Model):
    """nli, minicheck and hhem: the probability that a grounding chunk supports a claim."""

    def support(self, jobs: Sequence[tuple[Sequence[Any], str]]) -> list[ClaimSupport]:
        """For each (grounding texts, claim): its best support over the grounding's chunks."""
        pairs: list[tuple[str, str]] = []
        owner: list[tuple[int, int]] = []
        chunk_lists: list[list[tuple[str, str]]] = []
        for j, (grounding, claim) in enumerate(jobs):
            room = self.max_length - self.n_tokens(claim) - 8
            chunks = self.chunks(grounding, room)
            chunk_lists.append(chunks)
            for c, (_, text) in enumerate(chunks):
                pairs.append((text, claim))
                owner.append((j, c))
        probs = self._run(pairs)
        out = [ClaimSupport(0.0) for _ in jobs]
        for (j, c), (sup, con) in zip(owner, probs):
            r = out[j]
            if r.support_chunk is None or sup > r.support:
                r.support, r.support_chunk = sup, c
            if con is not None and (r.contradiction is None or con > r.contradiction):
                r.contradiction, r.contradiction_chunk = con, c
        self.last_chunks = chunk_lists
        return out

    def _run(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float | None]]:
        import torch

        out: list[tuple[float, float | None]] = [(0.0, None)] * len(pairs)
        with torch.inference_mode():
            for batch in self.batches(pairs):
                for i, value in zip(batch, self._forward([pairs[i] for i in batch])):
                    out[i] = value
        return out

    def _forward(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float | None]]:  # pragma: no cover
        raise NotImplementedError


class SequenceClassifierChecker(ClaimChecker):
    """nli and minicheck (RoBERTa / DeBERTa): a cross-encoder over (premise, hypothesis)."""

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(self.directory, **self._offline())
        tokenizer = AutoTokenizer.from_pretrained(self.directory, **self._offline())
        id2label = {int(k): str(v) for k, v in (model.config.id2label or {}).items()}
        self.entail = _find_label(id2label, _ENTAIL_RE)
        self.contra = _find_label(id2label, _CONTRA_RE)
        if self.entail is None:
            if self.spec.kind == "minicheck" and model.config.num_labels == 2:
                self.entail = 1  # MiniCheck's convention: label 1 = supported
            else:
                raise ReferenceModelError(
                    f"reference model {self.spec.identifier}: no entailment label in its id2label {id2label}; "
                    "an NLI model must name one (e.g. 'entailment')"
                )
        return model, tokenizer

    def _forward(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float | None]]:
        import torch

        enc = self.tokenizer([p for p, _ in pairs], [h for _, h in pairs], truncation="only_first",
                             max_length=self.max_length, padding=True, return_tensors="pt").to(self.device)
        logits = self.model(**enc).logits.float()
        probs = torch.softmax(logits, dim=-1).cpu()
        return [(float(p[self.entail]), None if self.contra is None else float(p[self.contra])) for p in probs]


class Seq2SeqChecker(ClaimChecker):
    """minicheck Flan-T5 style: P("1") against P("0") at the first decoder step."""

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        model = AutoModelForSeq2SeqLM.from_pretrained(self.directory, **self._offline())
        tokenizer = AutoTokenizer.from_pretrained(self.directory, **self._offline())
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("0", "1")]
        self.label_ids = [i[-1] for i in ids]
        return model, tokenizer

    def _forward(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float | None]]:
        import torch

        texts = [f"premise: {p} hypothesis: {h}" for p, h in pairs]
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                             return_tensors="pt").to(self.device)
        start = self.model.config.decoder_start_token_id or 0
        decoder_input_ids = torch.full((len(pairs), 1), start, dtype=torch.long, device=self.device)
        logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                            decoder_input_ids=decoder_input_ids).logits[:, 0, self.label_ids].float()
        probs = torch.softmax(logits, dim=-1).cpu()
        return [(float(p[1]), None) for p in probs]


class HHEMChecker(ClaimChecker):
    """Vectara HHEM-2.1-open: custom code from the model directory (trust_remote_code)."""

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForSequenceClassification

        # its code loads its T5 tokenizer itself: keep the hub offline while it does
        previous = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                self.directory, trust_remote_code=True, local_files_only=True
            )
        except OSError as exc:
            raise ReferenceModelMissing(
                self.spec.identifier, [str(self.directory)],
                f"HHEM's code could not find its files offline ({exc}); put the flan-t5-base tokenizer it names "
                "in its config (`foundation`) into the local Hugging Face cache or the model directory",
            ) from None
        finally:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous
        if not callable(getattr(model, "predict", None)):
            raise ReferenceModelError(
                f"reference model {self.spec.identifier}: an hhem model must have predict(pairs) (HHEM-2.1-open's code)"
            )
        # HHEM-2.1-open's code keeps its tokenizer as `tokenzier` (sic)
        tokenizer = getattr(model, "tokenizer", None) or getattr(model, "tokenzier", None)
        if tokenizer is None:
            raise ReferenceModelError(f"reference model {self.spec.identifier}: its code sets no tokenizer")
        return model, tokenizer

    def _forward(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float | None]]:
        scores = self.model.predict(list(pairs))
        return [(float(s), None) for s in scores]


class SpanDetector(_Model):
    """token: per response token, the probability that it is hallucinated."""

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        model = AutoModelForTokenClassification.from_pretrained(self.directory, **self._offline())
        tokenizer = AutoTokenizer.from_pretrained(self.directory, **self._offline())
        if not getattr(tokenizer, "is_fast", False):
            raise ReferenceModelError(f"reference model {self.spec.identifier}: needs a fast tokenizer (character offsets)")
        id2label = {int(k): str(v) for k, v in (model.config.id2label or {}).items()}
        self.halluc = _find_label(id2label, _HALLUC_RE, skip_negated=False)
        if self.halluc is None:
            others = [i for i, label in id2label.items() if not _ENTAIL_RE.search(label) and label.upper() != "O"]
            if len(id2label) == 2 and len(others) == 1:
                self.halluc = others[0]
            elif len(id2label) == 2 and all(re.fullmatch(r"LABEL_\d", label) for label in id2label.values()):
                self.halluc = 1  # LettuceDetect's convention: 1 = hallucinated
            else:
                raise ReferenceModelError(
                    f"reference model {self.spec.identifier}: no hallucinated label in its id2label {id2label}"
                )
        return model, tokenizer

    def detect(self, jobs: Sequence[tuple[Sequence[Any], str, str | None]], threshold: float = 0.5) -> list[TokenSpans]:
        """For each (grounding texts, response, question): the response's hallucinated spans."""
        import torch

        pairs: list[tuple[str, str]] = []
        owner: list[int] = []
        for j, (grounding, response, question) in enumerate(jobs):
            prefix = f"{question}\n" if question else ""
            room = self.max_length - self.n_tokens(response) - self.n_tokens(prefix) - 8
            for _, text in self.chunks(grounding, room):
                pairs.append((prefix + text, response))
                owner.append(j)
        # per response: char offsets of its tokens -> lowest probability over chunks
        best: list[dict[tuple[int, int], float]] = [{} for _ in jobs]
        with torch.inference_mode():
            for batch in self.batches(pairs):
                enc = self.tokenizer([pairs[i][0] for i in batch], [pairs[i][1] for i in batch],
                                     truncation="only_first", max_length=self.max_length, padding=True,
                                     return_offsets_mapping=True, return_tensors="pt")
                offsets = enc.pop("offset_mapping")
                logits = self.model(**enc.to(self.device)).logits.float()
                probs = torch.softmax(logits, dim=-1)[..., self.halluc].cpu()
                for row, i in enumerate(batch):
                    seq = enc.sequence_ids(row)
                    seen = best[owner[i]]
                    for k, sid in enumerate(seq):
                        if sid != 1:
                            continue
                        s, e = (int(x) for x in offsets[row, k])
                        if e <= s:
                            continue
                        p = float(probs[row, k])
                        seen[(s, e)] = min(p, seen.get((s, e), 1.0))
        out = []
        for (_, response, _), seen in zip(jobs, best):
            spans: list[dict[str, Any]] = []
            for (s, e), p in sorted(seen.items()):
                if p < threshold:
                    continue
                if spans and s - spans[-1]["end"] <= 1 and not response[spans[-1]["end"]:s].strip(" "):
                    spans[-1]["end"] = e
                    spans[-1]["probability"] = max(spans[-1]["probability"], p)
                else:
                    spans.append({"start": s, "end": e, "probability": p})
            for span in spans:
                span["probability"] = round(span["probability"], 4)
            out.append(TokenSpans(max(seen.values(), default=0.0), spans))
        return out


def load_checker(spec: CheckerSpec, device: str = "auto") -> ClaimChecker | SpanDetector:
    """Load the model of `spec` (from local files only) on `device`."""
    if spec.kind == "token":
        return SpanDetector(spec, device)
    if spec.kind == "hhem":
        return HHEMChecker(spec, device)
    if spec.kind == "minicheck":
        directory = resolve_model_dir(spec)
        import json

        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        if config.get("is_encoder_decoder") or config.get("model_type") in ("t5", "mt5", "umt5"):
            return Seq2SeqChecker(spec, device)
    return SequenceClassifierChecker(spec, device)


def logit(p: float, eps: float = 1e-4) -> float:
    p = min(1.0 - eps, max(eps, p))
    return math.log(p / (1.0 - p))
