"""PII redaction before storage (DESIGN §10): emails, phone numbers, card numbers (only those
that pass the Luhn check), API keys and bearer tokens. On by default, per-pattern counts in
the ingest summary, ``--no-redact`` (or ``ingest.redact: false``) to store text as is.

The corpus is ingested through the real pipeline into a real DuckDB file, and each stored
text is compared with what a user expects to see.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genobs.collectors.pipeline import IngestOptions, ingest_records
from genobs.cli import app
from genobs.store import Store
from helpers.pii_corpus import BEARER, CARD, CORPUS, EMAIL, KEY, PHONE

def record(i: int, **fields: object) -> dict:
    return {"request_id": f"r{i:03d}", "timestamp": "2025-01-15T10:00:00Z", "model": "m", "model_version": "v1",
            **fields}


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "redaction.duckdb")
    yield s
    s.close()


def test_corpus_of_positive_and_negative_examples(store: Store) -> None:
    assert len(CORPUS) >= 30
    result = ingest_records(store, [record(i, prompt=text) for i, (text, _) in enumerate(CORPUS)], source="t")
    assert result.rejected == 0, result.errors
    stored = dict(store.fetchall("SELECT request_id, prompt FROM samples"))
    wrong = [(text, stored[f"r{i:03d}"], want) for i, (text, want) in enumerate(CORPUS)
             if stored[f"r{i:03d}"] != want]
    assert wrong == []


def test_every_text_field_is_redacted_and_counted_per_pattern(store: Store) -> None:
    result = ingest_records(store, [
        record(1, prompt="mail a@b.io or c@d.io", response="call +1 415-555-0132",
               reference="card 4111 1111 1111 1111", error_type="Bearer abcdefghijklmnop0123456789",
               context=["key AKIAIOSFODNN7EXAMPLE", "nothing here", "e@f.org"]),
        record(2, prompt="clean text", response="more clean text"),
        # unknown keys are kept in attributes: they are redacted too
        record(3, user_email="bob@example.com", attributes={"note": "reach me at +44 7911 123456", "n": 5}),
    ], source="t")
    assert result.accepted == 3
    assert result.redactions == {"email": 4, "phone": 2, "card_number": 1, "api_key": 1, "bearer_token": 1}
    row = store.fetchone("SELECT prompt, response, reference, error_type, context FROM samples WHERE request_id = 'r001'")
    assert row == (f"mail {EMAIL} or {EMAIL}", f"call {PHONE}", f"card {CARD}", f"Bearer {BEARER}",
                   [f"key {KEY}", "nothing here", EMAIL])
    assert store.fetchone("SELECT prompt, response FROM samples WHERE request_id = 'r002'") == (
        "clean text", "more clean text")
    (attributes,) = store.fetchone("SELECT CAST(attributes AS VARCHAR) FROM samples WHERE request_id = 'r003'")
    assert json.loads(attributes) == {"user_email": EMAIL, "note": f"reach me at {PHONE}", "n": 5}


def test_redaction_off_stores_text_as_is(store: Store) -> None:
    text = "mail a@b.io, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE"
    result = ingest_records(store, [record(1, prompt=text, user_email="bob@example.com")], source="t",
                            options=IngestOptions(redact=False))
    assert result.redactions == {}
    assert store.fetchone("SELECT prompt, attributes->>'user_email' FROM samples") == (text, "bob@example.com")


@pytest.fixture
def pii_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GENOBS_DB", "GENOBS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pii.jsonl"
    path.write_text(json.dumps(record(1, prompt="I am bob@example.com, card 4111 1111 1111 1111",
                                      response="call (415) 555-0132 or bob@example.com")) + "\n")
    return path


def test_cli_redacts_by_default_and_reports_counts(tmp_path: Path, pii_file: Path) -> None:
    db = tmp_path / "on.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(pii_file), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "redacted: card_number 1, email 2, phone 1" in result.output
    report = CliRunner().invoke(app, ["ingest", str(pii_file), "--db", str(db), "--report", "json"])
    assert json.loads(report.stdout)["total"]["redactions"] == {"email": 2, "card_number": 1, "phone": 1}
    assert Store.open(db).fetchone("SELECT prompt FROM samples") == (f"I am {EMAIL}, card {CARD}",)


def test_cli_no_redact_and_config_switch_redaction_off(tmp_path: Path, pii_file: Path) -> None:
    db = tmp_path / "off.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(pii_file), "--db", str(db), "--no-redact"])
    assert result.exit_code == 0, result.output
    assert "redacted: none" in result.output
    assert Store.open(db).fetchone("SELECT prompt FROM samples") == ("I am bob@example.com, card 4111 1111 1111 1111",)

    (tmp_path / "genobs.yaml").write_text("ingest:\n  redact: false\n")
    db2 = tmp_path / "off2.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(pii_file), "--db", str(db2)])
    assert result.exit_code == 0 and "redacted: none" in result.output
    assert Store.open(db2).fetchone("SELECT response FROM samples") == ("call (415) 555-0132 or bob@example.com",)
