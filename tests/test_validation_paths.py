"""The two validation paths of the ingest pipeline agree exactly.

Small inputs are checked in Python (collectors/fast_validation.py), others by the
vectorised DuckDB query (collectors/validation.py). A user must not be able to tell which
one ran: the same corpus goes through both, each into its own real DuckDB store, and the
stored rows (every column but ingested_at), the dead letters, the per-record errors and the
redaction counts must be equal. Where the Python path declines an input (it hands anything
it cannot read exactly as DuckDB does to the SQL path), there is nothing to compare; the
tests check that it does handle the common cases, bad ones included.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genobs.collectors import fast_validation, pipeline
from genobs.collectors.pipeline import IngestOptions, ModelPrice
from genobs.store import Store
from helpers.ingest_cases import bad_ingest_cases, sample
from helpers.pii_corpus import CORPUS


def _lines(content: bytes) -> list[bytes]:
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _state(store: Store) -> tuple[list[tuple], list[tuple]]:
    samples = store.fetchall("SELECT * EXCLUDE (ingested_at) FROM samples ORDER BY request_id")
    dead = store.fetchall("SELECT source, line, raw, error FROM dead_letter ORDER BY line, id")
    return samples, dead


def _summary(result: pipeline.IngestResult) -> dict[str, Any]:
    return result.as_dict()


def run_both(lines: list[bytes], options: IngestOptions | None = None,
             prior: list[bytes] | None = None) -> bool:
    """Ingest ``lines`` through both paths (after ``prior``, through the SQL path, in both
    stores); assert equal outcomes. Returns False when the Python path declined."""
    opts = options or IngestOptions()
    checked = fast_validation.check_lines(lines, 1, redact=opts.redact, prices=opts.prices)
    if checked is None:
        return False
    stores = Store.memory(), Store.memory()
    try:
        for store in stores:
            if prior:
                pipeline._ingest_with_sql(store, prior, source="prior", options=opts, first_line=1)
        by_sql = pipeline._ingest_with_sql(stores[0], lines, source="t", options=opts, first_line=1)
        by_python = pipeline._ingest_checked(stores[1], [(checked, "t")], redact=opts.redact)[0]
        assert _summary(by_python) == _summary(by_sql)
        sql_samples, sql_dead = _state(stores[0])
        py_samples, py_dead = _state(stores[1])
        assert py_samples == sql_samples
        assert py_dead == sql_dead
    finally:
        for store in stores:
            store.close()
    return True


def jsonl(*records: Any) -> list[bytes]:
    return [r if isinstance(r, bytes) else r.encode() if isinstance(r, str) else json.dumps(r).encode()
            for r in records]


# --------------------------------------------------------------------------- corpora


BAD_JSONL_CASES = {p.id: p.values[1] for p in bad_ingest_cases() if p.values[0] == "a.jsonl" and p.values[1]}


@pytest.mark.parametrize("case", list(BAD_JSONL_CASES))
def test_bad_input_cases_of_test_ingest(case: str) -> None:
    handled = run_both(_lines(BAD_JSONL_CASES[case]))
    # The Python path reads the common mistakes itself; only what it cannot read exactly
    # as DuckDB does (invalid JSON or UTF-8, a time in an unusual form) goes to SQL.
    if case in ("wrong-types", "missing-required-fields", "negative-latency-or-tokens", "unknown-status",
                   "10MB-string-field", "duplicate-request-ids-in-one-file"):
        assert handled, case


def test_redaction_corpus() -> None:
    records = [sample(f"r{i:03d}", prompt=text) for i, (text, _) in enumerate(CORPUS)]
    assert run_both(jsonl(*records))
    # each text in every redacted field, and in an unknown key (kept in attributes)
    records = [sample(f"f{i:03d}", response=text, reference=text, error_type=text[:200], context=[text, "plain"],
                      user_note=text, attributes={"k": text})
               for i, (text, _) in enumerate(CORPUS)]
    assert run_both(jsonl(*records))


def test_redaction_off() -> None:
    records = [sample(f"r{i:03d}", prompt=text, user_email="bob@example.com") for i, (text, _) in enumerate(CORPUS)]
    assert run_both(jsonl(*records), IngestOptions(redact=False))


def test_lenient_and_strict_readings() -> None:
    records = [
        sample("n1", latency_ms="12.5", input_tokens="7", feedback="-1", ttft_ms=".5", cost_usd="+1e-3"),
        sample("n2", input_tokens=1.0, output_tokens=3.0, feedback=-1.0, model_version=2.5, service=7),
        sample("n3", model_version=1e5, tenant=True, region=-0.0),
        sample("b1", cache_hit="TRUE ", safety_flagged=" yes"),
        sample("b2", cache_hit=1, safety_flagged=0.0),
        sample("b3", cache_hit="y"),
        sample("b4", cache_hit="\tyes"),
        sample("b5", safety_flagged=2),
        sample("e1", status="OK", modality="Image"),
        sample("e2", status=" ok"),
        sample("e3", status=1),
        sample("e4", modality={"a": 1}),
        sample("s1", prompt=["a", 1]),
        {**sample("s2"), "request_id": {"a": 1}},
        sample("s3", region="é" * 300),
        sample("s4", tenant="e\u0301" * 200),
        {**sample("s5"), "request_id": "r" * 257},
        sample("x1", latency_ms="slow \"quoted\" \\ back"),
        sample("x2", latency_ms={"a": 1}),
        sample("x3", latency_ms=[1]),
        sample("x4", latency_ms=True),
        sample("x5", cost_usd="12abc"),
        sample("x6", latency_ms="z" * 100),
        sample("x7", input_tokens=-1.5),
        sample("x8", feedback=0.5),
        sample("t1", timestamp=1736935200),
        sample("t2", timestamp=1736935200123),
        sample("t3", timestamp="1736935200.5"),
        sample("t4", timestamp="2025-01-15T12:00:00+02:00"),
        sample("t5", timestamp="2025-01-15 10:00:00.250"),
        sample("t6", timestamp=1736935200.1234567),
        sample("t7", timestamp=1736935200123.5),
        sample("t8", timestamp=-5),
        sample("t9", timestamp=2025),
        sample("ta", timestamp=10**15),
        sample("tb", timestamp=True),
        sample("tc", timestamp="next tuesday"),
        sample("td", timestamp={"at": 1}),
        sample("te", timestamp="2025-01-15T10:00:00.5-03:30"),
        sample("c1", context="a single document"),
        sample("c2", context=["a", None, "b"]),
        sample("c3", context=[]),
        sample("c4", context={"a": 1}),
        sample("c5", context=True),
        sample("c6", context=["x" * 600_000, "y" * 400_001]),
        sample("a1", attributes={"route": "/chat", "n": 1.5, "nested": {"a": [1, None, "é/\n\u001f"]}}),
        sample("a2", attributes={"z": 1, "a": {"q": 1}}, exp={"arm": 2}, user="gold", a={"r": 2, "x": None},
               gone=None, zz=[1, 2]),
        sample("a3", attributes={"keep": None}, keep=None, other={"p": None}),
        sample("a4", attributes="nope"),
        sample("a5", attributes=5),
        sample("a6", attributes=-5),
        sample("a7", attributes=5.5),
        sample("a8", attributes=[1]),
        sample("a9", attributes=False),
        sample("aa", Model="upper-case key is an unknown key"),
        {"request_id": "m1", "timestamp": "2025-01-15T10:00:00Z"},
        {"request_id": "m2", "model": "", "model_version": "v", "timestamp": "2025-01-15T10:00:00Z"},
        {"request_id": "m3", "model": None, "model_version": "v", "timestamp": None},
        "   ",
        "",
        sample("d1", prompt="first"),
        sample("d1", prompt="second"),
        sample("d2", latency_ms=-1),
        sample("d2", latency_ms=1),
        sample("d2", latency_ms=2),
    ]
    assert run_both(jsonl(*records))


_IDENTIFIER_VALUES = [" ", "  ", "\u3000", "\t", "\n", "|", " |", "| ", "a| ", "|\u2028", "x\u200e", "\x85",
                      "a\u202eb", "\u2066", "ok", "ok|ok", "a b", "\x7f", "é"]


@pytest.mark.parametrize("field", ["request_id", "service", "model", "model_version", "variant", "tenant", "region"])
def test_identifier_checks_are_the_same_on_both_paths(field: str) -> None:
    """The vectorised path runs the exact identifier checks only in rows that one scan of all
    identifiers (joined by "|") marks: the answers must still be the Python path's, for every
    field and wherever the separator falls."""
    records = []
    for i, value in enumerate(_IDENTIFIER_VALUES):
        record = sample(f"id-{i}", tenant="t", region="r")
        record[field] = value
        records.append(record)
    records.append(sample("id-pair", tenant=" ", region="\u3000"))   # two fields at once
    assert run_both(jsonl(*records))
    checked = fast_validation.check_lines(jsonl(*records), 1, redact=True)
    assert checked is not None
    rejected = {row.values["request_id"] if field != "request_id" else row.line for row in checked.rows if row.errors}
    # the 10 values with a bad character or of whitespace only, and the pair
    assert len(rejected) == 11, rejected


def test_updates_of_stored_rows_count_as_updates() -> None:
    prior = jsonl(sample("u1", latency_ms=1), sample("u2", latency_ms=2))
    assert run_both(jsonl(sample("u1", latency_ms=10), sample("u3", latency_ms=3)), prior=prior)


def test_cost_from_the_price_table() -> None:
    options = IngestOptions(prices={"chat-large": ModelPrice(2.0, 10.0), "cheap": ModelPrice(0.1, 0.3)})
    records = [
        sample("p1", input_tokens=1000, output_tokens=500),
        sample("p2", input_tokens=1000, output_tokens=500, cost_usd=0.5),
        sample("p3", model="other", input_tokens=1000),
        sample("p4"),
        sample("p5", model="cheap", output_tokens="333"),
        sample("p6", model="cheap", input_tokens=12345, output_tokens=None),
        sample("p7", input_tokens=-3),
    ]
    assert run_both(jsonl(*records), options)


def test_the_python_path_hands_what_it_cannot_read_exactly_to_sql() -> None:
    declined = [
        [b'{"request_id": "broken", '],
        [b'[1, 2]'],
        [b'{"request_id": "u1", "model": "m\xff"}'],
        jsonl('{"request_id": "a", "request_id": "b"}'),
        jsonl(sample("t", timestamp="2025-01-15")),
        jsonl(sample("t", latency_ms=" 12 ")),
        jsonl(sample("t", latency_ms="1_000")),
        jsonl(sample("t", context='["a", "b"]')),
        jsonl(sample("t", attributes='{"a": 1}')),
        jsonl(sample("t", input_tokens=2**63)),
        jsonl('{"request_id": "t", "latency_ms": NaN}'),
        jsonl(sample("t", prompt="x" * 300)),     # a long token-like run: RE2 scans it in linear time
    ]
    for lines in declined:
        assert fast_validation.check_lines(lines, 1, redact=True) is None, lines


# --------------------------------------------------------------------------- generated records


_pii_bits = st.sampled_from([
    "bob@example.com", "a.b+c@sub.example.co.uk", "4111 1111 1111 1111", "4111111111111112", "378282246310005",
    "+1 415-555-0132", "(415) 555-0132", "+44 20 7946 0958", "+14155550132", "AKIAIOSFODNN7EXAMPLE",
    "sk-proj-abcdefghijklmnopqrstuvwxyz123456", "Bearer abcdef0123456789abcdef.xyz", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "1234 5678 1234 5678", "2024-01-15", "192.168.1.100", "user@localhost", "bearer\u000babcdefghijklmnopqrstu",
])
_text = st.lists(
    st.one_of(_pii_bits, st.text(alphabet="abc xyz0123456789-+.@()_é\n\t", max_size=24)), max_size=5,
).map(" ".join)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**15), st.floats(-1e9, 1e9, allow_nan=False),
    _text, st.sampled_from(["12", "1.5", "-3", "true", "no", "OK", "error", "image", "fast", ""]),
)
_value = st.one_of(_scalar, st.lists(st.one_of(_text, st.none()), max_size=3),
                   st.dictionaries(st.sampled_from(["k", "note", "n"]), _scalar, max_size=3))
_timestamp = st.one_of(
    st.just("2025-01-15T10:00:00Z"),
    st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)).map(
        lambda d: d.isoformat().replace("+00:00", "Z")),
    st.integers(-10**13, 10**14), st.floats(-1e13, 1e14, allow_nan=False),
    st.integers(0, 10**9).map(str), st.sampled_from(["yesterday", "soon", True]),
)
_FIELDS = ["service", "variant", "modality", "prompt", "response", "context", "reference", "status",
           "error_type", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "safety_flagged",
           "cache_hit", "feedback", "tenant", "region", "attributes", "user_email", "extra"]


@st.composite
def _record(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {
        "request_id": draw(st.sampled_from(["g1", "g2", "g3", "g4", "g5"])),
        "timestamp": draw(_timestamp),
        "model": draw(st.sampled_from(["chat-large", "cheap", "m"])),
        "model_version": draw(st.sampled_from(["v1", "2025-01-01"])),
    }
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=6, unique=True)):
        record[name] = draw(_text) if name in ("prompt", "response", "user_email") else draw(_value)
    for name in draw(st.lists(st.sampled_from(["request_id", "timestamp", "model"]), max_size=1)):
        del record[name]
    return record


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_record(), min_size=1, max_size=4), redact=st.booleans())
def test_generated_records(records: list[dict[str, Any]], redact: bool) -> None:
    options = IngestOptions(redact=redact, prices={"chat-large": ModelPrice(2.0, 10.0), "cheap": ModelPrice(0.1, 0.3)})
    run_both(jsonl(*records), options)


@settings(max_examples=80, deadline=None)
@given(text=_text)
def test_python_and_re2_patterns_agree(text: str) -> None:
    assert run_both(jsonl(sample("r", prompt=text, context=[text], note=text)))


# --------------------------------------------------------------------------- grouped inputs


def test_grouped_inputs_are_answered_as_if_ingested_one_by_one() -> None:
    """Concurrent HTTP requests are written together (collectors/http_api.py); each answer
    and the stored result must be what ingesting them one after another gives."""
    inputs = [
        (jsonl(sample("g1", latency_ms=1), sample("g2", latency_ms="slow")), "a"),
        (jsonl(sample("g1", latency_ms=2), sample("g3"), sample("g3", prompt="repeat")), "b"),
        (jsonl('{"request_id": "broken", '), "c"),                    # needs the SQL path
        (jsonl(sample("g3", latency_ms=3, prompt="mail bob@example.com"), sample("g4")), "d"),
    ]
    prior = jsonl(sample("g4", latency_ms=9))
    one_by_one, grouped = Store.memory(), Store.memory()
    try:
        for store in (one_by_one, grouped):
            pipeline.ingest_lines(store, prior, source="prior")
        expected = [pipeline.ingest_lines(one_by_one, lines, source=source) for lines, source in inputs]
        got = pipeline.ingest_line_batches(grouped, inputs)
        assert [r.as_dict() for r in got] == [r.as_dict() for r in expected]
        assert _state(grouped) == _state(one_by_one)
    finally:
        one_by_one.close()
        grouped.close()


def test_concurrent_http_posts_each_get_their_own_answer(tmp_path: Any) -> None:
    import threading

    import httpx

    from genobs.runtime import ServerSettings, start_platform

    handle = start_platform(tmp_path / "genobs.duckdb",
                              settings=ServerSettings(poll_nvml=False, ingest_token=None))
    answers: dict[int, Any] = {}
    try:
        def post(i: int) -> None:
            body = [sample(f"h{i}"), sample(f"h{i}-bad", latency_ms=-1)] if i % 3 == 0 else sample(f"h{i}")
            with httpx.Client(base_url=handle.url, timeout=60) as client:
                answers[i] = client.post("/v1/samples", json=body).json()

        threads = [threading.Thread(target=post, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, answer in answers.items():
            if i % 3 == 0:
                assert (answer["accepted"], answer["inserted"], answer["rejected"]) == (1, 1, 1)
                assert answer["errors"] == [{"line": 2, "request_id": f"h{i}-bad",
                                             "error": "latency_ms: must be >= 0, got -1.0"}]
            else:
                assert (answer["accepted"], answer["inserted"], answer["rejected"], answer["errors"]) == (1, 1, 0, [])
        assert len(answers) == 24
        assert handle.store.fetchone("SELECT count(*) FROM samples")[0] == 24
        assert handle.store.fetchone("SELECT count(*) FROM dead_letter")[0] == 8
    finally:
        handle.stop()
        handle.store.close()


# --------------------------------------------------------------------------- the PII prefilter

_prefilter_text = st.lists(
    st.one_of(_pii_bits, st.sampled_from(["sk-", "AKIA", "ghs_", "github_pat_", "xoxb-", "AIza", "hf_", "eyJ",
                                          "BeArEr ", "+", "@", "(415) ", "555.0132", "-", "_"]),
              st.text(alphabet="0123456789 .-+()@_abcehkprsxyzAEIKJ\n\t\u000bé", max_size=30)),
    max_size=8,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(text=_prefilter_text)
def test_the_pii_prefilter_never_misses_a_match(text: str) -> None:
    """check_lines skips the exact PII search when may_have_pii says no: it must never
    say no to a text that one of the redaction patterns matches."""
    from genobs.collectors import redaction

    if redaction.has_pii(text):
        assert fast_validation.may_have_pii(text), text


def test_the_pii_prefilter_on_the_redaction_corpus() -> None:
    from genobs.collectors import redaction

    for text, stored in CORPUS:
        if text != stored or redaction.has_pii(text):
            assert fast_validation.may_have_pii(text), text
    assert not fast_validation.may_have_pii("Summarise the quarterly report for account 17 in three sentences.")


_gated_text = st.lists(
    st.one_of(st.sampled_from([text for text, _ in CORPUS]),
              st.sampled_from(["secret", "SeCrEt_Access_Key: ", "AKIAIOSFODNN7EXAMPLE ", "DE89 3704 0044 0532 0130 00",
                               "GB82WEST12345698765432", "123-45-6789", "078 05 1120", "4155550132", "0301234567",
                               "+49 (0)30 123456", "sk-", "xoxb-", "AIza", "eyJ", "ghs_", "hf_", "@", "+", "\x01"]),
              st.text(alphabet="0123456789 .-+()@_/abcehkprstxyzABKIJSZ\n\té", max_size=40)),
    max_size=8,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=_gated_text)
def test_the_gated_pii_search_is_the_combined_search(text: str) -> None:
    """check_lines searches only the patterns whose cheap condition holds: each condition
    must hold whenever its pattern matches, so the answer is the combined search's."""
    from genobs.collectors import redaction

    candidates = fast_validation._pii_candidates(text)
    for _pattern, regex in redaction.PY_PATTERNS:
        if regex.search(text):
            assert regex in candidates, (_pattern.name, text)
    assert fast_validation.pii_found(text) == redaction.has_pii(text), text


def test_the_gated_pii_search_on_the_corpus() -> None:
    from genobs.collectors import redaction

    for text, _ in CORPUS:
        candidates = fast_validation._pii_candidates(text)
        for pattern, regex in redaction.PY_PATTERNS:
            if regex.search(text):
                assert regex in candidates, (pattern.name, text)
        assert fast_validation.pii_found(text) == redaction.has_pii(text), text


def test_label_fields_with_digits_do_not_send_clean_records_to_the_exact_search() -> None:
    """Label fields are scanned with the texts; a date-like model_version and a few numbers
    in the texts add up to 13 digits, which is no card number unless they form one run."""
    record = json.dumps(sample("r-1", model_version="2025-01-01",
                               prompt="Summarise the quarterly report for account 123 in three sentences.",
                               response="Revenue grew 12% quarter over quarter; costs were flat.")).encode()
    checked = fast_validation.check_lines([record], 1, redact=True)
    assert checked is not None and not checked.rows[0].errors
    joined = "\x01".join(fast_validation._texts(checked.rows[0].values))
    assert "2025-01-01" in joined and not fast_validation._pii_candidates(joined)
