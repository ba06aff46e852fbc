"""The DuckDB store: schema, migrations, connections.

Every read and write of genobs goes through this module, so a second backend (DuckLake)
can be put behind the same interface later (DESIGN §9).

DuckDB allows one read-write process per database file (DESIGN §2). Inside a process,
``Store.open(path)`` returns one shared instance per file and ``store.cursor()`` gives
each thread its own cursor on that one database instance.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from genobs.id_index import RequestIdIndex, hash_ids, hash_sql, known_ids

DEFAULT_DB = "genobs.duckdb"
SERVER_INFO_SUFFIX = ".server.json"


class StoreError(Exception):
    """A store problem the user can act on (message is shown as is)."""


class DatabaseLockedError(StoreError):
    """Another process holds the database file (DuckDB allows one writer per file)."""

    def __init__(self, path: Path, server_url: str | None, detail: str) -> None:
        self.path = path
        self.server_url = server_url
        self.detail = detail   # DuckDB's own words, for logs; never shown raw (DESIGN §2)
        hint = (
            f"the genobs server at {server_url} holds it: commands send their work to it "
            f"(--server {server_url}); stop it to open the file directly"
            if server_url
            else "another process holds it (a running `genobs serve`, or a DuckDB session): stop it, "
                 "or pass --server URL of the server that holds it"
        )
        super().__init__(f"database {path} is in use: {hint}")


def resolve_db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """--db, then GENOBS_DB, then ./genobs.duckdb."""
    chosen = db if db not in (None, "") else os.environ.get("GENOBS_DB") or DEFAULT_DB
    return Path(chosen).expanduser().resolve()


def server_info_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + SERVER_INFO_SUFFIX)


def recorded_server_url(db_path: Path) -> str | None:
    """The URL a running `genobs serve` recorded next to the database file, if any."""
    info = server_info_path(db_path)
    try:
        data = json.loads(info.read_text())
    except (OSError, ValueError):
        return None
    url = data.get("url")
    return url if isinstance(url, str) else None


# --------------------------------------------------------------------------- schema

SAMPLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("request_id", "VARCHAR NOT NULL"),  # unique: upsert_samples replaces by request_id
    ("timestamp", "TIMESTAMPTZ NOT NULL"),
    ("service", "VARCHAR NOT NULL"),
    ("model", "VARCHAR NOT NULL"),
    ("model_version", "VARCHAR NOT NULL"),
    ("variant", "VARCHAR NOT NULL"),
    ("modality", "VARCHAR NOT NULL"),
    ("prompt", "VARCHAR"),
    ("response", "VARCHAR"),
    ("image", "VARCHAR"),
    ("context", "VARCHAR[]"),
    ("reference", "VARCHAR"),
    ("status", "VARCHAR NOT NULL"),
    ("error_type", "VARCHAR"),
    ("latency_ms", "DOUBLE"),
    ("ttft_ms", "DOUBLE"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cost_usd", "DOUBLE"),
    ("safety_flagged", "BOOLEAN"),
    ("cache_hit", "BOOLEAN"),
    ("feedback", "TINYINT"),
    ("tenant", "VARCHAR"),
    ("region", "VARCHAR"),
    ("attributes", "JSON"),
    ("source", "VARCHAR"),
    ("ingested_at", "TIMESTAMPTZ NOT NULL"),
)

GPU_COLUMNS: tuple[tuple[str, str], ...] = (
    ("timestamp", "TIMESTAMPTZ NOT NULL"),
    ("host", "VARCHAR NOT NULL"),
    ("gpu_index", "INTEGER NOT NULL"),
    ("gpu_uuid", "VARCHAR"),
    ("gpu_name", "VARCHAR"),
    ("utilization_pct", "DOUBLE"),
    ("memory_used_mib", "DOUBLE"),
    ("memory_total_mib", "DOUBLE"),
    ("power_w", "DOUBLE"),
    ("temperature_c", "DOUBLE"),
    ("sm_clock_mhz", "DOUBLE"),
    ("throttle_reasons", "VARCHAR"),
    ("ecc_uncorrected", "BIGINT"),
    ("source", "VARCHAR"),
    ("attributes", "JSON"),
)


def _columns_sql(columns: Sequence[tuple[str, str]]) -> str:
    return ",\n    ".join(f'"{name}" {decl}' for name, decl in columns)


# Free text is stored with FSST without DuckDB trying each method first: it analyses every
# candidate compression per column and row group at commit, and for prompts and responses
# FSST is what it picks anyway (strings FSST cannot shrink are still stored uncompressed),
# so the analysis is commit time spent for nothing: the writer's commits are the ingest
# pipeline's narrowest stage (bench/bench_ingest.py). (A list column, context, cannot be
# given a method.)
SAMPLE_TEXT_FSST: tuple[str, ...] = ("prompt", "response", "reference")


_SAMPLE_COLUMN_LIST = ", ".join(f'"{name}"' for name, _ in SAMPLE_COLUMNS)


def _samples_table_sql(name: str) -> str:
    columns = [(column, f"{decl} USING COMPRESSION fsst" if column in SAMPLE_TEXT_FSST else decl)
               for column, decl in SAMPLE_COLUMNS]
    return f"CREATE TABLE {name} (\n    {_columns_sql(columns)}\n)"


# Each migration is applied once, in order, inside one transaction; the schema_version
# table records which ones ran. Never edit a released migration: add a new one.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "initial schema (DESIGN §3)",
        (
            f"CREATE TABLE samples (\n    {_columns_sql(SAMPLE_COLUMNS)}\n)",
            f"""CREATE TABLE gpu_telemetry (
    {_columns_sql(GPU_COLUMNS)},
    PRIMARY KEY (host, gpu_index, timestamp)
)""",
            """CREATE TABLE scores (
    request_id VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE,
    label VARCHAR,
    details JSON,
    evaluator VARCHAR NOT NULL,
    reference_model VARCHAR NOT NULL,
    evaluated_at TIMESTAMPTZ NOT NULL,
    error VARCHAR,
    PRIMARY KEY (request_id, metric, reference_model)
)""",
            """CREATE TABLE drift_results (
    run_id VARCHAR NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    service VARCHAR,
    reference VARCHAR,
    "current" VARCHAR,
    feature VARCHAR NOT NULL,
    feature_type VARCHAR,
    method VARCHAR,
    statistic DOUBLE,
    p_value DOUBLE,
    threshold DOUBLE,
    drifted BOOLEAN,
    drift_score DOUBLE,
    details JSON
)""",
            """CREATE TABLE alerts (
    fingerprint VARCHAR PRIMARY KEY,
    slo VARCHAR NOT NULL,
    service VARCHAR,
    severity VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ,
    last_notified_at TIMESTAMPTZ,
    burn_rate_long DOUBLE,
    burn_rate_short DOUBLE,
    labels JSON,
    annotations JSON
)""",
            "CREATE SEQUENCE notifications_id",
            """CREATE TABLE notifications (
    id BIGINT PRIMARY KEY DEFAULT nextval('notifications_id'),
    created_at TIMESTAMPTZ NOT NULL,
    receiver VARCHAR NOT NULL,
    dedup_key VARCHAR,
    payload JSON NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    last_error VARCHAR
)""",
            "CREATE SEQUENCE silences_id",
            """CREATE TABLE silences (
    id BIGINT PRIMARY KEY DEFAULT nextval('silences_id'),
    matchers JSON NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    created_by VARCHAR,
    comment VARCHAR
)""",
            "CREATE SEQUENCE canary_verdicts_id",
            """CREATE TABLE canary_verdicts (
    id BIGINT PRIMARY KEY DEFAULT nextval('canary_verdicts_id'),
    created_at TIMESTAMPTZ NOT NULL,
    service VARCHAR,
    baseline VARCHAR NOT NULL,
    canary VARCHAR NOT NULL,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ,
    score DOUBLE,
    verdict VARCHAR NOT NULL,
    details JSON
)""",
            "CREATE SEQUENCE dead_letter_id",
            """CREATE TABLE dead_letter (
    id BIGINT PRIMARY KEY DEFAULT nextval('dead_letter_id'),
    received_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    line BIGINT,
    raw VARCHAR,
    error VARCHAR NOT NULL
)""",
        ),
    ),
    (
        2,
        "samples: prompt, response and reference compressed with FSST without analysis",
        # DuckDB cannot change a column's compression in place: the table is rebuilt once
        # (instant on a new database; about the time of an ingest of its rows otherwise).
        (
            _samples_table_sql("samples_rebuilt"),
            f"INSERT INTO samples_rebuilt ({_SAMPLE_COLUMN_LIST}) SELECT {_SAMPLE_COLUMN_LIST} FROM samples",
            "DROP TABLE samples",
            "ALTER TABLE samples_rebuilt RENAME TO samples",
        ),
    ),
    (
        20,
        "canary: continuous analyses (issue 12)",
        # No ALTER TABLE on canary_verdicts (config, analysis id and exit code go into its
        # details JSON): DuckDB 1.5 cannot replay from the WAL an ADD COLUMN on a table with a
        # nextval() default ("GetDefaultDatabase with no default database set"), so a server
        # killed before its first checkpoint would not start again.
        (
            "CREATE SEQUENCE canary_analyses_id",
            """CREATE TABLE canary_analyses (
    id BIGINT PRIMARY KEY DEFAULT nextval('canary_analyses_id'),
    created_at TIMESTAMPTZ NOT NULL,
    baseline VARCHAR NOT NULL,
    canary VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    interval_s DOUBLE NOT NULL,
    lifetime_s DOUBLE NOT NULL,
    next_at TIMESTAMPTZ NOT NULL,
    state VARCHAR NOT NULL,
    finished_at TIMESTAMPTZ,
    final_verdict VARCHAR,
    reason VARCHAR,
    config JSON
)""",
        ),
    ),
)

# The SLO engine (genobs.slo, DESIGN §6): per-minute rollups kept up to date incrementally,
# the minutes whose samples were deleted or replaced (so their rollups are recomputed),
# the last evaluation of each SLO, the alert lifecycle's history and the outbox's state.
MIGRATIONS += (
    (
        10,
        "SLO engine: rollups, sample tombstones, SLO status, alert history, outbox state",
        (
            # One row per minute in which samples were deleted or replaced (re-ingested
            # request_ids): the rollups of these minutes must be recomputed.
            "CREATE TABLE sample_tombstones (minute TIMESTAMPTZ NOT NULL, deleted_at TIMESTAMPTZ NOT NULL)",
            """CREATE TABLE slo_series (
    series VARCHAR PRIMARY KEY,
    definition JSON NOT NULL,
    built_at TIMESTAMPTZ NOT NULL
)""",
            # No primary key: bulk builds stay cheap; (series, minute) is unique by construction.
            """CREATE TABLE slo_rollups (
    series VARCHAR NOT NULL,
    minute TIMESTAMPTZ NOT NULL,
    good BIGINT NOT NULL,
    total BIGINT NOT NULL,
    value DOUBLE
)""",
            "CREATE TABLE slo_watermarks (name VARCHAR PRIMARY KEY, value TIMESTAMPTZ)",
            """CREATE TABLE slo_status (
    slo VARCHAR PRIMARY KEY,
    service VARCHAR,
    evaluated_at TIMESTAMPTZ NOT NULL,
    "at" TIMESTAMPTZ NOT NULL,
    objective DOUBLE NOT NULL,
    "window" VARCHAR NOT NULL,
    good BIGINT,
    total BIGINT,
    error_ratio DOUBLE,
    budget_remaining DOUBLE,
    burn_rates JSON,
    details JSON
)""",
            "ALTER TABLE alerts ADD COLUMN kind VARCHAR",
            "ALTER TABLE alerts ADD COLUMN pending_since TIMESTAMPTZ",
            "ALTER TABLE alerts ADD COLUMN fired_at TIMESTAMPTZ",
            "ALTER TABLE alerts ADD COLUMN updated_at TIMESTAMPTZ",
            "ALTER TABLE alerts ADD COLUMN last_notified_state VARCHAR",
            "ALTER TABLE alerts ADD COLUMN silenced BOOLEAN",
            "ALTER TABLE alerts ADD COLUMN inhibited BOOLEAN",
            """CREATE TABLE alert_events (
    fingerprint VARCHAR NOT NULL,
    "at" TIMESTAMPTZ NOT NULL,
    state VARCHAR NOT NULL,
    slo VARCHAR,
    severity VARCHAR,
    details JSON
)""",
            "ALTER TABLE notifications ADD COLUMN status VARCHAR DEFAULT 'pending'",
            "ALTER TABLE notifications ADD COLUMN last_status_code INTEGER",
            "ALTER TABLE notifications ADD COLUMN failures INTEGER DEFAULT 0",
            "ALTER TABLE silences ADD COLUMN expired_at TIMESTAMPTZ",
        ),
    ),
)

# Each part owns a range of migration numbers and adds its block where its code is, so the
# blocks may come in any order here: applied in version order, each one that has not run.
MIGRATIONS = tuple(sorted(MIGRATIONS, key=lambda migration: migration[0]))
SCHEMA_VERSION = MIGRATIONS[-1][0]


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int



# Up to this many rows, an insert binds the rows as parameters of a VALUES list instead of
# scanning the Arrow table: half the CPU for the few-row writes of single HTTP requests.
SMALL_INSERT_ROWS = 4

# Rejected input is kept to debug the sender, not as an archive: past this many characters
# its raw text is cut, with a marker that gives the original length (docs/ingest.md).
MAX_DEAD_LETTER_RAW_CHARS = 65_536
# ``prepare`` (redaction) reads this much more than is kept, so that a match cut by the
# limit is still seen whole and replaced, not left half in clear.
DEAD_LETTER_SCAN_MARGIN = 1024
SqlWrapper = Callable[[str], str]


def dead_letter_raw_sql(raw: str, prepare: SqlWrapper | None = None) -> str:
    """SQL for the stored form of the raw text ``raw`` (a SQL expression): ``prepare``d
    (e.g. redacted), and past MAX_DEAD_LETTER_RAW_CHARS cut with a marker naming the
    original length in characters."""
    wrap = prepare or (lambda expr: expr)
    limit = MAX_DEAD_LETTER_RAW_CHARS
    head = wrap(f"left({raw}, {limit + DEAD_LETTER_SCAN_MARGIN})")
    return (f"CASE WHEN length({raw}) > {limit} THEN left({head}, {limit}) || "
            f"' …[truncated: ' || length({raw}) || ' characters in all]' ELSE {wrap(raw)} END")


def dead_letter_insert_sql(select_sql: str, prepare: SqlWrapper | None = None) -> str:
    """INSERT into dead_letter from ``select_sql``, a query giving (source, line, raw,
    error): raw as dead_letter_raw_sql stores it, error through ``prepare`` too."""
    wrap = prepare or (lambda expr: expr)
    return ("INSERT INTO dead_letter (received_at, source, line, raw, error) "
            f"SELECT now(), d.source, d.line, {dead_letter_raw_sql('d.raw', prepare)}, {wrap('d.error')} "
            f"FROM ({select_sql}) d")


def _insert_from_arrow(cur: duckdb.DuckDBPyConnection, sql: str, table: pa.Table) -> None:
    """Run ``sql`` with ``{rows}`` reading ``table`` (a relation with its columns).

    A few rows are bound as parameters (``(VALUES (?, ...)) AS v(columns)``); more are read
    through DuckDB's replacement scan (a local variable named in the query), which costs
    a few milliseconds less per statement than register/unregister, which change the
    catalog."""
    if 0 < table.num_rows <= SMALL_INSERT_ROWS:
        names = table.column_names
        row = "(" + ", ".join("?" for _ in names) + ")"
        columns = ", ".join(f'"{name}"' for name in names)
        values = f"(VALUES {', '.join([row] * table.num_rows)}) AS _genobs_values({columns})"
        params = [value for record in table.to_pylist() for value in (record[n] for n in names)]
        cur.execute(sql.format(rows=values), params)
        return
    _genobs_arrow_rows = table  # noqa: F841 - read by name by DuckDB's replacement scan
    cur.execute(sql.format(rows="_genobs_arrow_rows"))


# --------------------------------------------------------------------------- store


class Store:
    """One DuckDB database instance per file per process, a cursor per thread."""

    _instances: dict[Path, "Store"] = {}
    _instances_lock = threading.Lock()

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._connection = connection
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._id_index = RequestIdIndex()   # request_ids in samples, loaded on first upsert
        self._closed = False

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, db: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> "Store":
        """Open (creating and migrating if needed) the database at ``db``.

        ``read_only``: open an existing file without writing to it (``genobs dashboard`` on a
        file no server holds); it must exist and be at this genobs's schema version. When
        this process already has the file open (``genobs serve``), that shared instance is
        returned either way: DuckDB refuses a second instance of a file in one process.

        Raises DatabaseLockedError, naming the server that holds the file, if another
        process has it open.
        """
        path = resolve_db_path(db)
        with cls._instances_lock:
            existing = cls._instances.get(path)
            if existing is not None and not existing._closed:
                return existing
            if read_only and not path.exists():
                raise StoreError(f"no database at {path}: create one with `genobs demo` or `genobs ingest`")
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            try:
                connection = duckdb.connect(str(path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" in str(exc).lower():
                    raise DatabaseLockedError(path, recorded_server_url(path), str(exc)) from None
                raise StoreError(f"cannot open database {path}: {exc}") from None
            store = cls(path, connection, read_only=read_only)
            if read_only:
                store._check_schema()
            else:
                store._migrate()
            cls._instances[path] = store
            return store

    @classmethod
    def memory(cls) -> "Store":
        """A throw-away in-memory store (benchmarks, scratch work)."""
        store = cls(Path(":memory:"), duckdb.connect(":memory:"))
        store._migrate()
        return store

    def close(self) -> None:
        with Store._instances_lock:
            if self._closed:
                return
            self._closed = True
            Store._instances.pop(self.path, None)
            self._connection.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections -----------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the shared database instance."""
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._connection.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        return self.cursor().execute(sql, params) if params is not None else self.cursor().execute(sql)

    def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        return self.execute(sql, params).fetchone()

    def transaction(self) -> "_Transaction":
        """``with store.transaction() as cur:`` — commit on success, roll back on error."""
        return _Transaction(self)

    def in_transaction(self) -> bool:
        """Whether this thread is inside ``transaction()``."""
        return getattr(self._local, "tx_depth", 0) > 0

    def exclusive(self) -> threading.RLock:
        """``with store.exclusive():`` — no other thread writes until the block ends (the
        store's write lock, without a transaction: each statement commits on its own)."""
        return self._write_lock

    # -- schema ----------------------------------------------------------------

    def schema_version(self) -> int:
        row = self.fetchone("SELECT coalesce(max(version), 0) FROM schema_version")
        return int(row[0]) if row else 0

    def _check_schema(self) -> None:
        """A read-only open cannot migrate: the file must already have this genobs's schema."""
        self._connection.execute("SET TimeZone = 'UTC'")
        try:
            applied = {v for (v,) in self._connection.execute("SELECT version FROM schema_version").fetchall()}
        except duckdb.CatalogException:
            applied = set()
        missing = sorted({version for version, _, _ in MIGRATIONS} - applied)
        newest = max(applied, default=0)
        if newest > SCHEMA_VERSION or missing:
            self._connection.close()
            action = ("upgrade genobs" if newest > SCHEMA_VERSION
                      else f"it lacks migrations {missing}: open it once read-write (e.g. `genobs init --db PATH`)")
            raise StoreError(f"database {self.path} has schema version {newest}, this genobs expects "
                             f"{SCHEMA_VERSION}: {action}")

    def table_names(self) -> list[str]:
        return [row[0] for row in self.fetchall(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY table_name")]

    def _migrate(self) -> None:
        self._connection.execute("SET TimeZone = 'UTC'")
        cur = self._connection.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)"
        )
        current = cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this genobs "
                f"({SCHEMA_VERSION}): upgrade genobs"
            )
        applied = {v for (v,) in cur.execute("SELECT version FROM schema_version").fetchall()}
        migrated = False
        for version, description, statements in MIGRATIONS:
            if version in applied:
                continue
            migrated = True
            cur.execute("BEGIN TRANSACTION")
            try:
                for statement in statements:
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_version VALUES (?, ?, now())", [version, description]
                )
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
        if migrated:
            # Schema changes go into the file now, not only the WAL: DuckDB 1.5 cannot replay
            # some DDL (ALTER TABLE ... ADD COLUMN) from the WAL after a kill -9 ("Failure
            # while replaying WAL file ... GetDefaultDatabase"), and the database would not open.
            cur.execute("CHECKPOINT")
        cur.close()

    # -- writes ----------------------------------------------------------------

    def upsert_samples(self, rows: pa.Table | str, params: Sequence[Any] | None = None, *,
                       hashes: np.ndarray | None = None) -> UpsertCounts:
        """Insert or update samples by request_id (re-ingesting updates, never duplicates).

        ``rows`` is an Arrow table with the samples columns, or a SQL SELECT (with
        ``params``) producing them, run inside this store's transaction (so it may read
        the caller's temp tables); request_ids must be unique within ``rows``. A caller
        that has the rows' request_id hashes (``hash_sql``, one per row) passes them as
        ``hashes``: when none is known, the SELECT then runs once instead of twice.

        Every write that adds rows to ``samples`` must come through here: the in-memory
        index of stored ids (genobs/id_index.py) relies on it.
        """
        # Upsert as delete + insert in one transaction (writes are serialised by the store's
        # lock). No primary-key index: maintaining one doubles bulk-load cost. The DELETE
        # would scan every stored request_id, so it only runs for the ids whose hash the
        # in-memory index knows (usually none). request_ids are unique in samples, so the
        # rows the delete removes are the updates.
        if isinstance(rows, pa.Table):
            return self._upsert_arrow(rows)
        with self.transaction() as cur:
            index = self._sample_ids(cur)
            source_sql = str(rows)
            source_params: list[Any] = list(params or [])
            if hashes is not None and not index.known(hashes).any():
                # All new: no DELETE, and no pass over the rows to hash their ids.
                cur.execute(f"INSERT INTO samples ({_SAMPLE_COLUMN_LIST}) SELECT {_SAMPLE_COLUMN_LIST} "
                            f"FROM ({source_sql})", source_params)
                index.add(hashes)
                return UpsertCounts(inserted=int(hashes.size), updated=0)
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE _genobs_upsert_ids AS "
                f"SELECT request_id, {hash_sql('request_id')} AS h FROM ({source_sql})",
                source_params,
            )
            hashes = np.asarray(cur.execute("SELECT h FROM _genobs_upsert_ids").fetchnumpy()["h"], dtype=np.uint64)
            known = hashes[index.known(hashes)]
            candidates: list[str] = []
            if known.size:
                candidates = [rid for (rid,) in cur.execute(
                    "SELECT request_id FROM _genobs_upsert_ids WHERE h IN (SELECT unnest(?::UBIGINT[]))",
                    [known.tolist()],
                ).fetchall()]
            existing = self._delete_samples(cur, candidates)
            cur.execute(f"INSERT INTO samples ({_SAMPLE_COLUMN_LIST}) SELECT {_SAMPLE_COLUMN_LIST} FROM ({source_sql})",
                        source_params)
            cur.execute("DROP TABLE _genobs_upsert_ids")
            index.add(hashes)
        return UpsertCounts(inserted=int(hashes.size - existing), updated=int(existing))

    def _upsert_arrow(self, rows: pa.Table) -> UpsertCounts:
        insert = f"INSERT INTO samples ({_SAMPLE_COLUMN_LIST}) SELECT {_SAMPLE_COLUMN_LIST} FROM {{rows}}"
        with self._write_lock:
            cur = self.cursor()
            index = self._sample_ids(cur)
            ids = rows.column("request_id").to_pylist()
            hashes = hash_ids(ids)
            known = known_ids(index, ids, hashes)
            if not known and not self.in_transaction():
                # All new, nothing else to write: one statement is its own transaction.
                _insert_from_arrow(cur, insert, rows)
                existing = 0
            else:
                with self.transaction() as cur:
                    existing = self._delete_samples(cur, known)
                    _insert_from_arrow(cur, insert, rows)
            index.add(hashes)
        return UpsertCounts(inserted=len(ids) - existing, updated=existing)

    def delete_samples(self, request_ids: Sequence[str] = (), *, before: Any = None) -> int:
        """Delete samples by request_id and/or all older than ``before`` (retention).

        Returns how many rows went. The minutes they were in are recorded in
        ``sample_tombstones`` so the SLO rollups of those minutes are recomputed."""
        with self.transaction() as cur:
            deleted = self._delete_samples(cur, list(request_ids))
            if before is not None:
                cur.execute(
                    "INSERT INTO sample_tombstones SELECT DISTINCT date_trunc('minute', timestamp), now() "
                    "FROM samples WHERE timestamp < ?", [before]
                )
                (count,) = cur.execute("DELETE FROM samples WHERE timestamp < ?", [before]).fetchone()
                deleted += int(count)
            # The id index may now hold ids that are gone: harmless (it only selects candidates
            # for the DELETE of an upsert), so it is not rebuilt.
        return deleted

    def stored_request_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are in ``samples`` (hold ``exclusive()`` for an answer that stays true)."""
        with self._write_lock:
            cur = self.cursor()
            candidates = known_ids(self._sample_ids(cur), ids, hash_ids(ids))
            if not candidates:
                return set()
            return {rid for (rid,) in cur.execute(
                "SELECT request_id FROM samples WHERE request_id IN (SELECT unnest(?::VARCHAR[]))", [candidates]
            ).fetchall()}

    def _sample_ids(self, cur: duckdb.DuckDBPyConnection) -> RequestIdIndex:
        """The index of stored request_ids, loaded on first use (call under the write lock)."""
        if not self._id_index.loaded:
            self._id_index.load(cur)
        return self._id_index

    @staticmethod
    def _delete_samples(cur: duckdb.DuckDBPyConnection, request_ids: list[str]) -> int:
        """Delete the samples with these ids; returns how many rows went."""
        if not request_ids:
            return 0
        # The minutes these rows were in: the SLO rollups of those minutes are recomputed
        # (a re-ingested request_id may have moved, or changed its status or latency).
        cur.execute(
            "INSERT INTO sample_tombstones SELECT DISTINCT date_trunc('minute', timestamp), now() "
            "FROM samples WHERE request_id IN (SELECT unnest(?::VARCHAR[]))", [request_ids]
        )
        # DuckDB's DELETE answers with the number of rows it removed.
        (deleted,) = cur.execute(
            "DELETE FROM samples WHERE request_id IN (SELECT unnest(?::VARCHAR[]))", [request_ids]
        ).fetchone()
        return int(deleted)

    def add_dead_letters(self, rows: Iterable[tuple[str, int | None, str | None, str]],
                         prepare: SqlWrapper | None = None) -> int:
        """Store rejected input: (source, line, raw, error) per row. Returns the count.

        The raw text is cut past MAX_DEAD_LETTER_RAW_CHARS (dead_letter_raw_sql);
        ``prepare`` wraps the SQL of raw and error (collectors pass their redaction:
        collectors.pipeline.add_dead_letters is the way they store dead letters)."""
        batch = list(rows)
        if not batch:
            return 0
        table = pa.table(
            {
                "source": pa.array([r[0] for r in batch], type=pa.string()),
                "line": pa.array([r[1] for r in batch], type=pa.int64()),
                "raw": pa.array([r[2] for r in batch], type=pa.string()),
                "error": pa.array([r[3] for r in batch], type=pa.string()),
            }
        )
        with self.transaction() as cur:
            cur.register("_genobs_dead_rows", table)
            try:
                cur.execute(dead_letter_insert_sql("SELECT source, line, raw, error FROM _genobs_dead_rows", prepare))
            finally:
                cur.unregister("_genobs_dead_rows")
        return len(batch)

    def upsert_gpu_telemetry(self, rows: pa.Table) -> int:
        """Insert or update GPU readings by (host, gpu_index, timestamp)."""
        names = [name for name, _ in GPU_COLUMNS]
        present = [n for n in names if n in rows.column_names]
        column_list = ", ".join(f'"{n}"' for n in present)
        keys = {"host", "gpu_index", "timestamp"}
        updates = ", ".join(f'"{n}" = excluded."{n}"' for n in present if n not in keys)
        with self.transaction() as cur:
            cur.register("_genobs_gpu", rows)
            try:
                cur.execute(
                    f"INSERT INTO gpu_telemetry ({column_list}) "
                    f"SELECT {column_list} FROM (SELECT *, row_number() OVER "
                    f"(PARTITION BY host, gpu_index, timestamp) AS _rn FROM _genobs_gpu) WHERE _rn = 1 "
                    f"ON CONFLICT (host, gpu_index, timestamp) DO UPDATE SET {updates}"
                )
            finally:
                cur.unregister("_genobs_gpu")
        return rows.num_rows

    def write_scores(self, rows: pa.Table | Sequence[dict[str, Any]]) -> int:
        """Upsert score rows on (request_id, metric, reference_model).

        Columns: request_id, metric, value, label, details (dict or JSON text), evaluator,
        reference_model, error; evaluated_at defaults to now.
        """
        if not isinstance(rows, pa.Table):
            records = list(rows)
            if not records:
                return 0
            rows = pa.table(
                {
                    "request_id": [r["request_id"] for r in records],
                    "metric": [r["metric"] for r in records],
                    "value": pa.array([r.get("value") for r in records], type=pa.float64()),
                    "label": pa.array([r.get("label") for r in records], type=pa.string()),
                    "details": pa.array(
                        [
                            None if r.get("details") is None
                            else r["details"] if isinstance(r["details"], str)
                            else json.dumps(r["details"], default=str)
                            for r in records
                        ],
                        type=pa.string(),
                    ),
                    "evaluator": [r["evaluator"] for r in records],
                    "reference_model": [r["reference_model"] for r in records],
                    "error": pa.array([r.get("error") for r in records], type=pa.string()),
                }
            )
        if rows.num_rows == 0:
            return 0
        with self.transaction() as cur:
            cur.register("_genobs_scores", rows)
            try:
                cur.execute(
                    "INSERT INTO scores (request_id, metric, value, label, details, evaluator, "
                    "reference_model, evaluated_at, error) "
                    "SELECT request_id, metric, value, label, CAST(details AS JSON), evaluator, "
                    "reference_model, now(), error FROM _genobs_scores "
                    "ON CONFLICT (request_id, metric, reference_model) DO UPDATE SET "
                    "value = excluded.value, label = excluded.label, details = excluded.details, "
                    "evaluator = excluded.evaluator, evaluated_at = excluded.evaluated_at, "
                    "error = excluded.error"
                )
            finally:
                cur.unregister("_genobs_scores")
        return rows.num_rows


class _Transaction:
    """Re-entrant per thread: an inner ``with store.transaction()`` joins the outer one.

    Writes are serialised by the store's write lock, so concurrent writers in one process
    (HTTP handlers, the scheduler) never hit DuckDB's write-write conflicts.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cur: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        store = self._store
        store._write_lock.acquire()
        self._cur = store.cursor()
        depth = getattr(store._local, "tx_depth", 0)
        if depth == 0:
            self._cur.execute("BEGIN TRANSACTION")
        store._local.tx_depth = depth + 1
        return self._cur

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        store = self._store
        assert self._cur is not None
        try:
            store._local.tx_depth -= 1
            if store._local.tx_depth == 0:
                self._cur.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            store._write_lock.release()
