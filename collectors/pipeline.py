"""The ingest pipeline shared by every collector: validate, redact, upsert, dead-letter.

Input arrives as chunks of JSON object texts (file lines, HTTP bodies, SDK batches) or as
a DuckDB relation (CSV/Parquet files). Each chunk is checked by one vectorised query
(collectors/validation.py), redacted in SQL (collectors/redaction.py), and written in one
transaction: accepted rows upserted by request_id, rejected rows to ``dead_letter`` with
the reason. A request_id seen twice in one input keeps its first record; the repeats are
rejected naming the line of the first.

Inputs of up to FAST_PATH_MAX_RECORDS records (an HTTP request, an SDK batch) are checked
in plain Python instead (collectors/fast_validation.py, same rules and messages; it hands
anything it cannot read exactly as DuckDB does back to the query), and several such
inputs can be written in one transaction (``ingest_line_batches``, used by the HTTP API to
group concurrent requests), each answered as if ingested alone.
"""

from __future__ import annotations

import functools
import json
import operator
import re
import weakref
from datetime import datetime, timezone
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genobs import jsontext
from genobs.collectors import fast_validation, redaction
from genobs.collectors.validation import FieldMapping, SqlParams, build_validation_sql
from genobs.records import (
    MAX_NESTING_DEPTH, REDACTED_LABEL_FIELDS, REDACTED_LIST_FIELDS, REDACTED_TEXT_FIELDS, SAMPLE_FIELD_NAMES,
)
from genobs.id_index import RequestIdIndex
from genobs.store import DEAD_LETTER_SCAN_MARGIN, MAX_DEAD_LETTER_RAW_CHARS, Store, dead_letter_insert_sql

MAX_REPORTED_ERRORS = 100
# Inputs of up to this many records are checked in Python (collectors/fast_validation.py)
# instead of by the vectorised query, whose planning costs more than checking them; see
# bench/bench_validation_paths.py for the measurement behind the number.
FAST_PATH_MAX_RECORDS = 512


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
    # matches replaced in what went to dead_letter (raw text and error message)
    dead_letter_redactions: dict[str, int] = field(default_factory=dict)

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
        _add_counts(self.dead_letter_redactions, other.dead_letter_redactions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "inserted": self.inserted,
            "updated": self.updated,
            "rejected": self.rejected,
            "redactions": dict(self.redactions),
            "dead_letter_redactions": dict(self.dead_letter_redactions),
            "errors": [
                {"line": e.line, "request_id": e.request_id, "error": e.message} for e in self.errors
            ],
        }


def _add_counts(total: dict[str, int], more: dict[str, int]) -> None:
    for name, count in more.items():
        total[name] = total.get(name, 0) + count


# -- dead letters ---------------------------------------------------------------------------
# Every collector stores rejected input through here: the raw text and the error message
# go through the same redaction as samples (the SQL of collectors/redaction.py), and the
# raw text is cut past genobs.store.MAX_DEAD_LETTER_RAW_CHARS with a marker.


def _dead_letter_counts_sql(table: str) -> str:
    """Per pattern, the matches redaction replaces in ``table``'s (raw, error) as stored."""
    head = f"left(raw, {MAX_DEAD_LETTER_RAW_CHARS + DEAD_LETTER_SCAN_MARGIN})"
    return "SELECT " + ", ".join(
        f'sum({redaction.count_matches_sql(head, p)} + {redaction.count_matches_sql("error", p)}) AS "{p.name}"'
        for p in redaction.PATTERNS) + f" FROM {table}"


def _dead_letter_counts(cur: Any, table: str) -> dict[str, int]:
    row = cur.execute(_dead_letter_counts_sql(table)).fetchone()
    return {p.name: int(n) for p, n in zip(redaction.PATTERNS, row or ()) if n}


def insert_dead_letters(cur: Any, select_sql: str, params: Sequence[Any] | None, *, redact: bool) -> None:
    """INSERT into dead_letter from ``select_sql`` (source, line, raw, error), redacted."""
    if redact:
        _ensure_luhn_macro(cur)
    cur.execute(dead_letter_insert_sql(select_sql, redaction.redact_text_sql if redact else None),
                list(params or []))


def add_dead_letters(store: Store, rows: Sequence[tuple[str, int | None, str | None, str]], *,
                     redact: bool = True) -> dict[str, int]:
    """Store rejected input, (source, line, raw, error) per row, redacted when ``redact``;
    returns the matches replaced per pattern."""
    if not rows:
        return {}
    cur = store.cursor()
    counts: dict[str, int] = {}
    try:
        if redact:
            _ensure_luhn_macro(cur)
            table = pa.table({"raw": pa.array([r[2] for r in rows], type=pa.string()),
                              "error": pa.array([r[3] for r in rows], type=pa.string())})
            cur.register("_genobs_dead_scan", table)
            try:
                counts = _dead_letter_counts(cur, "_genobs_dead_scan")
            finally:
                cur.unregister("_genobs_dead_scan")
        store.add_dead_letters(rows, prepare=redaction.redact_text_sql if redact else None)
    except BaseException:
        _cursor_states.pop(cur, None)   # a rollback may have dropped the temp macro
        raise
    return counts


# The fields redaction reads, each with a row mask column ``_pii_<field>`` in a checked
# chunk: text fields, lists of strings, and attributes (unknown keys land there, e.g. a
# user_email column; its JSON text is redacted and stays valid JSON, since the
# replacements hold no quotes or backslashes).
_PII_TEXT_FIELDS: tuple[str, ...] = (*REDACTED_TEXT_FIELDS, "attributes")
_PII_LIST_FIELDS: tuple[str, ...] = REDACTED_LIST_FIELDS


@functools.lru_cache(maxsize=1)
def _redact_values_sql() -> str:
    """Each value of ``_genobs_pii_values(v)`` redacted, and its matches per pattern."""
    counts = ", ".join(f'{redaction.count_matches_sql("v", p)} AS "{p.name}"' for p in redaction.PATTERNS)
    return f"SELECT {redaction.redact_text_sql('v')} AS v, {counts} FROM _genobs_pii_values"


def _redact_values(cur: Any, values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``values`` (strings that match a PII pattern) redacted in SQL, in order, and per
    value the number of matches of each pattern."""
    _ensure_luhn_macro(cur)
    cur.register("_genobs_pii_values", pa.table({"v": values.cast(pa.string())}))
    try:
        out = cur.execute(_redact_values_sql()).to_arrow_table()
    finally:
        cur.unregister("_genobs_pii_values")
    counts = np.column_stack([
        np.asarray(out.column(p.name).to_numpy(zero_copy_only=False), dtype=np.int64) for p in redaction.PATTERNS
    ])
    return out.column("v").combine_chunks().cast(values.type), counts


def _redact_json_values(cur: Any, values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """As _redact_values, for JSON texts (attributes): the results stay valid JSON."""
    redacted, counts = _redact_values(cur, values)
    fixed = [redaction.redacted_json(o, r) for o, r in zip(values.to_pylist(), redacted.to_pylist())]
    return pa.array(fixed, type=pa.string()).cast(values.type), counts


@functools.lru_cache(maxsize=32)
def _validation_sql(
    columns: tuple[tuple[str, str], ...], constants: tuple[tuple[str, str], ...], with_prices: bool
) -> tuple[str, dict[str, object]]:
    """The validation query and its parameters, built once per (mapping, prices)."""
    params = SqlParams()
    sql = build_validation_sql(
        FieldMapping(columns=dict(columns), constants=dict(constants)), params, with_prices=with_prices
    )
    return sql, dict(params.values)


@functools.lru_cache(maxsize=2)
def _plain_columns_sql() -> str:
    return ", ".join(f'c."{name}"' for name in SAMPLE_FIELD_NAMES)




class _CursorState:
    """What this module has set up on one cursor (temp objects are per cursor)."""

    def __init__(self) -> None:
        self.luhn_macro = False
        self.prices: tuple[tuple[str, float, float], ...] | None = None


_cursor_states: "weakref.WeakKeyDictionary[Any, _CursorState]" = weakref.WeakKeyDictionary()


def _cursor_state(cur: Any) -> _CursorState:
    state = _cursor_states.get(cur)
    if state is None:
        state = _cursor_states[cur] = _CursorState()
    return state


def _ensure_luhn_macro(cur: Any) -> None:
    state = _cursor_state(cur)
    if not state.luhn_macro:
        cur.execute(redaction.LUHN_MACRO_SQL)
        state.luhn_macro = True


def _ensure_prices(cur: Any, prices: dict[str, "ModelPrice"]) -> None:
    wanted = tuple(sorted((m, float(p.input_per_mtok), float(p.output_per_mtok)) for m, p in prices.items()))
    state = _cursor_state(cur)
    if state.prices == wanted:
        return
    cur.execute("CREATE OR REPLACE TEMP TABLE _genobs_prices "
                "(model VARCHAR, input_per_mtok DOUBLE, output_per_mtok DOUBLE)")
    cur.executemany("INSERT INTO _genobs_prices VALUES (?, ?, ?)", [list(row) for row in wanted])
    state.prices = wanted


# Rows per Arrow record batch handed to DuckDB: it scans batches in parallel.
LINES_PER_BATCH = 4096


def split_lines(data: bytes | bytearray | memoryview) -> pa.Array:
    """``data`` cut at its newlines as an Arrow binary array over the same bytes (no copy):
    each line keeps its ``\\n``; the last line is what follows the last newline (empty
    when ``data`` ends with one: a blank line, which the query skips)."""
    size = len(data)
    if size >= 2**31 - 1:
        raise ValueError("a block of lines must be under 2 GiB")
    octets = np.frombuffer(data, dtype=np.uint8)
    # Newlines found a few MB at a time, so the comparison's scratch array stays small.
    step = 1 << 22
    scratch = np.empty(min(step, size), dtype=bool)
    ends = [np.flatnonzero(np.equal(octets[i: i + step], 10, out=scratch[: min(step, size - i)])) + i
            for i in range(0, size, step)]
    newlines = np.concatenate(ends) if ends else np.empty(0, dtype=np.int64)
    offsets = np.empty(len(newlines) + 2, dtype=np.int32)
    offsets[0] = 0
    offsets[1:-1] = newlines + 1
    offsets[-1] = size
    return pa.Array.from_buffers(pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def lines_table(raw: pa.Array, first_line: int) -> pa.Table:
    """(line, text) when every line is valid UTF-8 (checked by Arrow, no copy), else
    (line, raw) for the query to decode line by line."""
    text = raw.view(pa.string())
    try:
        text.validate(full=True)
        name, column = "text", text
    except pa.ArrowInvalid:
        name, column = "raw", raw
    table = pa.table({"line": pa.array(np.arange(first_line, first_line + len(raw), dtype=np.int64)), name: column})
    return pa.Table.from_batches(table.to_batches(max_chunksize=LINES_PER_BATCH), schema=table.schema)


_OFFSET_TYPES = {pa.binary(): np.int32, pa.string(): np.int32, pa.large_binary(): np.int64, pa.large_string(): np.int64}


def _openers_per_value(chunk: pa.Array, step: int = 1 << 20) -> np.ndarray:
    """Per value of a string/binary array: how many "{" and "[" it holds, read straight
    from its bytes (Arrow's substring counters visit them byte by byte, 5x slower), a
    megabyte at a time so that the scratch arrays stay in cache (3x faster than whole)."""
    offsets = np.frombuffer(chunk.buffers()[1], dtype=_OFFSET_TYPES[chunk.type])[chunk.offset:
                                                                                 chunk.offset + len(chunk) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    if end == start:
        return np.zeros(len(chunk), dtype=np.int64)
    octets = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)
    lowered = np.empty(min(step, end - start), dtype=np.uint8)
    found = np.empty(len(lowered), dtype=bool)
    positions = []
    for at in range(start, end, step):
        n = min(step, end - at)
        # "[" is 0x5b and "{" 0x7b: with bit 0x20 set, those two bytes and no other are 0x7b
        np.bitwise_or(octets[at:at + n], 0x20, out=lowered[:n])
        np.equal(lowered[:n], 0x7b, out=found[:n])
        positions.append(np.flatnonzero(found[:n]) + at)
    return np.diff(np.searchsorted(np.concatenate(positions), offsets))


def _too_deep_lines(table: pa.Table) -> list[int]:
    """Numbers of the lines of ``table`` (made by lines_table) nested deeper than
    MAX_NESTING_DEPTH. Only lines with more brackets than the limit are scanned exactly."""
    column = table.column(1)
    counts = np.concatenate([_openers_per_value(chunk) for chunk in column.chunks]) if column.num_chunks else \
        np.zeros(0, dtype=np.int64)
    candidates = np.flatnonzero(counts > MAX_NESTING_DEPTH)
    if not candidates.size:
        return []
    lines = table.column("line").take(pa.array(candidates)).to_pylist()
    texts = column.take(pa.array(candidates)).to_pylist()
    return [line for line, text in zip(lines, texts)
            if text is not None and jsontext.is_too_deep(text, MAX_NESTING_DEPTH)]


def _register_lines(cur: Any, table: pa.Table) -> None:
    """``_genobs_input(line, raw, text)`` on ``cur``: the non-blank lines of ``table``.

    Blank lines are skipped (their numbers still count). A line may end with its newline
    (Arrow holds the lines back to back): JSON reads it as whitespace, and the few places
    that use a line's exact text trim it."""
    cur.register("_genobs_lines", table)
    if "text" in table.column_names:
        cur.execute(
            "CREATE OR REPLACE TEMP VIEW _genobs_input AS SELECT line, NULL::BLOB AS raw, text "
            "FROM _genobs_lines WHERE regexp_matches(text, '\\S')"
        )
    else:  # not all valid UTF-8: the lines that are not are rejected as such
        cur.execute(
            "CREATE OR REPLACE TEMP VIEW _genobs_input AS SELECT line, raw, text "
            "FROM (SELECT line, raw, try(decode(raw)) AS text FROM _genobs_lines) "
            "WHERE text IS NULL OR regexp_matches(text, '\\S')"
        )


def _unregister_lines(cur: Any) -> None:
    cur.execute("DROP VIEW IF EXISTS _genobs_input")
    cur.unregister("_genobs_lines")


@dataclass(frozen=True)
class _Decided:
    """A checked chunk once its fate is settled: ``table`` (redacted), which rows are
    kept, every row's request_id hash, and repeated ids (row -> line of the first)."""

    table: pa.Table
    keep: np.ndarray
    hashes: np.ndarray
    repeats: dict[int, int]


@dataclass(frozen=True)
class CheckedChunk:
    """A chunk of lines and the validation query's output for it."""

    lines: pa.Table     # made by lines_table
    checked: pa.Table


class IngestSession:
    """One logical input (a file, a request): chunks share duplicate detection and totals.

    Use from one thread. Chunks commit on their own, or every ``commit_rows`` rows, so a
    long file that fails half way keeps what was committed before; call ``finish`` to
    commit the rest.
    """

    def __init__(self, store: Store, source: str, options: IngestOptions | None = None,
                 commit_rows: int | None = None) -> None:
        self.store = store
        self.source = source
        self.options = options or IngestOptions()
        self.result = IngestResult()
        # With ``commit_rows``, chunks share a transaction until that many rows have come
        # (and at ``finish``); without it, each chunk commits on its own.
        self._commit_rows = commit_rows
        self._transaction: Any = None
        self._pending_rows = 0
        # Rows in the samples table (deleted ones aside), to commit at row-group boundaries.
        self._table_rows = 0
        if commit_rows:
            self._table_rows = int(store.fetchone("SELECT count(*) FROM samples")[0])  # type: ignore[index]
        # Request ids accepted by earlier chunks, for duplicate detection across chunks
        # (unless the caller said there is only one): their hashes, and per chunk the ids,
        # lines and hashes, read only when a hash comes again.
        self._seen = RequestIdIndex()
        self._seen_rows: list[tuple[pa.Array, np.ndarray, np.ndarray]] = []
        self._single_chunk = False
        self._chunks = 0
        self._lines: pa.Table | None = None  # the lines of the chunk being written (add_checked)
        if self.options.prices:
            _ensure_prices(store.cursor(), self.options.prices)
        self._closed = False

    # -- feeding -------------------------------------------------------------------------

    def add_lines(self, lines: Sequence[bytes], first_line: int) -> IngestResult:
        """A chunk of JSON texts; ``first_line`` numbers the first of them."""
        return self.add_checked(self.check(lines_table(pa.array(lines, type=pa.binary()), first_line)))

    def check(self, table: pa.Table) -> "CheckedChunk":
        """Run the validation query over a table made by ``lines_table``. It reads nothing
        stored, so a reader thread may check the next chunk (with its own cursor) while
        this session writes the previous one."""
        cur = self.store.cursor()
        _register_lines(cur, table)
        try:
            if self.options.prices:
                _ensure_prices(cur, self.options.prices)
            sql, params = self._validation_sql()
            # Held as Arrow, not a temp table: a table would compress every text column
            # only to be read once more (it cost as much as the checks themselves).
            checked = cur.execute(sql, params).to_arrow_table(LINES_PER_BATCH)
        finally:
            _unregister_lines(cur)
        return CheckedChunk(table, self._ready(cur, checked, _too_deep_lines(table)))

    def _ready(self, cur: Any, checked: pa.Table, too_deep: Sequence[int] = ()) -> pa.Table:
        """The validation query's output made ready to write (in the checking thread, so
        that the writer has little left to do): ``_good`` (the row has no error) and, with
        redaction on, PII replaced in every value that holds some (Arrow's RE2 finds them,
        see redaction.matches; SQL redacts them) and ``_pii_<pattern>``, the matches of
        each pattern per row, on the original text."""
        if too_deep:
            # rejected as a whole, whatever the query made of them (as fast_validation does)
            deep = pc.is_in(checked.column("line"), value_set=pa.array(too_deep, type=pa.int64()))
            message = pa.scalar([fast_validation.TOO_DEEP_MESSAGE], type=checked.schema.field("errors").type)
            for name, replacement in (("errors", message),
                                      ("request_id", pa.scalar(None, type=checked.schema.field("request_id").type))):
                index = checked.schema.get_field_index(name)
                checked = checked.set_column(index, name, pc.if_else(deep, replacement, checked.column(name)))
        good = pc.equal(pc.list_value_length(checked.column("errors")), 0)
        checked = checked.append_column("_good", good)
        if not self.options.redact:
            return checked
        counts = np.zeros((checked.num_rows, len(redaction.PATTERNS)), dtype=np.int64)
        for name in (*_PII_TEXT_FIELDS, *_PII_LIST_FIELDS):
            column = checked.column(name)
            listed = name in _PII_LIST_FIELDS
            rows = (redaction.list_matches(column) if listed
                    else redaction.label_matches(column) if name in REDACTED_LABEL_FIELDS
                    else redaction.matches(column))
            if not rows.any():
                continue
            replace = redaction.replace_in_list_column if listed else redaction.replace_in_text_column
            redact = _redact_json_values if name == "attributes" else _redact_values
            column, found = replace(column, rows, lambda values: redact(cur, values))
            checked = checked.set_column(checked.schema.get_field_index(name), name, column)
            counts += found
        for index, pattern in enumerate(redaction.PATTERNS):
            checked = checked.append_column(f"_pii_{pattern.name}", pa.array(counts[:, index]))
        return checked

    def add_checked(self, chunk: "CheckedChunk") -> IngestResult:
        """Write a checked chunk: accepted rows upserted, rejected ones dead-lettered."""
        self._lines = chunk.lines  # rejected rows are stored with their line's text
        try:
            return self._process(lambda _: chunk.checked)
        finally:
            self._lines = None

    def add_relation_sql(self, sql: str, params: Sequence[Any] | None = None) -> IngestResult:
        """A chunk given as SQL producing (line BIGINT, text VARCHAR): JSON object per row."""
        cur = self.store.cursor()
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _genobs_input AS SELECT line, NULL::BLOB AS raw, text FROM ({sql})",
            list(params or []),
        )
        validation_sql, validation_params = self._validation_sql()

        def check(cur: Any) -> pa.Table:
            if self.options.prices:
                _ensure_prices(cur, self.options.prices)
            return self._ready(cur, cur.execute(validation_sql, validation_params).to_arrow_table(LINES_PER_BATCH))

        try:
            return self._process(check)
        finally:
            cur.execute("DROP TABLE IF EXISTS _genobs_input")

    # -- the work ------------------------------------------------------------------------

    def _validation_sql(self) -> tuple[str, dict[str, object]]:
        opts = self.options
        mapping = opts.mapping
        return _validation_sql(
            tuple(sorted(mapping.columns.items())), tuple(sorted(mapping.constants.items())),
            bool(opts.prices),
        )

    def _process(self, checked_of: Callable[[Any], pa.Table]) -> IngestResult:
        """One chunk: ``checked_of(cursor)`` gives its checked rows (made ready by ``_ready``).
        Which rows are kept is settled first (no writes); then the rows are written in the
        session's transaction, which commits each time the samples table gets to a multiple
        of ``commit_rows`` rows."""
        if self._single_chunk and self._chunks:
            raise RuntimeError("this ingest session was opened for one chunk")
        self._chunks += 1
        chunk = IngestResult()
        try:
            decided = self._decide(checked_of(self.store.cursor()), chunk)
            cuts = self._row_group_cuts(decided.keep)
            for start, stop in zip([0, *cuts], [*cuts, decided.table.num_rows]):
                if start:
                    self._end_transaction(None)  # a row group of the table is full: commit it
                self._begin_transaction()
                with self.store.transaction() as cur:
                    self._write_rows(cur, decided, start, stop, chunk)
                    if not start:
                        self._write_rejected(cur, decided, chunk)
        except BaseException as exc:
            self._end_transaction(type(exc))
            # A rollback also drops temp objects made in the transaction (the Luhn macro,
            # the price table): make them again next time.
            _cursor_states.pop(self.store.cursor(), None)
            raise
        self.result.merge(chunk)
        self._pending_rows += chunk.received
        self._table_rows += chunk.accepted
        if self._commit_rows and (self._table_rows % self._commit_rows == 0
                                  or self._pending_rows >= 2 * self._commit_rows):
            self._end_transaction(None)
        return chunk

    def _begin_transaction(self) -> None:
        if self._commit_rows and self._transaction is None:
            self._transaction = self.store.transaction()
            self._transaction.__enter__()

    def _end_transaction(self, exc_type: type[BaseException] | None) -> None:
        """Commit (or, after an error, roll back) the transaction shared by chunks."""
        transaction, self._transaction = self._transaction, None
        self._pending_rows = 0
        if transaction is not None:
            transaction.__exit__(exc_type, None, None)

    def _row_group_cuts(self, keep: np.ndarray) -> list[int]:
        """Rows of the chunk before which the table reaches a multiple of ``commit_rows``
        rows: committing there (DuckDB's row group size) leaves no partly filled row group
        behind, which the next commit would rewrite; on 1M rows that cost more than the
        whole insert, and the file came out almost twice as big."""
        if not self._commit_rows:
            return []
        kept = np.flatnonzero(keep)
        room = self._commit_rows - self._table_rows % self._commit_rows
        return [int(kept[count - 1]) + 1 for count in range(room, kept.size, self._commit_rows)]

    def _repeats(self, checked: pa.Table, good: np.ndarray, hashes: np.ndarray) -> dict[int, int]:
        """Row index -> line of the first record with the same request_id, for every good
        row that repeats an earlier good one (in this chunk or an earlier chunk of the input).

        Found by the request_id hashes (numpy, no SQL): only rows whose hash repeats in
        this chunk or is among those of earlier chunks are compared by their ids."""
        good_rows = np.flatnonzero(good)
        good_hashes = hashes[good_rows]
        _, first, counts = np.unique(good_hashes, return_index=True, return_counts=True)
        suspect = np.zeros(good_rows.size, dtype=bool)
        if (counts > 1).any():
            suspect |= np.isin(good_hashes, good_hashes[first[counts > 1]])
        if len(self._seen):
            suspect |= self._seen.known(good_hashes)
        if not suspect.any():
            return {}
        rows = good_rows[suspect]
        suspect_hashes = np.unique(good_hashes[suspect])
        # The first line of each id in earlier chunks (they come in line order).
        first_line: dict[str, int] = {}
        for ids, lines, seen_hashes in self._seen_rows:
            take = np.flatnonzero(np.isin(seen_hashes, suspect_hashes))
            if take.size:
                for rid, line in zip(ids.take(take).to_pylist(), lines[take].tolist()):
                    first_line.setdefault(rid, line)
        ids = checked.column("request_id").take(pa.array(rows)).to_pylist()
        lines = checked.column("line").take(pa.array(rows)).to_pylist()
        repeats: dict[int, int] = {}
        for line, row, rid in sorted(zip(lines, rows.tolist(), ids)):
            if rid in first_line:
                repeats[row] = first_line[rid]
            else:
                first_line[rid] = line
        return repeats

    def _decide(self, checked: pa.Table, chunk: IngestResult) -> "_Decided":
        """Which rows of ``checked`` (made ready by ``_ready``) are kept, and the chunk's
        counts, with numpy over Arrow columns; nothing is written."""
        n = checked.num_rows
        good = np.asarray(checked.column("_good").to_numpy(zero_copy_only=False), dtype=bool)
        # (0 for a row without a request_id: a rejected row, whose hash is never used)
        hashes = np.asarray(
            checked.column("request_hash").fill_null(0).to_numpy(zero_copy_only=False), dtype=np.uint64
        )
        repeats = self._repeats(checked, good, hashes)
        keep = good.copy()
        if repeats:
            keep[np.fromiter(repeats, dtype=np.int64, count=len(repeats))] = False
        chunk.received = n
        chunk.accepted = int(keep.sum())
        chunk.rejected = n - chunk.accepted
        if chunk.accepted and self.options.redact:
            for pattern in redaction.PATTERNS:
                found = np.asarray(checked.column(f"_pii_{pattern.name}").to_numpy(zero_copy_only=False))
                count = int(found[keep].sum())
                if count:
                    chunk.redactions[pattern.name] = count
        if chunk.accepted and not self._single_chunk:
            kept = np.flatnonzero(keep)
            self._seen.add(hashes[kept])
            self._seen_rows.append((
                checked.column("request_id").take(pa.array(kept)),
                np.asarray(checked.column("line").to_numpy(zero_copy_only=False))[kept],
                hashes[kept],
            ))
        return _Decided(checked, keep, hashes, repeats)

    def _write_rows(self, cur: Any, decided: "_Decided", start: int, stop: int, chunk: IngestResult) -> None:
        """Upsert the kept rows among ``decided.table[start:stop]``."""
        keep = decided.keep[start:stop]
        accepted = int(keep.sum())
        if not accepted:
            return
        table = decided.table.slice(start, stop - start)
        where = ""
        if accepted < keep.size:
            table, where = table.append_column("keep", pa.array(keep)), "WHERE c.keep"
        cur.register("_genobs_checked", table)
        try:
            counts = self.store.upsert_samples(
                f"SELECT {_plain_columns_sql()}, CAST(? AS VARCHAR) AS source, now() AS ingested_at "
                f"FROM _genobs_checked c {where}",
                [self.source], hashes=decided.hashes[start:stop][keep],
            )
        finally:
            cur.unregister("_genobs_checked")
        chunk.inserted += counts.inserted
        chunk.updated += counts.updated

    def _write_rejected(self, cur: Any, decided: "_Decided", chunk: IngestResult) -> None:
        """Rejected rows to dead_letter, with the line's text; the first few in ``chunk.errors``."""
        if not chunk.rejected:
            return
        rejected = np.flatnonzero(~decided.keep)
        first = [decided.repeats.get(row) for row in rejected.tolist()]
        rows = decided.table.select(["line", "request_id", "errors"]).take(pa.array(rejected)).append_column(
            "first_line", pa.array(first, type=pa.int64()))
        cur.register("_genobs_rejected_rows", rows)
        if self._lines is not None:
            _register_lines(cur, self._lines)
        try:
            cur.execute(
                "CREATE OR REPLACE TEMP TABLE _genobs_rejected AS "
                "SELECT c.line, c.request_id, "
                "CASE WHEN c.first_line IS NOT NULL "
                "THEN ['request_id: duplicate of line ' || c.first_line || ' in this input'] "
                "ELSE c.errors END AS errors, "
                "rtrim(coalesce(i.text, CAST(i.raw AS VARCHAR)), chr(13) || chr(10)) AS raw "
                "FROM _genobs_rejected_rows c JOIN _genobs_input i USING (line)"
            )
        finally:
            cur.unregister("_genobs_rejected_rows")
            if self._lines is not None:
                _unregister_lines(cur)
        # DuckDB's reader only says "invalid JSON": the stored error and the answer say
        # what is wrong (Python's parser, a lone surrogate, too deep...).
        bad_json = cur.execute("SELECT line, raw FROM _genobs_rejected WHERE errors = ['invalid JSON']").fetchall()
        if bad_json:
            cur.register("_genobs_json_problems", pa.table({
                "line": pa.array([line for line, _ in bad_json], type=pa.int64()),
                "message": pa.array([_json_problem(raw) for _, raw in bad_json], type=pa.string())}))
            try:
                cur.execute("UPDATE _genobs_rejected SET errors = [p.message] FROM _genobs_json_problems p "
                            "WHERE _genobs_rejected.line = p.line")
            finally:
                cur.unregister("_genobs_json_problems")
        insert_dead_letters(
            cur, "SELECT ? AS source, line, raw, array_to_string(errors, '; ') AS error "
                 "FROM _genobs_rejected ORDER BY line", [self.source], redact=self.options.redact)
        if self.options.redact:
            cur.execute("CREATE OR REPLACE TEMP VIEW _genobs_rejected_text AS "
                        "SELECT raw, array_to_string(errors, '; ') AS error FROM _genobs_rejected")
            _add_counts(chunk.dead_letter_redactions, _dead_letter_counts(cur, "_genobs_rejected_text"))
            cur.execute("DROP VIEW _genobs_rejected_text")
        found = cur.execute(
            "SELECT line, request_id, errors FROM _genobs_rejected ORDER BY line LIMIT ?",
            [MAX_REPORTED_ERRORS],
        ).fetchall()
        for line, request_id, errors in found:
            chunk.errors.append(RecordError(int(line), request_id, "; ".join(errors)))
        cur.execute("DROP TABLE _genobs_rejected")

    def add_problem(self, line: int | None, raw: str | None, message: str) -> None:
        """Record an input problem found outside the query (e.g. a truncated gzip stream)."""
        _add_counts(self.result.dead_letter_redactions,
                    add_dead_letters(self.store, [(self.source, line, raw, message)], redact=self.options.redact))
        self.result.rejected += 1
        self.result.received += 1
        if len(self.result.errors) < MAX_REPORTED_ERRORS:
            self.result.errors.append(RecordError(line, None, message))

    def finish(self) -> IngestResult:
        if not self._closed:
            self._closed = True
            self._end_transaction(None)
            self._seen_rows.clear()
        return self.result


_LONE_SURROGATE = re.compile(
    r"(?<!\\)\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})(?<!\\)\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _json_problem(text: str) -> str:
    """What is wrong with a text DuckDB's JSON reader refused, said as precisely as we can."""
    surrogate = _LONE_SURROGATE.search(text)
    if surrogate:
        return (f"invalid JSON: a string holds a lone UTF-16 surrogate {surrogate.group(0)} (not a Unicode "
                f"character; send the character itself, or a surrogate pair) at character {surrogate.start() + 1}")
    try:
        value = jsontext.loads(text)
    except jsontext.TooDeep:
        return fast_validation.TOO_DEEP_MESSAGE
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__ if value is not None else 'null'}"
    return "invalid JSON object"


# -- the small-batch path ------------------------------------------------------------------

_ARROW_TYPES: dict[str, pa.DataType] = {
    "timestamp": pa.timestamp("us", tz="UTC"),
    "context": pa.list_(pa.string()),
    "latency_ms": pa.float64(), "ttft_ms": pa.float64(), "cost_usd": pa.float64(),
    "input_tokens": pa.int64(), "output_tokens": pa.int64(),
    "safety_flagged": pa.bool_(), "cache_hit": pa.bool_(), "feedback": pa.int8(),
}


_FIELD_TYPES: tuple[pa.DataType, ...] = tuple(_ARROW_TYPES.get(name, pa.string()) for name in SAMPLE_FIELD_NAMES)
_field_values = operator.itemgetter(*SAMPLE_FIELD_NAMES)


def _arrow_rows(rows: list[dict[str, Any]], sources: list[str], ingested_at: datetime) -> pa.Table:
    # rows -> columns in one C-level transposition, then one Arrow array per column
    columns = zip(*map(_field_values, rows)) if rows else ((),) * len(SAMPLE_FIELD_NAMES)
    arrays = [pa.array(values, type=kind) for values, kind in zip(columns, _FIELD_TYPES)]
    arrays.append(pa.array(sources, type=pa.string()))
    arrays.append(pa.array([ingested_at] * len(rows), type=pa.timestamp("us", tz="UTC")))
    return pa.Table.from_arrays(arrays, names=[*SAMPLE_FIELD_NAMES, "source", "ingested_at"])


def _ingest_checked(
    store: Store,
    inputs: Sequence[tuple[fast_validation.CheckedBatch, str]],
    stored: list[dict[str, Any]] | None = None,
    redact: bool = True,
) -> list[IngestResult]:
    """Write inputs checked in Python, in one transaction, each answered as if written alone
    and in order: duplicates are found within an input; a request_id that an earlier input
    of the group wrote counts as an update, and the later record wins.

    ``stored``: when given, the rows written (samples columns, as stored) are appended to it."""
    results: list[IngestResult] = []
    final: dict[str, tuple[dict[str, Any], str]] = {}       # request_id -> (row, source)
    dead: list[tuple[str, int | None, str | None, str]] = []   # source, line, raw, error
    dead_of_input: list[int] = []                              # which input each dead row is from
    per_input: list[list[str]] = []
    for batch, source in inputs:
        result = IngestResult(received=len(batch.rows))
        first_seen: dict[str, int] = {}
        accepted_ids: list[str] = []
        rejected: list[tuple[int, str | None, str]] = []
        for row in batch.rows:
            rid = row.values["request_id"]
            if row.errors:
                message = "; ".join(row.errors)
                rejected.append((row.line, rid, message))
                dead.append((source, row.line, row.raw, message))
                dead_of_input.append(len(results))
            elif rid in first_seen:
                message = f"request_id: duplicate of line {first_seen[rid]} in this input"
                rejected.append((row.line, rid, message))
                dead.append((source, row.line, row.raw, message))
                dead_of_input.append(len(results))
            else:
                first_seen[rid] = row.line
                accepted_ids.append(rid)
                values = fast_validation.redact_row(row.values, result.redactions) if row.pii else row.values
                final.pop(rid, None)
                final[rid] = (values, source)
        result.accepted, result.rejected = len(accepted_ids), len(rejected)
        result.errors = [RecordError(line, rid, message) for line, rid, message in rejected[:MAX_REPORTED_ERRORS]]
        results.append(result)
        per_input.append(accepted_ids)
    rows = [values for values, _ in final.values()]
    # A transaction when dead letters go with the rows; otherwise the upsert makes its own
    # (or none: a single INSERT of new ids commits by itself), and the write lock keeps the
    # "stored before" answer true until the upsert.
    with store.transaction() if dead else store.exclusive():
        if final:
            table = _arrow_rows(rows, [src for _, src in final.values()], datetime.now(timezone.utc))
            if len(inputs) == 1:
                counts = store.upsert_samples(table)
                results[0].inserted, results[0].updated = counts.inserted, counts.updated
            else:
                # which ids were stored before this group, so that each input is counted as if alone
                before = store.stored_request_ids(list(final))
                for result, ids in zip(results, per_input):
                    for rid in ids:
                        if rid in before:
                            result.updated += 1
                        else:
                            result.inserted += 1
                            before.add(rid)
                store.upsert_samples(table)
        if dead:
            if len(inputs) == 1:
                results[0].dead_letter_redactions = add_dead_letters(store, dead, redact=redact)
            else:   # each input's own counts
                for index, result in enumerate(results):
                    mine = [row for row, owner in zip(dead, dead_of_input) if owner == index]
                    result.dead_letter_redactions = add_dead_letters(store, mine, redact=redact)
    if stored is not None:
        stored.extend(rows)
    return results


def ingest_checked_batches(
    store: Store,
    inputs: Sequence[tuple[Sequence[bytes], fast_validation.CheckedBatch | None, str]],
    *,
    options: IngestOptions | None = None,
    stored: list[dict[str, Any]] | None = None,
) -> list[IngestResult]:
    """Several inputs, each ``(lines, checked, source)`` with lines numbered from 1 and
    ``checked`` what fast_validation.check_lines made of them (None: it declined, or the
    input is too big): the answer of each is what ``ingest_lines`` would give it, in order.
    Runs of checked inputs are written together in one transaction; the others go through
    the vectorised path one by one. ``stored``: as for ``_ingest_checked`` (rows written by
    the Python path only)."""
    results: list[IngestResult | None] = [None] * len(inputs)
    pending: list[tuple[int, fast_validation.CheckedBatch, str]] = []

    def flush() -> None:
        if pending:
            written = _ingest_checked(store, [(b, s) for _, b, s in pending], stored,
                                      redact=(options or IngestOptions()).redact)
            for (index, _, _), result in zip(pending, written):
                results[index] = result
            pending.clear()

    for index, (lines, checked, source) in enumerate(inputs):
        if checked is not None:
            pending.append((index, checked, source))
            continue
        flush()
        results[index] = _ingest_with_sql(store, lines, source=source, options=options, first_line=1)
    flush()
    return [r if r is not None else IngestResult() for r in results]


def check_small_input(lines: Sequence[bytes], options: IngestOptions) -> fast_validation.CheckedBatch | None:
    """The Python check of an input of up to FAST_PATH_MAX_RECORDS records (None: the input
    needs the vectorised path: too big, a field mapping, or something check_lines declines)."""
    if options.mapping.columns or options.mapping.constants or not 0 < len(lines) <= FAST_PATH_MAX_RECORDS:
        return None
    return fast_validation.check_lines(lines, 1, redact=options.redact, prices=options.prices)


def ingest_line_batches(
    store: Store,
    inputs: Sequence[tuple[Sequence[bytes], str]],
    *,
    options: IngestOptions | None = None,
) -> list[IngestResult]:
    """Several inputs of JSON object texts, each ``(lines, source)`` with lines numbered from
    1 (e.g. concurrent HTTP requests): the answer of each is what ``ingest_lines`` would give
    it, in order. Small inputs are checked in Python and written together in one
    transaction; the others go through the vectorised path one by one."""
    opts = options or IngestOptions()
    prepared = [(lines, check_small_input(lines, opts), source) for lines, source in inputs]
    return ingest_checked_batches(store, prepared, options=opts)


def _ingest_with_sql(
    store: Store, batch: list[bytes] | Sequence[bytes], *, source: str, options: IngestOptions | None, first_line: int
) -> IngestResult:
    session = IngestSession(store, source, options)
    session._single_chunk = True   # one add_lines call: no table of ids for later chunks
    try:
        if batch:
            session.add_lines(list(batch), first_line)
        return session.finish()
    finally:
        session.finish()


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
    batch = [line if isinstance(line, bytes) else str(line).encode() for line in lines]
    opts = options or IngestOptions()
    if 0 < len(batch) <= FAST_PATH_MAX_RECORDS and not (opts.mapping.columns or opts.mapping.constants):
        checked = fast_validation.check_lines(batch, first_line, redact=opts.redact, prices=opts.prices)
        if checked is not None:
            return _ingest_checked(store, [(checked, source)], redact=opts.redact)[0]
    return _ingest_with_sql(store, batch, source=source, options=options, first_line=first_line)


def ingest_records(
    store: Store,
    records: Sequence[dict[str, Any]],
    *,
    source: str,
    options: IngestOptions | None = None,
) -> IngestResult:
    """Ingest already-decoded records (SDK, OTLP mapping); line = 1-based index."""
    return ingest_lines(store, record_lines(records), source=source, options=options)


def record_lines(records: Sequence[Any]) -> list[bytes]:
    """Decoded records as the JSON object texts the pipeline reads."""
    return [jsontext.record_text(r) for r in records]


def json_array_lines(data: bytes) -> list[bytes] | None:
    """The records of a JSON text that is an array, as JSON object texts (None when it is
    not an array). Elements are re-serialized from Python's parse; when the text is nested
    too deep for Python's parser, they are cut from the text as written instead (no
    recursion), so that the valid ones are still stored and the deep ones rejected as such.
    Raises ValueError when the text is not JSON."""
    try:
        items = json.loads(data)
    except RecursionError:
        return jsontext.split_array(data)
    if not isinstance(items, list):
        return None
    return record_lines(items)
