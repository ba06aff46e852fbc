"""An in-memory index of the request_ids stored in ``samples``, to make upserts cheap.

``samples`` has no primary key (maintaining an ART index doubled bulk-load time), so an
upsert is ``DELETE ... WHERE request_id IN (...)`` followed by an INSERT, and the DELETE
scans the whole request_id column: random ids defeat DuckDB's zone maps, so its cost
grows with the table. Most ingested ids are new. This index holds a 64-bit hash of every
stored request_id (the first 8 bytes of its MD5, computed the same way by DuckDB at load
and by Python afterwards); an id whose hash is not in it is certainly not stored, so a
batch of new ids skips the DELETE, and only the ids whose hash is known are deleted.

The index may hold more than the table (hash collisions, rows deleted outside
``Store.upsert_samples``, a rolled-back transaction): that only costs a DELETE that finds
nothing. It must never hold less, so every write that adds rows to ``samples`` goes
through ``Store.upsert_samples`` (the store's write lock serialises them), and the index
is loaded from the table on first use in each process.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Sequence

import numpy as np

# The first 8 bytes of MD5(request_id) as a little-endian integer, in DuckDB SQL;
# hash_ids computes the same in Python (tests/test_store.py checks that they agree).
HASH_SQL = "CAST(md5_number({column}) & CAST(18446744073709551615 AS UHUGEINT) AS UBIGINT)"

# Small additions go to a set, merged into the sorted array (a linear-time merge) when it
# holds more than _MIN_RECENT hashes or 1/_MERGE_FRACTION of the array; big additions (a
# file's chunk) are merged at once.
_MERGE_FRACTION = 64
_MIN_RECENT = 1 << 16
_DIRECT_MERGE = 4096


def hash_sql(column: str) -> str:
    return HASH_SQL.format(column=column)


def hash_ids(ids: Iterable[str]) -> np.ndarray:
    """The 64-bit hashes of ``ids`` (as HASH_SQL computes them), as a uint64 array."""
    digests = b"".join([hashlib.md5(rid.encode()).digest()[:8] for rid in ids])
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64, copy=False)


def _member(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    if sorted_values.size == 0 or values.size == 0:
        return np.zeros(values.size, dtype=bool)
    if values.size <= 1024:
        return _lookup(sorted_values, values)
    # Looked up in sorted order, the binary searches walk the array's memory in one
    # direction and hit the cache, which for a large batch outweighs the sort.
    order = np.argsort(values)
    found = np.empty(values.size, dtype=bool)
    found[order] = _lookup(sorted_values, values[order])
    return found


def _lookup(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_values, values)
    pos[pos == sorted_values.size] = 0
    return sorted_values[pos] == values


class RequestIdIndex:
    """Hashes of the stored request_ids; use under the store's write lock."""

    def __init__(self) -> None:
        self._base = np.empty(0, dtype=np.uint64)     # sorted (repeats only from hash collisions)
        self._recent: set[int] = set()                 # added since the last merge
        self.loaded = False

    def __len__(self) -> int:
        return int(self._base.size) + len(self._recent)

    def load(self, cursor: Any) -> None:
        """Read the hashes of every stored request_id (inside the caller's transaction)."""
        column = cursor.execute(f"SELECT {hash_sql('request_id')} AS h FROM samples").fetchnumpy()["h"]
        self._base = np.sort(np.asarray(column, dtype=np.uint64))
        self._recent = set()
        self.loaded = True

    def known(self, hashes: np.ndarray) -> np.ndarray:
        """A boolean mask: True where the hash may belong to a stored request_id."""
        mask = _member(self._base, hashes)
        if self._recent:
            recent = self._recent
            mask |= np.fromiter((h in recent for h in hashes.tolist()), dtype=bool, count=hashes.size)
        return mask

    def add(self, hashes: np.ndarray) -> None:
        if hashes.size >= _DIRECT_MERGE:
            self._merge(hashes)
            return
        self._recent.update(hashes.tolist())
        if len(self._recent) > max(_MIN_RECENT, self._base.size // _MERGE_FRACTION):
            self._merge(np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent)))
            self._recent = set()

    def _merge(self, hashes: np.ndarray) -> None:
        new = np.unique(hashes.astype(np.uint64, copy=False))   # sorted, so one search serves
        pos = np.searchsorted(self._base, new)                    # both the test and the insert
        if self._base.size:
            fresh = self._base[np.minimum(pos, self._base.size - 1)] != new
            new, pos = new[fresh], pos[fresh]
        if new.size:
            self._base = np.insert(self._base, pos, new)

    def clear(self) -> None:
        """Forget everything: the next use loads the index from the table again."""
        self.__init__()


def known_ids(index: RequestIdIndex, ids: Sequence[str], hashes: np.ndarray) -> list[str]:
    """The ids whose hash the index knows (those that may be stored), in order."""
    mask = index.known(hashes)
    if not mask.any():
        return []
    return [rid for rid, hit in zip(ids, mask.tolist()) if hit]
