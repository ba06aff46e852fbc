"""The DuckDB store (genobs/store.py): schema and migrations, one database instance per
file per process with a cursor per thread, idempotent upserts, and a clear error when
another process holds the file (DESIGN §2, §3).

Everything runs against a real DuckDB file in tmp_path; the lock test holds the file
from a real second process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from genobs.collectors.pipeline import ingest_records
from genobs.cli import app
from genobs.store import (
    SAMPLE_COLUMNS,
    SCHEMA_VERSION,
    DatabaseLockedError,
    Store,
    StoreError,
    server_info_path,
)
from genobs.id_index import RequestIdIndex, hash_ids, hash_sql, known_ids

DESIGN_TABLES = {
    "samples", "gpu_telemetry", "scores", "drift_results", "alerts", "notifications",
    "silences", "canary_verdicts", "dead_letter", "schema_version",
}
T0 = datetime(2025, 1, 15, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


@pytest.fixture
def store(db: Path):
    s = Store.open(db)
    yield s
    s.close()


def sample_table(rows: list[dict]) -> pa.Table:
    """An Arrow table with every samples column; fields not given are NULL."""
    defaults = {"service": "default", "variant": "primary", "modality": "text", "status": "ok",
                "model": "m", "model_version": "v1", "timestamp": T0, "ingested_at": T0, "source": "test"}
    columns: dict[str, list] = {name: [] for name, _ in SAMPLE_COLUMNS}
    for row in rows:
        for name in columns:
            columns[name].append(row.get(name, defaults.get(name)))
    types = {"timestamp": pa.timestamp("us", tz="UTC"), "ingested_at": pa.timestamp("us", tz="UTC"),
             "latency_ms": pa.float64(), "ttft_ms": pa.float64(), "cost_usd": pa.float64(),
             "input_tokens": pa.int64(), "output_tokens": pa.int64(), "feedback": pa.int8(),
             "safety_flagged": pa.bool_(), "cache_hit": pa.bool_(), "context": pa.list_(pa.string())}
    return pa.table({name: pa.array(values, type=types.get(name, pa.string())) for name, values in columns.items()})


def column_types(store: Store, table: str) -> dict[str, str]:
    return dict(store.fetchall(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [table]))


# --------------------------------------------------------------------------- schema


def test_open_creates_the_design_tables_at_the_current_schema_version(store: Store) -> None:
    tables = {name for (name,) in store.fetchall("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}
    assert DESIGN_TABLES <= tables
    assert store.schema_version() == SCHEMA_VERSION

    samples = column_types(store, "samples")
    for field in ("request_id", "timestamp", "service", "model", "model_version", "variant", "modality",
                  "prompt", "response", "image", "context", "reference", "status", "error_type",
                  "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "safety_flagged",
                  "cache_hit", "feedback", "tenant", "region", "attributes", "ingested_at", "source"):
        assert field in samples, field
    assert samples["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert samples["context"] == "VARCHAR[]"
    assert samples["attributes"] == "JSON"

    scores = column_types(store, "scores")
    assert {"request_id", "metric", "value", "label", "details", "evaluator", "reference_model",
            "evaluated_at", "error"} <= set(scores)
    gpu = column_types(store, "gpu_telemetry")
    assert {"timestamp", "host", "gpu_index", "gpu_uuid", "utilization_pct", "memory_used_mib", "power_w",
            "temperature_c", "throttle_reasons", "ecc_uncorrected", "source", "attributes"} <= set(gpu)
    dead = column_types(store, "dead_letter")
    assert {"id", "received_at", "source", "line", "raw", "error"} <= set(dead)


def test_reopening_does_not_rerun_migrations_and_keeps_the_data(db: Path) -> None:
    first = Store.open(db)
    first.upsert_samples(sample_table([{"request_id": "kept", "prompt": "hello"}]))
    history = first.fetchall("SELECT version, description, applied_at FROM schema_version ORDER BY version")
    first.close()

    for _ in range(2):
        again = Store.open(db)
        assert again is not first
        assert again.fetchall("SELECT version, description, applied_at FROM schema_version ORDER BY version") == history
        assert again.schema_version() == SCHEMA_VERSION
        assert again.fetchall("SELECT request_id, prompt FROM samples") == [("kept", "hello")]
        again.close()


def test_a_database_from_a_newer_genobs_is_refused_with_advice(db: Path) -> None:
    store = Store.open(db)
    store.execute("INSERT INTO schema_version VALUES (?, 'from the future', now())", [SCHEMA_VERSION + 1])
    store.close()
    with pytest.raises(StoreError, match="newer than this genobs"):
        Store.open(db)


def test_a_version_1_database_is_migrated_with_its_samples_and_stores_free_text_with_fsst(db: Path) -> None:
    # A database as the first schema left it, with samples in it.
    import duckdb

    from genobs.store import MIGRATIONS

    version, description, statements = MIGRATIONS[0]
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR, "
                "applied_at TIMESTAMPTZ)")
    for statement in statements:
        con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [version, description])
    con.register("rows", sample_table([{"request_id": f"r{i}", "prompt": "the same prompt", "response": "yes",
                                        "context": ["c"], "latency_ms": 12.5} for i in range(3000)]))
    con.execute(f"INSERT INTO samples SELECT {', '.join(name for name, _ in SAMPLE_COLUMNS)} FROM rows")
    con.close()

    store = Store.open(db)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.fetchone("SELECT count(*), count(DISTINCT request_id), min(prompt), sum(latency_ms), "
                              "min(context[1]) FROM samples") == (3000, 3000, "the same prompt", 37500.0, "c")
        # New rows go on being upserted by request_id.
        store.upsert_samples(sample_table([{"request_id": "r1", "prompt": "updated"}, {"request_id": "new"}]))
        assert store.fetchone("SELECT count(*) FROM samples") == (3001,)
        assert store.fetchone("SELECT prompt FROM samples WHERE request_id = 'r1'") == ("updated",)
        # A repeated short prompt is what DuckDB's analysis would store as a dictionary:
        # the column is FSST because the table says so.
        store.execute("CHECKPOINT")
        methods = {row[0] for row in store.fetchall(
            "SELECT compression FROM pragma_storage_info('samples') "
            "WHERE column_name = 'prompt' AND segment_type = 'VARCHAR'")}
        assert methods == {"FSST"}, methods
    finally:
        store.close()


# --------------------------------------------------------------------------- instances and cursors


def test_one_instance_per_database_file(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(db.parent)
    store = Store.open(db)
    assert Store.open(str(db)) is store
    assert Store.open(db.name) is store                       # relative path, same file
    assert Store.open(db.parent / "." / db.name) is store
    other = Store.open(db.parent / "other.duckdb")
    assert other is not store
    other.close()

    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.cursor()
    reopened = Store.open(db)
    assert reopened is not store
    reopened.close()


def test_each_thread_gets_its_own_cursor_on_the_shared_database(store: Store) -> None:
    main_cursor = store.cursor()
    assert store.cursor() is main_cursor
    seen: dict[int, object] = {}

    def grab(i: int) -> None:
        cur = store.cursor()
        assert store.cursor() is cur
        # Temp tables are per connection: a thread's own never clash with another's.
        cur.execute("CREATE TEMP TABLE scratch AS SELECT ? AS who", [i])
        assert cur.execute("SELECT who FROM scratch").fetchone() == (i,)
        seen[i] = cur

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen.values()} | {id(main_cursor)}) == 5


def test_concurrent_writers_from_threads_lose_and_duplicate_nothing(store: Store) -> None:
    errors: list[BaseException] = []
    n_threads, per_thread = 6, 40

    def writer(t: int) -> None:
        try:
            for batch in range(2):
                records = [
                    {"request_id": f"t{t}-{k}", "timestamp": "2025-01-15T10:00:00Z", "model": "m",
                     "model_version": "v1", "latency_ms": float(k), "prompt": f"thread {t}"}
                    for k in range(batch * per_thread // 2, (batch + 1) * per_thread // 2)
                ]
                # Every thread also writes the same shared ids: last writer wins, one row each.
                records += [{"request_id": f"shared-{k}", "timestamp": "2025-01-15T10:00:00Z", "model": "m",
                             "model_version": "v1", "prompt": f"thread {t}"} for k in range(5)]
                result = ingest_records(store, records, source=f"thread-{t}")
                assert result.rejected == 0, result.errors
                store.write_scores([{"request_id": f"t{t}-0", "metric": "m", "value": float(batch),
                                     "evaluator": "e", "reference_model": "r"}])
                store.upsert_gpu_telemetry(pa.table({
                    "timestamp": pa.array([T0], type=pa.timestamp("us", tz="UTC")),
                    "host": ["h"], "gpu_index": pa.array([t], type=pa.int32()),
                    "utilization_pct": [float(batch)],
                }))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.fetchone("SELECT count(*), count(DISTINCT request_id) FROM samples") == (
        n_threads * per_thread + 5, n_threads * per_thread + 5)
    assert store.fetchone("SELECT count(*) FROM scores") == (n_threads,)
    assert store.fetchone("SELECT count(*) FROM scores WHERE value = 1.0") == (n_threads,)
    assert store.fetchone("SELECT count(*) FROM gpu_telemetry") == (n_threads,)


# --------------------------------------------------------------------------- writes


def test_upserting_samples_updates_by_request_id_and_never_duplicates(store: Store) -> None:
    counts = store.upsert_samples(sample_table([{"request_id": "a", "latency_ms": 1.0},
                                                {"request_id": "b", "latency_ms": 2.0}]))
    assert (counts.inserted, counts.updated) == (2, 0)
    counts = store.upsert_samples(sample_table([{"request_id": "b", "latency_ms": 20.0, "prompt": "new"},
                                                {"request_id": "c", "latency_ms": 3.0}]))
    assert (counts.inserted, counts.updated) == (1, 1)
    counts = store.upsert_samples(sample_table([{"request_id": "b", "latency_ms": 20.0, "prompt": "new"}]))
    assert (counts.inserted, counts.updated) == (0, 1)
    assert store.fetchall("SELECT request_id, latency_ms, prompt FROM samples ORDER BY request_id") == [
        ("a", 1.0, None), ("b", 20.0, "new"), ("c", 3.0, None)]


def test_python_and_duckdb_hash_request_ids_alike(store: Store) -> None:
    """The id index hashes stored ids in SQL at load and new ids in Python: they must agree."""
    ids = ["a", "", "req-0001", "é-ü-日本", "emoji \U0001f600", "x" * 256, "tab\tnew\nline", "'quote\"", "\x01"]
    in_sql = store.fetchall(f"SELECT {hash_sql('x')} FROM unnest(?::VARCHAR[]) WITH ORDINALITY t(x, i) ORDER BY i",
                            [ids])
    assert [h for (h,) in in_sql] == hash_ids(ids).tolist()


def test_the_id_index_skips_the_delete_for_new_ids_and_still_updates_known_ones(db: Path) -> None:
    store = Store.open(db)
    store.upsert_samples(sample_table([{"request_id": f"old-{i}", "latency_ms": 1.0} for i in range(50)]))
    store.close()
    store = Store.open(db)          # a new process-wide instance: the index is loaded from the file
    try:
        counts = store.upsert_samples(sample_table([{"request_id": "old-7", "latency_ms": 7.0},
                                                    {"request_id": "new-1", "latency_ms": 1.0}]))
        assert (counts.inserted, counts.updated) == (1, 1)
        with store.transaction():   # inside a caller's transaction too
            counts = store.upsert_samples(sample_table([{"request_id": "new-1", "latency_ms": 2.0},
                                                        {"request_id": "new-2", "latency_ms": 2.0}]))
        assert (counts.inserted, counts.updated) == (1, 1)
        assert store.stored_request_ids(["old-7", "new-2", "never", "old-99"]) == {"old-7", "new-2"}
        assert store.fetchone("SELECT count(*), count(DISTINCT request_id) FROM samples") == (52, 52)
        assert store.fetchall("SELECT request_id, latency_ms FROM samples WHERE request_id IN "
                              "('old-7', 'new-1', 'new-2') ORDER BY 1") == [
            ("new-1", 2.0), ("new-2", 2.0), ("old-7", 7.0)]
    finally:
        store.close()


def test_a_rolled_back_upsert_leaves_the_index_safe(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.upsert_samples(sample_table([{"request_id": "gone"}]))
            raise RuntimeError("abort")
    assert store.fetchone("SELECT count(*) FROM samples") == (0,)
    counts = store.upsert_samples(sample_table([{"request_id": "gone", "latency_ms": 1.0}]))
    assert (counts.inserted, counts.updated) == (1, 0)     # the index may know it; the table does not
    assert store.fetchone("SELECT count(*) FROM samples") == (1,)


def test_the_sql_upsert_consults_the_index_too(store: Store) -> None:
    store.upsert_samples(sample_table([{"request_id": "s1", "latency_ms": 1.0}]))
    columns = ", ".join(f'"{name}"' for name, _ in SAMPLE_COLUMNS)
    store.execute("CREATE TEMP TABLE incoming AS SELECT * FROM samples LIMIT 0")
    with store.transaction() as cur:
        cur.execute(f"INSERT INTO incoming SELECT {columns} FROM samples")
        cur.execute("UPDATE incoming SET latency_ms = 5.0")
        cur.execute("INSERT INTO incoming SELECT * REPLACE ('s2' AS request_id) FROM incoming")
        counts = store.upsert_samples(f"SELECT {columns} FROM incoming")
    assert (counts.inserted, counts.updated) == (1, 1)
    assert store.fetchall("SELECT request_id, latency_ms FROM samples ORDER BY 1") == [("s1", 5.0), ("s2", 5.0)]


def test_few_row_inserts_bound_as_parameters_store_what_the_arrow_scan_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inserts of up to SMALL_INSERT_ROWS rows bind the values as parameters; the stored rows
    must be exactly those of the Arrow path."""
    from genobs import store as store_module

    rows = [
        {"request_id": "a", "context": [], "attributes": '{"k":"é","n":1.5}', "feedback": -1, "latency_ms": -0.0,
         "input_tokens": 2**62, "safety_flagged": True, "prompt": "line\nbreak \u2603"},
        {"request_id": "b", "context": [None, "x"], "cost_usd": 1e-300, "cache_hit": False,
         "timestamp": datetime(1970, 1, 1, tzinfo=timezone.utc)},
        {"request_id": "c"},
    ]
    stored = []
    for name, small in (("values", 4), ("arrow", 0)):
        monkeypatch.setattr(store_module, "SMALL_INSERT_ROWS", small)
        s = Store.open(tmp_path / f"{name}.duckdb")
        try:
            s.upsert_samples(sample_table(rows))
            s.add_dead_letters([("src", 3, "raw", "error"), ("src", None, None, "whole body")])
            stored.append((s.fetchall("SELECT * FROM samples ORDER BY request_id"),
                           s.fetchall("SELECT source, line, raw, error FROM dead_letter ORDER BY id")))
        finally:
            s.close()
    assert stored[0] == stored[1]


def test_request_id_index_membership(monkeypatch: pytest.MonkeyPatch) -> None:
    from genobs import id_index

    monkeypatch.setattr(id_index, "_MIN_RECENT", 64)     # merge into the sorted array often
    index = RequestIdIndex()
    hashes = hash_ids([f"r{i}" for i in range(1000)])
    for start in range(0, 600, 7):
        index.add(hashes[start:min(start + 7, 600)])
    assert len(index) == 600
    assert index.known(hashes[:600]).all()
    assert not index.known(hashes[600:]).any()
    assert known_ids(index, ["r1", "r999", "r599"], hash_ids(["r1", "r999", "r599"])) == ["r1", "r599"]


def test_scores_and_gpu_readings_upsert_on_their_keys(store: Store) -> None:
    score = {"request_id": "a", "metric": "clip_score", "value": 0.3, "label": "low", "details": {"k": 1},
             "evaluator": "clip", "reference_model": "ViT-B-32"}
    store.write_scores([score])
    store.write_scores([{**score, "value": 0.9, "label": "high"}])
    store.write_scores([{**score, "reference_model": "ViT-L-14"}])
    rows = store.fetchall("SELECT reference_model, value, label, details->>'k' FROM scores ORDER BY 1")
    assert rows == [("ViT-B-32", 0.9, "high", "1"), ("ViT-L-14", 0.3, "low", "1")]

    reading = {"timestamp": pa.array([T0, T0], type=pa.timestamp("us", tz="UTC")), "host": ["h1", "h1"],
               "gpu_index": pa.array([0, 0], type=pa.int32()), "power_w": [100.0, 150.0]}
    store.upsert_gpu_telemetry(pa.table(reading))        # a repeat inside one batch keeps one row
    store.upsert_gpu_telemetry(pa.table({**reading, "power_w": [200.0, 200.0]}))
    assert store.fetchall("SELECT host, gpu_index, power_w FROM gpu_telemetry") == [("h1", 0, 200.0)]


def test_a_failed_transaction_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction() as cur:
            cur.execute("INSERT INTO dead_letter (received_at, source, error) VALUES (now(), ?, ?)", ["s", "e"])
            raise RuntimeError("boom")
    assert store.fetchone("SELECT count(*) FROM dead_letter") == (0,)
    assert store.add_dead_letters([("src", 3, "raw text", "why")]) == 1
    assert store.fetchall("SELECT source, line, raw, error FROM dead_letter") == [("src", 3, "raw text", "why")]


def test_values_are_parameters_never_sql(store: Store) -> None:
    nasty = "x'); DROP TABLE samples; --"
    result = ingest_records(store, [{"request_id": nasty, "timestamp": "2025-01-15T10:00:00Z", "model": nasty,
                                     "model_version": "v1", nasty: nasty}], source=nasty)
    assert result.accepted == 1
    assert store.fetchone("SELECT request_id, model, source, attributes->>? FROM samples", [nasty]) == (
        nasty, nasty, nasty, nasty)


# --------------------------------------------------------------------------- another process


HOLDER = """
import sys, time
from genobs.store import Store
store = Store.open(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
store.close()
"""


@pytest.fixture
def held_db(db: Path):
    """The database file held open for writing by a second process."""
    Store.open(db).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield db
    finally:
        if holder.stdin:
            holder.stdin.close()
        holder.wait(timeout=30)


def test_a_second_process_gets_a_clear_lock_error(held_db: Path) -> None:
    with pytest.raises(DatabaseLockedError) as info:
        Store.open(held_db)
    assert info.value.server_url is None
    assert str(held_db) in str(info.value) and "in use" in str(info.value)

    server_info_path(held_db).write_text(json.dumps({"url": "http://127.0.0.1:9"}))
    with pytest.raises(DatabaseLockedError) as info:
        Store.open(held_db)
    assert info.value.server_url == "http://127.0.0.1:9"
    assert "--server http://127.0.0.1:9" in str(info.value)


def test_cli_commands_turn_the_lock_error_into_advice(held_db: Path, tmp_path: Path) -> None:
    server_info_path(held_db).write_text(json.dumps({"url": "http://127.0.0.1:9"}))  # recorded, not answering
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"request_id": "r", "timestamp": "2025-01-15T10:00:00Z", "model": "m",
                                "model_version": "v1"}) + "\n")
    runner = CliRunner()
    for args in (["init", "--db", str(held_db)], ["ingest", str(good), "--db", str(held_db)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        text = " ".join(result.output.split())
        assert "is in use" in text and "http://127.0.0.1:9" in text
        assert "Traceback" not in result.output
