"""File ingest: JSONL (NDJSON), JSON arrays, CSV and Parquet, plain or gzip, or stdin.

JSONL is streamed in chunks of lines (bounded memory: a reader thread checks the next
chunk while the current one is written; a commit every COMMIT_ROWS rows, so a file that
breaks half way keeps what came before); CSV and Parquet are read by DuckDB and each row
becomes one JSON object for the same validation. Gzip is recognised by its magic bytes,
whatever the file is called.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import io
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from genobs.collectors.pipeline import (
    CheckedChunk, IngestOptions, IngestResult, IngestSession, json_array_lines, lines_table, split_lines,
)
from genobs.store import Store

FORMATS = ("jsonl", "json", "csv", "parquet")
CHUNK_BYTES = 64 * 1024 * 1024
# A file's chunks commit together every this many rows (a DuckDB row group): each
# commit rewrites the table's last, partly filled row group, so committing every 64 MB
# chunk cost as much as the insert itself.
COMMIT_ROWS = 122_880
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


class InputError(Exception):
    """The input as a whole cannot be read (missing file, unknown format, empty file)."""


@dataclass
class FileReport:
    path: str
    result: IngestResult = field(default_factory=IngestResult)
    problem: str | None = None      # a whole-file problem (the file could not be read, or not all of it)
    columns: list[str] | None = None  # CSV / Parquet: the columns the file has


ProgressHook = Callable[[int], None]   # called with the number of bytes just read


def detect_format(name: str, head: bytes, forced: str | None) -> str:
    """--format wins; then the name's extension (under .gz); then the first bytes."""
    if forced:
        if forced not in FORMATS:
            raise InputError(f"unknown format {forced!r}: use one of {', '.join(FORMATS)}")
        return forced
    base = name.lower().removesuffix(".gz").removesuffix(".gzip")
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"),
                        (".csv", "csv"), (".tsv", "csv"), (".parquet", "parquet")):
        if base.endswith(suffix):
            return fmt
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    return "jsonl"


def _open_binary(path: str) -> tuple[BinaryIO, int | None]:
    """The file (or stdin for '-') as a binary stream, and its size when known."""
    if path == "-":
        return sys.stdin.buffer, None
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory, not a file")
    try:
        return open(p, "rb"), p.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror})") from None


class _Peekable(io.RawIOBase):
    """Lets us read the first bytes (format/gzip detection) of a stream that cannot seek."""

    def __init__(self, stream: BinaryIO, head: bytes) -> None:
        self._stream = stream
        self._head = head

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _CountingReader(io.RawIOBase):
    def __init__(self, stream: BinaryIO, hook: ProgressHook | None) -> None:
        self._stream = stream
        self._hook = hook

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        if self._hook and data:
            self._hook(len(data))
        return len(data)


READ_BYTES = 1024 * 1024


class _Buffers:
    """Read buffers, handed back for reuse once their chunk is written. A fresh 64 MB
    buffer per chunk costs a page fault per 4 KB the first time it is filled: on 1M rows
    reuse saved 240k faults, 0.5 s of system time and 0.4-0.6 s of wall time (A/B, three
    runs each, 12.3-12.8 s -> 11.9-12.2 s). A buffer is only reused
    when nothing points into it any more (Python refuses to resize a bytearray that is
    still exported), else a new one is made."""

    def __init__(self, keep: int) -> None:
        self._free: "collections.deque[bytearray]" = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def get(self, size: int) -> bytearray:
        with self._lock:
            while self._free:
                buffer = self._free.popleft()
                if len(buffer) >= size and _not_exported(buffer):
                    return buffer
        return bytearray(size)

    def put(self, buffer: object) -> None:
        if isinstance(buffer, bytearray):
            with self._lock:
                self._free.append(buffer)


def _not_exported(buffer: bytearray) -> bool:
    try:
        buffer.append(0)
    except BufferError:
        return False
    del buffer[-1]
    return True


def _line_chunks(stream: BinaryIO, buffers: _Buffers | None = None) -> Iterator[memoryview]:
    """Blocks of complete lines of about CHUNK_BYTES, without the newline after the last
    line of a block; the bytes after the last newline come as a last block. If the stream
    breaks (a truncated gzip), the complete lines read before the break come first, then
    the error is raised.

    Each block is read into a buffer of its own (the Arrow arrays made from it point into
    it, no copy; ``block.obj`` is that buffer, for ``buffers`` to have back once the block
    is written), in reads of at most READ_BYTES: readinto1 takes what one underlying read
    gives, so a break loses no bytes decompressed before it."""
    readinto = getattr(stream, "readinto1", None) or stream.readinto
    rest = b""
    eof = False
    view: memoryview | None = None
    while not eof:
        view = None  # (no export of the last buffer left here while asking for the next)
        size = len(rest) + CHUNK_BYTES
        buffer = buffers.get(size) if buffers is not None else bytearray(size)
        buffer[: len(rest)] = rest
        view = memoryview(buffer)
        filled = len(rest)
        try:
            while filled < size:
                count = readinto(view[filled: min(filled + READ_BYTES, size)])
                if not count:
                    eof = True
                    break
                filled += count
        except (EOFError, zlib.error, OSError):
            cut = buffer.rfind(b"\n", 0, filled)
            if cut >= 0:
                yield view[:cut]
            raise
        cut = buffer.rfind(b"\n", 0, filled)
        if cut < 0:  # no newline yet (a line longer than a block): read on
            rest = bytes(view[:filled])
            continue
        rest = bytes(view[cut + 1: filled])
        yield view[:cut]
    view = None
    if rest:
        yield memoryview(rest)


def ingest_file(
    store: Store,
    path: str,
    *,
    fmt: str | None = None,
    options: IngestOptions | None = None,
    progress: ProgressHook | None = None,
) -> FileReport:
    """Ingest one file ('-' = stdin). Whole-file problems go in ``report.problem``;
    record problems in ``report.result.errors`` and ``dead_letter``."""
    report = FileReport(path)
    raw, _size = _open_binary(path)
    source = "stdin" if path == "-" else f"file:{os.path.abspath(path)}"
    try:
        head = raw.read(4)
        compressed = head.startswith(GZIP_MAGIC)
        stream: BinaryIO = io.BufferedReader(_CountingReader(_Peekable(raw, head), progress))  # type: ignore[arg-type]
        if compressed:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        try:
            first = stream.peek(8)[:8] if hasattr(stream, "peek") else b""
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: not a readable gzip file ({exc})") from None
        kind = detect_format(path, first, fmt)
        if not first:
            raise InputError(f"{path}: empty file, nothing to ingest")
        session = IngestSession(store, source, options, commit_rows=COMMIT_ROWS)
        try:
            if kind == "jsonl":
                _ingest_jsonl(session, stream, report, compressed)
            elif kind == "json":
                _ingest_json_document(session, stream, report)
            else:
                _ingest_tabular(session, stream, report, kind, path)
        finally:
            report.result = session.finish()
        if report.result.received == 0 and report.problem is None:
            report.problem = f"{path}: no records in the file (only blank lines or a header), nothing to ingest"
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()
    return report


@dataclass
class _Checked:
    chunk: "Future[CheckedChunk]"
    first_line: int
    buffer: object            # what the chunk's lines point into (see _Buffers)


@dataclass
class _Broken:
    line: int                 # the first line not read
    error: BaseException


# Chunks checked at once, each by its own thread. With the writer, that makes three
# threads with work to do on 2 cores: the operating system keeps both cores busy however
# the work divides between checking (JSON parse, PII scan) and writing (insert, commit),
# where two fixed threads left a core idle whenever one side was slower.
CHECK_THREADS = 2
# The writer is the one stage that cannot be split (DuckDB compresses the rows of an
# insert on one thread), so the checking threads yield to it: they run at this nice value
# (Linux sets it per thread). Sharing the cores three ways evenly would hold the writer to
# 2/3 of one, and the writer's pace is the pipeline's pace (bench/bench_ingest.py).
CHECKER_NICENESS = 10


def _yield_to_the_writer() -> None:
    # Only on Linux, where a thread id names that thread; elsewhere the same call could
    # name another process.
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHECKER_NICENESS)
    except OSError:  # not allowed: only a little slower
        pass


def _read_and_check(session: IngestSession, stream: BinaryIO, out: "queue.Queue[object]",
                    stop: threading.Event, checkers: ThreadPoolExecutor, buffers: _Buffers) -> None:
    """Reader thread: cuts the stream into chunks and hands each to ``checkers`` to run its
    validation query, so the next chunks are checked while the session writes this one.
    Puts _Checked items in order, then None at the end, a _Broken if the stream breaks,
    or the exception on an error."""

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    _yield_to_the_writer()   # reading and cutting lines are checking work too
    line_no = 1
    try:
        for block in _line_chunks(stream, buffers):
            if line_no == 1 and block[:3] == b"\xef\xbb\xbf":
                block = block[3:]  # a UTF-8 byte-order mark
            lines = split_lines(block)
            item = _Checked(checkers.submit(session.check, lines_table(lines, line_no)), line_no, block.obj)
            count = len(lines)
            del block, lines  # only the chunk in flight points into the buffer now
            if not put(item):
                return
            del item
            line_no += count
        put(None)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        put(_Broken(line_no, exc))
    except BaseException as exc:  # handed to the main thread, which raises it
        put(exc)


@contextlib.contextmanager
def _half_of_duckdb_threads(store: Store) -> Iterator[None]:
    """DuckDB's worker threads halved for a while (then set back)."""
    cur = store.cursor()
    (before,) = cur.execute("SELECT current_setting('threads')").fetchone()
    if int(before) < 2:
        yield
        return
    cur.execute(f"SET threads = {int(before) // 2}")
    try:
        yield
    finally:
        cur.execute(f"SET threads = {int(before)}")


def _ingest_jsonl(session: IngestSession, stream: BinaryIO, report: FileReport, compressed: bool) -> None:
    # The checking threads and the writer run queries at once, each side with half of
    # DuckDB's threads: with all of them each, the two sides' threads outnumber the cores
    # and spend CPU time waiting on one another (bench/bench_ingest.py).
    with _half_of_duckdb_threads(session.store):
        _check_and_write(session, stream, report)


def _check_and_write(session: IngestSession, stream: BinaryIO, report: FileReport) -> None:
    out: "queue.Queue[object]" = queue.Queue(maxsize=CHECK_THREADS)
    stop = threading.Event()
    checkers = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="genobs-ingest-check",
                                  initializer=_yield_to_the_writer)
    buffers = _Buffers(keep=CHECK_THREADS + 2)
    reader = threading.Thread(target=_read_and_check, args=(session, stream, out, stop, checkers, buffers),
                              name="genobs-ingest-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, _Broken):
                exc = item.error
                what = "truncated gzip stream" if isinstance(exc, EOFError) else f"corrupt gzip stream ({exc})"
                report.problem = (
                    f"{report.path}: {what}: stopped after line {item.line - 1}; "
                    "the lines before were ingested, the rest of the file is missing"
                )
                session.add_problem(item.line, None, report.problem)
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, _Checked)
            session.add_checked(item.chunk.result())
            buffer, item = item.buffer, None  # the chunk is written: nothing reads its lines now
            buffers.put(buffer)
            del buffer
    finally:
        stop.set()
        reader.join()
        checkers.shutdown(wait=True, cancel_futures=True)


def _ingest_json_document(session: IngestSession, stream: BinaryIO, report: FileReport) -> None:
    """A .json file: one object, an array of objects, or (if it parses as neither) JSONL."""
    data = stream.read()
    stripped = data.lstrip()
    if not stripped.startswith(b"["):
        session.add_lines([line.rstrip(b"\r") for line in data.split(b"\n")], 1)
        return
    try:
        lines = json_array_lines(data) or []
    except ValueError as exc:
        report.problem = f"{report.path}: invalid JSON array: {exc}"
        session.add_problem(None, data.decode("utf-8", "replace"), report.problem)
        return
    session.add_lines(lines, 1)


def _ingest_tabular(session: IngestSession, stream: BinaryIO, report: FileReport, kind: str, path: str) -> None:
    """CSV / Parquet through DuckDB's readers (spooled to a temp file when compressed or stdin)."""
    suffix = ".csv" if kind == "csv" else ".parquet"
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
        try:
            shutil.copyfileobj(stream, tmp, CHUNK_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            report.problem = f"{path}: truncated or corrupt gzip stream ({exc}); ingested what came before"
        spooled = tmp.name
    try:
        if report.problem:
            session.add_problem(None, None, report.problem)
        cur = session.store.cursor()
        if kind == "csv":
            delim = "\t" if path.lower().removesuffix(".gz").endswith(".tsv") else ","
            # quote/escape given: with null_padding the sniffer misses RFC 4180 quoting ("" in "...").
            reader = ("read_csv(?, header = true, all_varchar = true, delim = ?, quote = '\"', escape = '\"', "
                      "null_padding = true, strict_mode = false)")
            reader_params: list[object] = [spooled, delim]
            first_line = 2
        else:
            reader = "read_parquet(?)"
            reader_params = [spooled]
            first_line = 1
        try:
            columns = [row[0] for row in cur.execute(f"DESCRIBE SELECT * FROM {reader}", reader_params).fetchall()]
        except Exception as exc:  # DuckDB's reader errors name the problem well
            raise InputError(f"{path}: cannot read as {kind}: {str(exc).splitlines()[0]}") from None
        report.columns = columns
        session.add_relation_sql(
            f"SELECT CAST(row_number() OVER () AS BIGINT) + {first_line - 1} AS line, "
            f"CAST(to_json(t) AS VARCHAR) AS text FROM {reader} t",
            reader_params,
        )
    finally:
        os.unlink(spooled)


def missing_required_columns(columns: list[str], options: IngestOptions) -> list[str]:
    """Required sample fields that no column (or --map / --set) provides."""
    from genobs.records import REQUIRED_SAMPLE_FIELDS
    from genobs.collectors.validation import DERIVED_TIME_FIELDS, ROW_HASH

    mapping = options.mapping
    missing = []
    for name in REQUIRED_SAMPLE_FIELDS:
        key = mapping.source_key(name)
        if key == ROW_HASH or name in mapping.constants or key in columns:
            continue
        if name == "timestamp" and all(d in mapping.columns for d in DERIVED_TIME_FIELDS):
            continue
        missing.append(name)
    return missing
