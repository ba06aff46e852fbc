"""Pluggable reference models of the hallucination score (evaluators/claim_checkers.py).

Every model here is a tiny random-initialised transformers model built in a temporary directory
(tests/helpers/checker_fixtures.py) and loaded through the real loading code, as a user's local copy of
a DeBERTa NLI model, HHEM-2.1-open, MiniCheck or LettuceDetect would be. Nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from helpers import checker_fixtures as F  # noqa: E402

from genobs.evaluators.claim_checkers import (  # noqa: E402
    CheckerSpec,
    Seq2SeqChecker,
    SequenceClassifierChecker,
    SpanDetector,
    load_checker,
    spec_from_config,
)
from genobs.evaluators.hallucination import HallucinationScorer, combine_scores  # noqa: E402
from genobs.evaluators.reference_models import ReferenceModelError, ReferenceModelMissing  # noqa: E402

CURIE = ("Marie Curie was a physicist and chemist. She was born in Warsaw in 1867. She married Pierre Curie in 1895. "
         "She won the Nobel Prize in Physics in 1903. She won the Nobel Prize in Chemistry in 1911. "
         "She founded the Curie Institute in Paris. Her daughter Irene also won a Nobel Prize.")
OTHER = "The Eiffel Tower is in Paris. It is 330 metres tall."
CLAIMS = ["Marie Curie was born in Krakow.", "She won the Nobel Prize in Chemistry in 1911.", "It is 330 metres tall."]
TEXTS = [CURIE, OTHER, *CLAIMS, "Tell me about Marie Curie."]


def _softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("checkers")
    return {
        "nli": F.build_nli(base / "nli-deberta-style", TEXTS, {0: "contradiction", 1: "entailment", 2: "neutral"}, [0.0, 2.0, 1.0]),
        "nli_rte": F.build_nli(base / "nli-rte", TEXTS, {0: "entailment", 1: "not_entailment"}, [1.0, 0.0]),
        "nli_contra": F.build_nli(base / "nli-contra", TEXTS, {0: "entailment", 1: "neutral", 2: "contradiction"}, [0.0, 0.0, 4.0]),
        "nli_random": F.build_nli(base / "nli-random", TEXTS, {0: "entailment", 1: "neutral", 2: "contradiction"}),
        "no_entail": F.build_nli(base / "sentiment", TEXTS, {0: "negative", 1: "positive"}),
        "roberta": F.build_minicheck_encoder(base / "minicheck-roberta", TEXTS, "roberta"),
        "deberta": F.build_minicheck_encoder(base / "minicheck-deberta", TEXTS, "deberta"),
        "flan_t5": F.build_minicheck_t5(base / "minicheck-flan-t5", TEXTS),
        "hhem": F.build_hhem(base / "hhem-2.1-open", TEXTS),
        "token": F.build_token_detector(base / "lettucedetect", TEXTS, {"krakow", "1911"}),
    }


def test_nli_labels_come_from_id2label(models: dict[str, Path]) -> None:
    # entailment is label 1 of 3 here: its probability is the claim's support
    checker = load_checker(CheckerSpec("nli", str(models["nli"])), "cpu")
    assert isinstance(checker, SequenceClassifierChecker) and (checker.entail, checker.contra) == (1, 0)
    (result,) = checker.support([([CURIE], CLAIMS[0])])
    expected = _softmax([0.0, 2.0, 1.0])
    assert result.support == pytest.approx(expected[1], abs=1e-4)
    assert result.contradiction == pytest.approx(expected[0], abs=1e-4)
    # a two-way RTE-style model: "not_entailment" is not taken for the entailment label
    rte = load_checker(CheckerSpec("nli", str(models["nli_rte"])), "cpu")
    assert rte.entail == 0 and rte.contra is None
    (result,) = rte.support([([CURIE], CLAIMS[0])])
    assert result.support == pytest.approx(_softmax([1.0, 0.0])[0], abs=1e-4)


def test_a_model_without_an_entailment_label_is_refused(models: dict[str, Path]) -> None:
    with pytest.raises(ReferenceModelError, match="no entailment label"):
        load_checker(CheckerSpec("nli", str(models["no_entail"])), "cpu")


@pytest.mark.parametrize("style", ["roberta", "deberta", "flan_t5"])
def test_minicheck_styles_load_and_score(models: dict[str, Path], style: str) -> None:
    checker = load_checker(CheckerSpec("minicheck", str(models[style])), "cpu")
    assert isinstance(checker, Seq2SeqChecker if style == "flan_t5" else SequenceClassifierChecker)
    if style != "flan_t5":
        assert checker.entail == 1  # MiniCheck's LABEL_1 = supported
    results = checker.support([([CURIE], c) for c in CLAIMS])
    assert len(results) == 3 and all(0.0 < r.support < 1.0 and r.contradiction is None for r in results)
    # a random model still tells pairs apart: the scores are not one constant
    assert len({round(r.support, 6) for r in results}) > 1


def test_hhem_runs_its_own_code_from_the_local_directory(models: dict[str, Path]) -> None:
    checker = load_checker(CheckerSpec("hhem", str(models["hhem"])), "cpu")
    assert checker.spec.identifier == "hhem:hhem-2.1-open"
    (result,) = checker.support([([OTHER], CLAIMS[2])])
    # the same number as the model's own predict() on the pair
    direct = float(checker.model.predict([(OTHER, CLAIMS[2])])[0])
    assert result.support == pytest.approx(direct, abs=1e-5)


def test_long_grounding_is_chunked_and_each_claim_takes_its_best_chunk(models: dict[str, Path]) -> None:
    checker = load_checker(CheckerSpec("nli", str(models["nli_random"]), max_length=40), "cpu")
    results = checker.support([([CURIE, OTHER], c) for c in CLAIMS])
    for claim, result, chunks in zip(CLAIMS, results, checker.last_chunks):
        assert len(chunks) > 2  # 9 sentences do not fit one 40-token window
        room = 40 - checker.n_tokens(claim) - 8
        assert all(checker.n_tokens(text) <= room for _, text in chunks)
        # every sentence of the grounding is in some chunk, named by its document
        assert " ".join(t for s, t in chunks if s == "context[0]").split() == CURIE.split()
        assert {s for s, _ in chunks} == {"context[0]", "context[1]"}
        alone = [checker.support([([text], claim)])[0].support for _, text in chunks]
        assert result.support == pytest.approx(max(alone), abs=1e-5)
        assert result.support_chunk == alone.index(max(alone))


def test_batches_are_length_sorted_without_changing_results(models: dict[str, Path]) -> None:
    jobs = [([CURIE], c) for c in CLAIMS] + [([OTHER], c) for c in reversed(CLAIMS)]
    one = load_checker(CheckerSpec("nli", str(models["nli_random"]), batch_size=1), "cpu")
    many = load_checker(CheckerSpec("nli", str(models["nli_random"]), batch_size=4), "cpu")
    pairs = [(p[0], h) for p, h in jobs]
    batches = many.batches(pairs)
    assert sorted(i for b in batches for i in b) == list(range(len(pairs)))
    lengths = [len(pairs[i][0]) + len(pairs[i][1]) for b in batches for i in b]
    assert lengths == sorted(lengths, reverse=True)
    a = [r.support for r in one.support(jobs)]
    b = [r.support for r in many.support(jobs)]
    assert a == pytest.approx(b, abs=1e-5)


def test_token_detector_spans_and_label_mapping(models: dict[str, Path]) -> None:
    checker = load_checker(CheckerSpec("token", str(models["token"])), "cpu")
    assert isinstance(checker, SpanDetector) and checker.halluc == 1
    response = "Marie Curie was born in Krakow. She won the Nobel Prize in Chemistry in 1911."
    (found,) = checker.detect([([CURIE], response, None)])
    assert [response[s["start"]:s["end"]] for s in found.spans] == ["Krakow", "1911"]
    assert found.probability > 0.9
    # through the scorer: the spans are in details with their offsets in the response
    scorer = HallucinationScorer(use_embeddings=False, reference_model={"kind": "token", "model": str(models["token"])},
                                 combine="model")
    (r,) = scorer.score([{"response": response, "context": [CURIE]}])
    assert r.label == "hallucinated" and r.details["reference_model"] == "token:lettucedetect"
    model_spans = [s for s in r.details["unsupported_spans"] if s["kind"] == "model_span"]
    assert [(s["start"], s["end"], s["text"]) for s in model_spans] == [
        (response.index(w), response.index(w) + len(w), w) for w in ("Krakow", "1911")
    ]


def test_scorer_combines_the_model_with_the_builtin_score(models: dict[str, Path]) -> None:
    spec = {"kind": "nli", "model": str(models["nli"])}
    item = {"response": CLAIMS[1], "context": [CURIE], "prompt": "Tell me about Marie Curie."}
    builtin = HallucinationScorer(use_embeddings=False).score([item])[0].score
    mean = HallucinationScorer(use_embeddings=False, reference_model=spec)
    only = HallucinationScorer(use_embeddings=False, reference_model=spec, combine="model")
    assert mean.reference_model == "nli:nli-deberta-style+lexical-only"
    assert only.reference_model == "nli:nli-deberta-style"
    p = 1.0 - _softmax([0.0, 2.0, 1.0])[1]
    (a,) = mean.score([item])
    (b,) = only.score([item])
    assert b.score == pytest.approx(p, abs=1e-4)
    assert a.score == pytest.approx(combine_scores(builtin, p), abs=1e-4)
    assert a.details["builtin_score"] == pytest.approx(builtin, abs=1e-4)
    (claim,) = a.details["model"]["claims"]
    assert claim["passage"]["source"] == "context[0]" and (claim["start"], claim["end"]) == (0, len(CLAIMS[1]))


def test_model_contradiction_names_the_passage(models: dict[str, Path]) -> None:
    scorer = HallucinationScorer(use_embeddings=False, reference_model={"kind": "nli", "model": str(models["nli_contra"])},
                                 combine="model")
    (r,) = scorer.score([{"response": CLAIMS[2], "context": [CURIE, OTHER]}])
    assert r.label == "hallucinated"
    (span,) = [s for s in r.details["unsupported_spans"] if s["kind"] == "contradiction"]
    assert span["passage"]["source"] in ("context[0]", "context[1]") and span["passage"]["text"]
    assert span["passage"]["source"] in span["reason"] and (span["start"], span["end"]) == (0, len(CLAIMS[2]))


@pytest.mark.parametrize("kind", ["nli", "minicheck", "token", "hhem"])
def test_missing_model_error_names_model_place_and_remedy(tmp_path: Path, kind: str) -> None:
    absent = tmp_path / "no-such-model"
    with pytest.raises(ReferenceModelMissing) as err:
        HallucinationScorer(use_embeddings=False, reference_model={"kind": kind, "model": str(absent)})
    message = str(err.value)
    assert f"{kind}:no-such-model" in message and str(absent) in message and "To provide it:" in message
    if kind == "hhem":
        assert "runs its own Python code" in message and "hf download vectara/hallucination_evaluation_model" in message


def test_hub_ids_are_looked_up_in_the_local_cache_only(tmp_path: Path) -> None:
    spec = CheckerSpec("nli", "some-org/nli-deberta-v3-base", cache_dir=str(tmp_path / "hub"))
    with pytest.raises(ReferenceModelMissing) as err:
        load_checker(spec, "cpu")
    message = str(err.value)
    assert "Hugging Face cache" in message and str(tmp_path / "hub") in message
    assert "hf download some-org/nli-deberta-v3-base" in message
    # HHEM runs code: never from a hub id, even a cached one
    with pytest.raises(ReferenceModelMissing, match="only from a directory you provide"):
        load_checker(CheckerSpec("hhem", "vectara/hallucination_evaluation_model"), "cpu")


def test_config_mapping_is_checked() -> None:
    assert spec_from_config(None) is None
    assert spec_from_config({"kind": "nli", "model": "/m"}) == CheckerSpec("nli", "/m")
    with pytest.raises(ReferenceModelError, match="not one of nli, hhem, minicheck, token"):
        spec_from_config({"kind": "judge", "model": "/m"})
    with pytest.raises(ReferenceModelError, match="unknown keys"):
        spec_from_config({"kind": "nli", "model": "/m", "weights": 1})


def _insert_text_samples(store: "Store", rows: list[tuple[str, str, str]]) -> None:
    """(request_id, prompt, response) text samples grounded on CURIE, through the store's upsert."""
    from datetime import datetime, timezone

    import pyarrow as pa

    from genobs.store import SAMPLE_COLUMNS

    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    names = [name for name, _ in SAMPLE_COLUMNS]
    records = [
        {"request_id": rid, "timestamp": t0, "ingested_at": t0, "service": "chat", "model": "m", "model_version": "1",
         "variant": "primary", "modality": "text", "status": "ok", "source": "test", "prompt": prompt,
         "response": response, "context": [CURIE]}
        for rid, prompt, response in rows
    ]
    types = {"context": pa.list_(pa.string()), "timestamp": pa.timestamp("us", tz="UTC"),
             "ingested_at": pa.timestamp("us", tz="UTC"), "latency_ms": pa.float64(), "ttft_ms": pa.float64(),
             "cost_usd": pa.float64(), "input_tokens": pa.int64(), "output_tokens": pa.int64(), "feedback": pa.int64(),
             "safety_flagged": pa.bool_(), "cache_hit": pa.bool_()}
    schema = pa.schema([(n, types.get(n, pa.string())) for n in names])
    store.upsert_samples(pa.Table.from_pylist([{n: r.get(n) for n in names} for r in records], schema=schema))


def test_runner_writes_the_model_into_reference_model_and_never_mixes(tmp_path: Path, models: dict[str, Path]) -> None:
    from genobs.evaluators.runner import run_evaluators
    from genobs.store import Store

    store = Store.open(tmp_path / "g.duckdb")
    _insert_text_samples(store, [("a", "Where was she born?", CLAIMS[0]), ("b", "What did she win?", CLAIMS[1])])

    def run(model: str) -> None:
        config = {"evaluators": {"hallucination": {
            "use_embeddings": False, "reference_model": {"kind": "nli", "model": str(models[model])}}}}
        summary = run_evaluators(store, ["hallucination"], device="cpu", config=config)
        assert summary.evaluators[0].scored == 2

    run("nli")
    rows = store.fetchall("SELECT DISTINCT reference_model FROM scores WHERE metric = 'hallucination_score'")
    assert rows == [("nli:nli-deberta-style+lexical-only",)]
    run("nli_random")  # another model: its own rows, none overwritten
    rows = store.fetchall("SELECT reference_model, count(*) FROM scores WHERE metric = 'hallucination_score' GROUP BY 1 ORDER BY 1")
    assert rows == [("nli:nli-deberta-style+lexical-only", 2), ("nli:nli-random+lexical-only", 2)]
    store.close()
