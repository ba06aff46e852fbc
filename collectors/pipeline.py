"""The ingest pipeline shared by every collector: validate, redact, upsert, dead-letter.

Input arrives as chunks of JSON object texts (file lines, HTTP bodies, SDK batches) or as
a DuckDB relation (CSV/Parquet files). Each chunk is checked by one vectorised query
(collectors/validation.py), redacted in SQL (collectors/redaction.py), and written in one
transaction: accepted rows upserted by request_id, rejected rows to ``dead_letter`` with
the reason. A request_id seen twice in one input keeps its first record; the repeats are
rejected naming the line of the first.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa

from collectors import redaction
from collectors.validation import FieldMapping, SqlParams, build_validation_sql
from genobs.records import REDACTED_LIST_FIELDS, REDACTED_TEXT_FIELDS, SAMPLE_FIELD_NAMES
from genobs.store import Store

MAX_REPORTED_ERRORS = 100


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens, used when a sample has no cost_usd."""

    input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True)
class IngestOptions:
    redact: bool = True
    mapping: FieldMapping = field(default_factory=FieldMapping)
    prices: dict[str, ModelPrice] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordError:
    line: int | None
    request_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "record"
        rid = f" (request_id {self.request_id})" if self.request_id else ""
        return f"{where}{rid}: {self.message}"


@dataclass
class IngestResult:
    received: int = 0
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    errors: list[RecordError] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)

    def merge(self, other: "IngestResult") -> None:
        self.received += other.received
        self.accepted += other.accepted
        self.inserted += other.inserted
        self.updated += other.updated
        self.rejected += other.rejected
        room = MAX_REPORTED_ERRORS - len(self.errors)
        self.errors.extend(other.errors[:max(room, 0)])
        for name, count in other.redactions.items():
            self.redactions[name] = self.redactions.get(name, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "inserted": self.inserted,
            "updated": self.updated,
            "rejected": self.rejected,
            "redactions": dict(self.redactions),
            "errors": [
                {"line": e.line, "request_id": e.request_id, "error": e.message} for e in self.errors
            ],
        }


def _redacted_columns(redact: bool) -> str:
    """The samples columns from ``_genobs_checked c``; PII replaced in rows flagged ``pii``."""
    cols = []
    for name in SAMPLE_FIELD_NAMES:
        if redact and name in REDACTED_TEXT_FIELDS:
            cols.append(f'CASE WHEN c.pii THEN {redaction.redact_text_sql(f"c.{name}")} ELSE c.{name} END AS "{name}"')
        elif redact and name in REDACTED_LIST_FIELDS:
            cols.append(f'CASE WHEN c.pii THEN {redaction.redact_list_sql(f"c.{name}")} ELSE c.{name} END AS "{name}"')
        elif redact and name == "attributes":
            # Unknown keys land here (a user_email column): redact their JSON text; the
            # replacements hold no quotes or backslashes, so it stays valid JSON.
            redacted = redaction.redact_text_sql(f"CAST(c.{name} AS VARCHAR)")
            cols.append(f'CASE WHEN c.pii THEN CAST({redacted} AS JSON) ELSE c.{name} END AS "{name}"')
        else:
            cols.append(f'c."{name}"')
    return ", ".join(cols)


def _redaction_counts_sql() -> str:
    parts = []
    for pattern in redaction.PATTERNS:
        terms = [redaction.count_text_sql(f"c.{name}", pattern) for name in REDACTED_TEXT_FIELDS]
        terms += [redaction.count_list_sql(f"c.{name}", pattern) for name in REDACTED_LIST_FIELDS]
        terms.append(redaction.count_text_sql("CAST(c.attributes AS VARCHAR)", pattern))
        parts.append(f"coalesce(sum({' + '.join(terms)}), 0) AS \"{pattern.name}\"")
    return ", ".join(parts)


class IngestSession:
    """One logical input (a file, a request): chunks share duplicate detection and totals.

    Use from one thread; each chunk commits on its own, so a long file that fails half
    way keeps what was accepted before.
    """

    def __init__(self, store: Store, source: str, options: IngestOptions | None = None) -> None:
        self.store = store
        self.source = source
        self.options = options or IngestOptions()
        self.result = IngestResult()
        self._seen_table = f"_genobs_seen_{uuid.uuid4().hex[:12]}"
        cur = store.cursor()
        cur.execute(redaction.LUHN_MACRO_SQL)
        cur.execute(f"CREATE TEMP TABLE {self._seen_table} (request_id VARCHAR, line BIGINT)")
        if self.options.prices:
            cur.execute("CREATE OR REPLACE TEMP TABLE _genobs_prices "
                        "(model VARCHAR, input_per_mtok DOUBLE, output_per_mtok DOUBLE)")
            cur.executemany(
                "INSERT INTO _genobs_prices VALUES (?, ?, ?)",
                [[m, p.input_per_mtok, p.output_per_mtok] for m, p in self.options.prices.items()],
            )
        self._closed = False

    # -- feeding -------------------------------------------------------------------------

    def add_lines(self, lines: Sequence[bytes], first_line: int) -> IngestResult:
        """A chunk of JSON texts; ``first_line`` numbers the first of them."""
        table = pa.table(
            {
                "line": pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64)),
                "raw": pa.array(lines, type=pa.binary()),
            }
        )
        cur = self.store.cursor()
        cur.register("_genobs_lines", table)
        try:
            cur.execute(
                "CREATE OR REPLACE TEMP VIEW _genobs_input AS "
                "SELECT line, raw, text FROM (SELECT line, raw, try(decode(raw)) AS text FROM _genobs_lines) "
                "WHERE text IS NULL OR regexp_matches(text, '\\S')"
            )
            return self._process_input()
        finally:
            cur.execute("DROP VIEW IF EXISTS _genobs_input")
            cur.unregister("_genobs_lines")

    def add_relation_sql(self, sql: str, params: Sequence[Any] | None = None) -> IngestResult:
        """A chunk given as SQL producing (line BIGINT, text VARCHAR): JSON object per row."""
        cur = self.store.cursor()
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _genobs_input AS SELECT line, NULL::BLOB AS raw, text FROM ({sql})",
            list(params or []),
        )
        try:
            return self._process_input()
        finally:
            cur.execute("DROP TABLE IF EXISTS _genobs_input")

    # -- the work ------------------------------------------------------------------------

    def _process_input(self) -> IngestResult:
        opts = self.options
        params = SqlParams()
        validation_sql = build_validation_sql(
            opts.mapping, params, with_prices=bool(opts.prices), detect_pii=opts.redact
        )
        accepted_rows = (
            "FROM _genobs_checked c ANTI JOIN _genobs_dups d USING (line) WHERE len(c.errors) = 0"
        )
        chunk = IngestResult()
        with self.store.transaction() as cur:
            cur.execute(f"CREATE OR REPLACE TEMP TABLE _genobs_checked AS {validation_sql}", params.values)
            # Repeats of a request_id, in this chunk or earlier ones of the same input: keep the first.
            cur.execute(
                f"""CREATE OR REPLACE TEMP TABLE _genobs_dups AS
                SELECT line, min(first_line) AS first_line FROM (
                    SELECT line, first_line FROM (
                        SELECT line, min(line) OVER (PARTITION BY request_id) AS first_line
                        FROM _genobs_checked WHERE len(errors) = 0)
                    WHERE line <> first_line
                    UNION ALL
                    SELECT c.line, s.line FROM _genobs_checked c
                    JOIN {self._seen_table} s ON c.request_id = s.request_id WHERE len(c.errors) = 0
                ) GROUP BY line"""
            )
            received, bad, dups = cur.execute(
                "SELECT count(*), count(*) FILTER (WHERE len(errors) > 0), "
                "(SELECT count(*) FROM _genobs_dups) FROM _genobs_checked"
            ).fetchone()
            chunk.received, chunk.rejected = int(received), int(bad) + int(dups)
            chunk.accepted = chunk.received - chunk.rejected

            if chunk.accepted:
                if opts.redact:
                    counts = cur.execute(f"SELECT {_redaction_counts_sql()} {accepted_rows} AND c.pii").fetchone()
                    chunk.redactions = {
                        name: int(n) for name, n in zip(redaction.PATTERN_NAMES, counts) if n
                    }
                counts = self.store.upsert_samples(
                    f"SELECT {_redacted_columns(opts.redact)}, "
                    f"CAST(? AS VARCHAR) AS source, now() AS ingested_at {accepted_rows}",
                    [self.source],
                )
                chunk.inserted, chunk.updated = counts.inserted, counts.updated
                cur.execute(f"INSERT INTO {self._seen_table} SELECT c.request_id, c.line {accepted_rows}")

            if chunk.rejected:
                cur.execute(
                    "CREATE OR REPLACE TEMP TABLE _genobs_rejected AS "
                    "SELECT c.line, c.request_id, "
                    "CASE WHEN d.line IS NOT NULL "
                    "THEN ['request_id: duplicate of line ' || d.first_line || ' in this input'] "
                    "ELSE c.errors END AS errors, "
                    "coalesce(i.text, CAST(i.raw AS VARCHAR)) AS raw "
                    "FROM _genobs_checked c JOIN _genobs_input i USING (line) "
                    "LEFT JOIN _genobs_dups d USING (line) "
                    "WHERE len(c.errors) > 0 OR d.line IS NOT NULL"
                )
                cur.execute(
                    "INSERT INTO dead_letter (received_at, source, line, raw, error) "
                    "SELECT now(), ?, line, raw, array_to_string(errors, '; ') FROM _genobs_rejected ORDER BY line",
                    [self.source],
                )
                rows = cur.execute(
                    "SELECT line, request_id, errors, CASE WHEN errors = ['invalid JSON'] THEN raw END "
                    "FROM _genobs_rejected ORDER BY line LIMIT ?",
                    [MAX_REPORTED_ERRORS],
                ).fetchall()
                for line, request_id, errors, bad_json in rows:
                    message = _json_problem(bad_json) if bad_json is not None else "; ".join(errors)
                    chunk.errors.append(RecordError(int(line), request_id, message))
                cur.execute("DROP TABLE _genobs_rejected")
            cur.execute("DROP TABLE _genobs_dups")
            cur.execute("DROP TABLE _genobs_checked")
        self.result.merge(chunk)
        return chunk

    def add_problem(self, line: int | None, raw: str | None, message: str) -> None:
        """Record an input problem found outside the query (e.g. a truncated gzip stream)."""
        self.store.add_dead_letters([(self.source, line, raw, message)])
        self.result.rejected += 1
        self.result.received += 1
        if len(self.result.errors) < MAX_REPORTED_ERRORS:
            self.result.errors.append(RecordError(line, None, message))

    def finish(self) -> IngestResult:
        if not self._closed:
            self._closed = True
            self.store.cursor().execute(f"DROP TABLE IF EXISTS {self._seen_table}")
        return self.result


def _json_problem(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__ if value is not None else 'null'}"
    return "invalid JSON object (duplicate keys?)"


# -- convenience entry points ------------------------------------------------------------

def ingest_lines(
    store: Store,
    lines: Iterable[bytes],
    *,
    source: str,
    options: IngestOptions | None = None,
    first_line: int = 1,
) -> IngestResult:
    """Ingest JSON object texts (one per item); all of them commit before this returns."""
    session = IngestSession(store, source, options)
    try:
        batch = [line if isinstance(line, bytes) else str(line).encode() for line in lines]
        if batch:
            session.add_lines(batch, first_line)
        return session.finish()
    finally:
        session.finish()


def ingest_records(
    store: Store,
    records: Sequence[dict[str, Any]],
    *,
    source: str,
    options: IngestOptions | None = None,
) -> IngestResult:
    """Ingest already-decoded records (SDK, OTLP mapping); line = 1-based index."""
    lines = [json.dumps(r, default=str, ensure_ascii=False).encode() for r in records]
    return ingest_lines(store, lines, source=source, options=options)
