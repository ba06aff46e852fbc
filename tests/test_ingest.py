"""`genobs ingest FILE...` end to end: the real CLI (Typer's CliRunner, in process) against
a real DuckDB file in tmp_path.

Every kind of bad input gets a clear message naming the line and field, an exit code per
DESIGN §4 (0 all stored, 3 some rejected, 2 unusable input), leaves accepted records (and
what was stored before) intact, and puts rejected records in dead_letter with the reason.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from genobs.cli import app
from genobs.store import Store
from helpers.ingest_cases import TS, bad_ingest_cases, jsonl, sample

def one_line(text: str) -> str:
    """Rich wraps long lines for a non-terminal; compare messages with whitespace collapsed."""
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GENOBS_DB", "GENOBS_CONFIG", "GENOBS_INGEST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./genobs.yaml


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "genobs.duckdb"


@pytest.fixture
def genobs(db: Path):
    """Run `genobs ARGS... --db DB`; returns the click Result."""
    runner = CliRunner()

    def run(*args: str, input: bytes | None = None) -> Result:
        return runner.invoke(app, [*args, "--db", str(db)], input=input, catch_exceptions=False)

    return run


@pytest.fixture
def store(db: Path):
    s = Store.open(db)
    yield s
    s.close()


def rows(store: Store, sql: str, params: list | None = None) -> list[tuple]:
    return store.fetchall(sql, params)


def stored_ids(store: Store) -> list[str]:
    return [r for (r,) in rows(store, "SELECT request_id FROM samples ORDER BY request_id")]


def dead_letters(store: Store) -> list[tuple[int | None, str]]:
    return rows(store, "SELECT line, error FROM dead_letter ORDER BY id")


# --------------------------------------------------------------------------- the happy path


def test_ingest_stores_every_field_and_reports_zero_exit(tmp_path: Path, genobs, store: Store) -> None:
    record = sample(
        "full-1", service="chat-api", variant="canary", modality="text", prompt="What is 2+2?", response="4",
        context=["doc one", "doc two"], reference="4", status="error", error_type="Timeout", latency_ms=812.5,
        ttft_ms=95, input_tokens=12, output_tokens=3, cost_usd=0.0021, safety_flagged=False, cache_hit=True,
        feedback=-1, tenant="acme", region="eu-west-1", attributes={"route": "/chat"},
    )
    path = tmp_path / "samples.jsonl"
    path.write_bytes(jsonl(record, sample("min-1")))
    result = genobs("ingest", str(path))
    assert result.exit_code == 0, result.output
    assert f"{path}: 2 accepted (2 new, 0 updated), 0 rejected; redacted: none" in result.output

    got = rows(store, "SELECT service, variant, modality, prompt, response, context, reference, status, error_type, "
                      "latency_ms, ttft_ms, input_tokens, output_tokens, cost_usd, safety_flagged, cache_hit, "
                      "feedback, tenant, region, attributes->>'route', epoch(timestamp), source "
                      "FROM samples WHERE request_id = 'full-1'")[0]
    assert got[:-1] == ("chat-api", "canary", "text", "What is 2+2?", "4", ["doc one", "doc two"], "4", "error",
                        "Timeout", 812.5, 95.0, 12, 3, 0.0021, False, True, -1, "acme", "eu-west-1", "/chat",
                        1736935200.0)
    assert got[-1].endswith("samples.jsonl")
    # Defaults of the sample contract.
    assert rows(store, "SELECT service, variant, modality, status FROM samples WHERE request_id = 'min-1'") == [
        ("default", "primary", "text", "ok")]
    assert dead_letters(store) == []


def test_reingesting_updates_and_never_duplicates(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("r1", latency_ms=1), sample("r2", latency_ms=2)))
    assert genobs("ingest", str(path)).exit_code == 0
    path.write_bytes(jsonl(sample("r1", latency_ms=10), sample("r3", latency_ms=3)))
    result = genobs("ingest", str(path), "--report", "json")
    assert result.exit_code == 0
    total = json.loads(result.stdout)["total"]
    assert (total["accepted"], total["inserted"], total["updated"], total["rejected"]) == (2, 1, 1, 0)
    assert rows(store, "SELECT request_id, latency_ms FROM samples ORDER BY 1") == [
        ("r1", 10.0), ("r2", 2.0), ("r3", 3.0)]


def test_a_large_file_is_redacted_and_counted_like_a_small_one(tmp_path: Path, genobs, store: Store) -> None:
    # Big chunks redact inline while inserting; small ones stage the rows first: same result.
    records = [sample(f"r{i}", prompt=f"question {i}" + (f" mail u{i}@example.com" if i % 100 == 0 else ""),
                      context=["passage", f"call +1 415-555-{i % 10000:04d}" if i % 250 == 0 else "more"])
               for i in range(6000)]
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl(*records))
    result = genobs("ingest", str(path), "--report", "json")
    assert result.exit_code == 0
    total = json.loads(result.stdout)["total"]
    assert total["accepted"] == 6000
    assert total["redactions"] == {"email": 60, "phone": 24}
    assert rows(store, "SELECT prompt, context FROM samples WHERE request_id = 'r1000'") == [
        ("question 1000 mail [REDACTED:email]", ["passage", "call [REDACTED:phone]"])]
    assert rows(store, "SELECT count(*) FROM samples WHERE prompt LIKE '%@example.com%'") == [(0,)]


def test_report_json_is_machine_readable(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("ok-1", prompt="mail bob@example.com"), sample("bad-1", latency_ms="slow")))
    result = genobs("ingest", str(path), "--report", "json")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["exit_code"] == 3
    (entry,) = report["files"]
    assert entry["file"] == str(path)
    assert (entry["received"], entry["accepted"], entry["rejected"]) == (2, 1, 1)
    assert entry["redactions"] == {"email": 1}
    assert entry["errors"] == [{"line": 2, "request_id": "bad-1", "error": 'latency_ms: expected a number, got "slow"'}]
    assert report["total"]["accepted"] == 1


def test_unknown_keys_are_kept_in_attributes(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("r1", user_tier="gold", experiment={"arm": 2}, attributes={"route": "/chat"}),
                           sample("r2", gpu_count=4)))
    assert genobs("ingest", str(path)).exit_code == 0
    got = dict(rows(store, "SELECT request_id, CAST(attributes AS VARCHAR) FROM samples"))
    assert json.loads(got["r1"]) == {"route": "/chat", "user_tier": "gold", "experiment": {"arm": 2}}
    assert json.loads(got["r2"]) == {"gpu_count": 4}


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1736935200, "2025-01-15 10:00:00+00"),             # epoch seconds
        (1736935200123, "2025-01-15 10:00:00.123+00"),      # epoch milliseconds
        ("1736935200.5", "2025-01-15 10:00:00.5+00"),       # epoch seconds as text
        ("2025-01-15T12:00:00+02:00", "2025-01-15 10:00:00+00"),  # RFC 3339 with an offset, stored UTC
        ("2025-01-15T10:00:00.250Z", "2025-01-15 10:00:00.25+00"),
    ],
)
def test_timestamps_in_rfc3339_and_epoch_seconds_or_milliseconds_are_stored_utc(
    tmp_path: Path, genobs, store: Store, timestamp: Any, expected: str
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("t", timestamp=timestamp)))
    assert genobs("ingest", str(path)).exit_code == 0
    assert rows(store, "SELECT CAST(timestamp AS VARCHAR) FROM samples") == [(expected,)]


def test_gzip_input_is_recognised_whatever_its_name(tmp_path: Path, genobs, store: Store) -> None:
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(jsonl(sample("g1"), sample("g2"))))
    (tmp_path / "export.dat").write_bytes(gzip.compress(jsonl(sample("g3"))))
    result = genobs("ingest", str(tmp_path / "a.jsonl.gz"), str(tmp_path / "export.dat"))
    assert result.exit_code == 0, result.output
    assert stored_ids(store) == ["g1", "g2", "g3"]


def test_stdin_dash(genobs, store: Store) -> None:
    result = genobs("ingest", "-", input=jsonl(sample("s1"), sample("s2")))
    assert result.exit_code == 0, result.output
    assert stored_ids(store) == ["s1", "s2"]
    assert rows(store, "SELECT DISTINCT source FROM samples") == [("stdin",)]


def test_stdin_gzip(genobs, store: Store) -> None:
    result = genobs("ingest", "-", input=gzip.compress(jsonl(sample("s1"))))
    assert result.exit_code == 0, result.output
    assert stored_ids(store) == ["s1"]


def test_csv_with_the_contract_columns(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "request_id,timestamp,model,model_version,latency_ms,input_tokens,cache_hit,context,team\n"
        f"c1,{TS},m,v1,12.5,7,true,\"[\"\"d1\"\",\"\"d2\"\"]\",search\n"
        f"c2,{TS},m,v1,-3,7,false,,search\n"
    )
    result = genobs("ingest", str(path))
    assert result.exit_code == 3
    assert "line 3" in result.output and "latency_ms" in result.output   # line 1 is the header
    assert rows(store, "SELECT request_id, latency_ms, input_tokens, cache_hit, context, attributes->>'team' "
                       "FROM samples") == [("c1", 12.5, 7, True, ["d1", "d2"], "search")]
    assert dead_letters(store) == [(3, "latency_ms: must be >= 0, got -3.0")]


def test_parquet(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({
        "request_id": ["p1", "p2"], "timestamp": [TS, "yesterday"], "model": ["m", "m"],
        "model_version": ["v1", "v1"], "latency_ms": [5.0, 6.0], "output_tokens": [10, 11], "shard": [1, 2],
    }), path)
    result = genobs("ingest", str(path))
    assert result.exit_code == 3
    assert rows(store, "SELECT request_id, latency_ms, output_tokens, attributes->>'shard' FROM samples") == [
        ("p1", 5.0, 10, "1")]
    ((line, error),) = dead_letters(store)
    assert line == 2 and error.startswith("timestamp:") and "yesterday" in error


def test_format_option_overrides_the_file_name(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "export.txt"
    path.write_text(f"request_id,timestamp,model,model_version\nf1,{TS},m,v1\n")
    assert genobs("ingest", str(path), "--format", "csv").exit_code == 0
    assert stored_ids(store) == ["f1"]
    result = genobs("ingest", str(path), "--format", "xml")
    assert result.exit_code == 2 and "unknown format 'xml'" in one_line(result.output)


def test_json_array_file(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps([sample("j1"), sample("j2")]))
    assert genobs("ingest", str(path)).exit_code == 0
    assert stored_ids(store) == ["j1", "j2"]


def test_map_loads_an_export_with_other_column_names_and_derives_latency(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "question,response,model_ID,start_time,end_time\n"
        "What is DuckDB?,An embedded database.,gpt-x,2025-01-15T10:00:00Z,2025-01-15T10:00:01.500Z\n"
        "Capital of France?,Paris.,gpt-y,2025-01-15T10:00:02Z,2025-01-15T10:00:02.250Z\n"
        "Bad times?,Yes.,gpt-y,2025-01-15T10:00:05Z,2025-01-15T10:00:04Z\n"
    )
    result = genobs("ingest", str(path), "--map", "prompt=question", "--map", "model=model_ID",
                    "--map", "start_time=start_time", "--map", "end_time=end_time",
                    "--map", "request_id=@row_hash", "--set", "model_version=unknown")
    assert result.exit_code == 3, result.output
    assert "line 4" in result.output and "end_time: before start_time" in one_line(result.output)
    got = rows(store, "SELECT prompt, response, model, model_version, CAST(timestamp AS VARCHAR), latency_ms, "
                      "attributes FROM samples ORDER BY timestamp")
    assert got == [
        ("What is DuckDB?", "An embedded database.", "gpt-x", "unknown", "2025-01-15 10:00:00+00", 1500.0, None),
        ("Capital of France?", "Paris.", "gpt-y", "unknown", "2025-01-15 10:00:02+00", 250.0, None),
    ]
    # @row_hash ids are stable: the same export again updates, never duplicates.
    again = genobs("ingest", str(path), "--map", "prompt=question", "--map", "model=model_ID",
                   "--map", "start_time=start_time", "--map", "end_time=end_time",
                   "--map", "request_id=@row_hash", "--set", "model_version=unknown", "--report", "json")
    assert json.loads(again.stdout)["total"]["updated"] == 2
    assert rows(store, "SELECT count(*) FROM samples") == [(2,)]


def test_map_with_epoch_millisecond_start_and_end(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl({"id": "e1", "t0": 1736935200000, "t1": 1736935200420, "model": "m", "model_version": "v"}))
    result = genobs("ingest", str(path), "--map", "request_id=id", "--map", "start_time=t0", "--map", "end_time=t1")
    assert result.exit_code == 0, result.output
    assert rows(store, "SELECT request_id, CAST(timestamp AS VARCHAR), latency_ms FROM samples") == [
        ("e1", "2025-01-15 10:00:00+00", 420.0)]


def test_set_fills_only_fields_a_row_lacks(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("r1", service="search"), sample("r2")))
    result = genobs("ingest", str(path), "--set", "service=chat-api", "--set", "region=eu-west-1")
    assert result.exit_code == 0
    assert rows(store, "SELECT request_id, service, region FROM samples ORDER BY 1") == [
        ("r1", "search", "eu-west-1"), ("r2", "chat-api", "eu-west-1")]


@pytest.mark.parametrize("pair", ["nonsense", "colour=blue", "model="])
def test_bad_map_and_set_options_are_usage_errors(tmp_path: Path, genobs, pair: str) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("r1")))
    for option in ("--map", "--set"):
        result = genobs("ingest", str(path), option, pair)
        assert result.exit_code == 2
        assert f"{option} '{pair}'" in one_line(result.output)


def test_cost_is_computed_from_the_price_table_in_genobs_yaml(tmp_path: Path, genobs, store: Store) -> None:
    (tmp_path / "genobs.yaml").write_text(
        "ingest:\n  prices:\n    chat-large:\n      input_per_mtok: 2.0\n      output_per_mtok: 10.0\n")
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(
        sample("priced", input_tokens=1000, output_tokens=500),
        sample("given", input_tokens=1000, output_tokens=500, cost_usd=0.5),   # a given cost wins
        sample("unpriced", model="other", input_tokens=1000),
        sample("no-tokens"),
    ))
    assert genobs("ingest", str(path)).exit_code == 0   # ./genobs.yaml is found
    cost = dict(rows(store, "SELECT request_id, cost_usd FROM samples"))
    assert cost["priced"] == pytest.approx(0.007)       # (1000 * 2 + 500 * 10) / 1e6
    assert cost["given"] == 0.5
    assert cost["unpriced"] is None and cost["no-tokens"] is None


def test_init_creates_the_database_and_lists_its_tables(db: Path, genobs) -> None:
    result = genobs("init")
    assert result.exit_code == 0, result.output
    output = one_line(result.output)
    assert str(db) in output and "schema version" in output
    for table in ("samples", "scores", "gpu_telemetry", "dead_letter", "alerts", "notifications"):
        assert table in output
    assert db.exists()
    assert genobs("init").exit_code == 0            # again: nothing to migrate, no error


def test_a_bad_config_file_is_named(tmp_path: Path, genobs) -> None:
    (tmp_path / "bad.yaml").write_text("ingest:\n  prices:\n    m:\n      input_per_mtok: -1\n      output_per_mtok: 1\n")
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("r1")))
    result = genobs("ingest", str(path), "--config", str(tmp_path / "bad.yaml"))
    assert result.exit_code == 2
    assert "bad.yaml" in one_line(result.output) and "input_per_mtok" in one_line(result.output)


# --------------------------------------------------------------------------- bad input


PRIOR = [sample("prior-1", prompt="stored before", latency_ms=1.0), sample("prior-2", latency_ms=2.0)]


@pytest.mark.parametrize(
    ("name", "content", "exit_code", "accepted", "dead", "messages"), bad_ingest_cases()
)
def test_bad_input_is_rejected_clearly_and_nothing_accepted_is_lost(
    tmp_path: Path, genobs, store: Store, name: str | None, content: bytes | None, exit_code: int,
    accepted: list[str], dead: list[tuple[int, str]], messages: list[str],
) -> None:
    prior = tmp_path / "prior.jsonl"
    prior.write_bytes(jsonl(*PRIOR))
    assert genobs("ingest", str(prior)).exit_code == 0
    before = rows(store, "SELECT * EXCLUDE (ingested_at) FROM samples ORDER BY request_id")

    path = tmp_path / (name or "missing.jsonl")
    if content is not None:
        path.write_bytes(content)
    result = genobs("ingest", str(path))

    assert result.exit_code == exit_code, result.output
    output = one_line(result.output)
    for fragment in messages:
        assert fragment in output, (fragment, output)
    assert "Traceback" not in result.output
    # Accepted records are stored; what was stored before is untouched.
    assert stored_ids(store) == sorted(["prior-1", "prior-2", *accepted])
    assert rows(store, "SELECT * EXCLUDE (ingested_at) FROM samples WHERE request_id LIKE 'prior-%' "
                       "ORDER BY request_id") == before
    # Rejected records are in dead_letter, with the line and the reason (and the raw text).
    got = dead_letters(store)
    assert len(got) == len(dead), got
    for (line, error), (want_line, want_error) in zip(got, dead):
        assert line == want_line and want_error in error, (line, error)
    if dead:
        sources = rows(store, "SELECT DISTINCT source FROM dead_letter")
        assert sources == [(f"file:{path}",)]
        assert all(raw for (raw,) in rows(store, "SELECT raw FROM dead_letter"))


def test_a_duplicate_keeps_the_first_record(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("d1", prompt="first"), sample("d1", prompt="second")))
    assert genobs("ingest", str(path)).exit_code == 3
    assert rows(store, "SELECT prompt FROM samples") == [("first",)]


@pytest.mark.parametrize("compress", [False, True])
def test_a_file_read_in_many_chunks_numbers_lines_and_finds_duplicates_across_them(
    tmp_path: Path, genobs, store: Store, monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    """Chunks of a few lines (a reader thread checking ahead, commits every few rows): line
    numbers, CRLF endings, a byte-order mark, blank lines, a line longer than a chunk, a
    non-UTF-8 line and a duplicate in a later chunk come out as with one chunk."""
    from genobs.collectors import files

    monkeypatch.setattr(files, "CHUNK_BYTES", 400)
    monkeypatch.setattr(files, "READ_BYTES", 97)
    monkeypatch.setattr(files, "COMMIT_ROWS", 3)
    lines = [json.dumps(sample(f"c{i:03d}", latency_ms=i)).encode() for i in range(40)]
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    lines[5] = lines[5] + b"\r"
    lines[9] = b""
    lines[17] = json.dumps(sample("long", prompt="x" * 1500)).encode()
    lines[23] = b'{"request_id": "bad\xff", "model": "m"}'
    lines[31] = json.dumps(sample("c002", prompt="again")).encode()
    lines[35] = json.dumps(sample("neg", latency_ms=-1)).encode()
    data = b"\n".join(lines) + b"\r\n"
    path = tmp_path / ("many.jsonl.gz" if compress else "many.jsonl")
    path.write_bytes(gzip.compress(data) if compress else data)

    result = genobs("ingest", str(path), "--report", "json")
    assert result.exit_code == 3, result.output
    (entry,) = json.loads(result.stdout)["files"]
    assert entry["accepted"] == 36 and entry["rejected"] == 3
    expected = sorted([f"c{i:03d}" for i in range(40) if i not in (9, 17, 23, 31, 35)] + ["long"])
    assert stored_ids(store) == expected
    assert rows(store, "SELECT prompt FROM samples WHERE request_id = 'c002'") == [(None,)]
    assert rows(store, "SELECT latency_ms FROM samples WHERE request_id = 'c039'") == [(39.0,)]
    letters = dead_letters(store)
    assert [line for line, _ in letters] == [24, 32, 36]
    assert "UTF-8" in letters[0][1]
    assert letters[1][1] == "request_id: duplicate of line 3 in this input"
    assert "latency_ms: must be >= 0" in letters[2][1]
    (raw,) = rows(store, "SELECT raw FROM dead_letter WHERE line = 36")[0]
    assert raw.startswith("{") and raw.endswith("}")


def test_a_truncated_gzip_keeps_the_complete_lines_before_the_break(tmp_path: Path, genobs, store: Store) -> None:
    records = [sample(f"g{i:05d}", prompt=f"prompt number {i} " * 5) for i in range(3000)]
    data = gzip.compress(jsonl(*records))
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    result = genobs("ingest", str(path), "--report", "json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    (entry,) = report["files"]
    assert "truncated gzip" in entry["problem"]
    ids = stored_ids(store)
    assert len(ids) > 100                                     # the lines before the break were kept
    assert ids == [f"g{i:05d}" for i in range(len(ids))]      # in order, none skipped
    ((line, error),) = dead_letters(store)
    assert "truncated gzip" in error and line == len(ids) + 1


def test_a_truncated_gzip_csv_is_reported(tmp_path: Path, genobs) -> None:
    text = "request_id,timestamp,model,model_version\n" + "".join(f"c{i},{TS},m,v1\n" for i in range(5000))
    data = gzip.compress(text.encode())
    path = tmp_path / "a.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    result = genobs("ingest", str(path))
    assert result.exit_code in (2, 3)
    assert "truncated or corrupt gzip" in one_line(result.output)


def test_one_unreadable_file_among_good_ones_is_partial(tmp_path: Path, genobs, store: Store) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(sample("r1")))
    result = genobs("ingest", str(good), str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 3
    assert "nope.jsonl: no such file" in one_line(result.output)
    assert stored_ids(store) == ["r1"]


def test_the_summary_names_the_first_errors_and_counts_the_rest(tmp_path: Path, genobs, store: Store) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(*[sample(f"bad-{i}", latency_ms=-i - 1) for i in range(25)], sample("ok")))
    result = genobs("ingest", str(path))
    assert result.exit_code == 3
    output = one_line(result.output)
    assert "1 accepted" in output and "25 rejected" in output
    assert "line 1 request_id=bad-0: latency_ms: must be >= 0" in output
    assert "15 more in the dead_letter table" in output
    assert rows(store, "SELECT count(*) FROM dead_letter") == [(25,)]


def test_the_genobs_console_script_runs(tmp_path: Path) -> None:
    """The installed entry point (not only the Typer app) ingests and sets the exit code."""
    import subprocess

    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(sample("r1"), sample("r2", status="nope")))
    db = tmp_path / "sub.duckdb"
    done = subprocess.run([sys.executable, "-m", "genobs.cli", "ingest", str(path), "--db", str(db)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "1 accepted" in done.stdout and "line 2 request_id=r2: status" in done.stdout


def test_records_sent_to_a_running_server_are_read_and_mapped_the_same_way(tmp_path: Path) -> None:
    """While `genobs serve` holds the database, ingest posts the file's records to it:
    the reading and --map/--set happen here (collectors/remote_ingest.py)."""
    from genobs.collectors.remote_ingest import read_records_as_lines
    from genobs.collectors.validation import FieldMapping

    path = tmp_path / "export.csv"
    path.write_text("question,model_ID,start_time,end_time,notes\n"
                    "\"Say \"\"hi\"\", please\",gpt-x,2025-01-15T10:00:00Z,2025-01-15T10:00:00.750Z,\"a, b\"\n"
                    "short row,gpt-y\n")
    mapping = FieldMapping(columns={"prompt": "question", "model": "model_ID", "start_time": "start_time",
                                    "end_time": "end_time"}, constants={"model_version": "unknown"})
    first, second = [json.loads(line) for line in read_records_as_lines(str(path), None, mapping)]
    assert first["prompt"] == 'Say "hi", please' and first["model"] == "gpt-x" and first["notes"] == "a, b"
    assert first["latency_ms"] == 750.0 and first["timestamp"].startswith("2025-01-15T10:00:00")
    assert first["model_version"] == "unknown"
    assert second["prompt"] == "short row" and "timestamp" not in second   # the server rejects it, naming the field


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are set on Linux only")
def test_checking_threads_lower_only_their_own_priority() -> None:
    """The ingest's checking threads yield to the writer; the rest of the process (the
    writer, a server sharing it) keeps its priority."""
    import os
    import threading

    from genobs.collectors import files

    seen: dict[str, int] = {}

    def checker() -> None:
        files._yield_to_the_writer()
        seen["checker"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=checker)
    thread.start()
    thread.join()
    assert seen["checker"] >= files.CHECKER_NICENESS
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
