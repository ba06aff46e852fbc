"""Evidently's own DataDriftPreset on two DataFrames, and ours on the same frames, side by side.

genobs computes Evidently's decisions from DuckDB aggregates (``drift_aggregates``); this module
runs the real thing so tests and ``bench/bench_drift.py`` can check that every column gets the
same drifted / not-drifted decision and the dataset gets the same drift share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import duckdb
import pandas as pd

from genobs.evaluators.drift_aggregates import CUR, DEFAULT_EXACT_ROWS, REF, columns_drift
from genobs.evaluators.drift_tests import TESTS, ColumnDrift

_DISPLAY_TO_NAME = {t.display_name: t.name for t in TESTS.values()}


@dataclass(frozen=True)
class EvidentlyColumn:
    method: str  # our/Evidently's registered test name: ks, wasserstein, jensenshannon, chisquare, z
    score: float
    drifted: bool


@dataclass(frozen=True)
class EvidentlyResult:
    columns: dict[str, EvidentlyColumn]
    drifted_count: int
    drift_share: float


def evidently_drift(
    reference: pd.DataFrame, current: pd.DataFrame, numerical: Sequence[str], categorical: Sequence[str],
) -> EvidentlyResult:
    """Run ``Report([DataDriftPreset()])`` and read each column's method, score and test status."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(numerical), categorical_columns=list(categorical))
    columns = list(numerical) + list(categorical)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    result = snapshot.dict()
    scores: dict[str, tuple[str, float]] = {}
    count = share = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = (_DISPLAY_TO_NAME.get(config["method"], config["method"]), float(metric["value"]))
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            count, share = metric["value"]["count"], metric["value"]["share"]
    status: dict[str, bool] = {}
    for test in result["tests"]:
        match = re.fullmatch(r"Value Drift for column (.+)", test.get("name", ""))
        if match:
            status[match.group(1)] = test["status"] == "FAIL"
    out = {c: EvidentlyColumn(scores[c][0], scores[c][1], status[c]) for c in columns}
    assert count is not None and share is not None
    return EvidentlyResult(out, int(count), float(share))


def duckdb_drift(
    reference: pd.DataFrame, current: pd.DataFrame, numerical: Sequence[str], categorical: Sequence[str],
    exact_rows: int = DEFAULT_EXACT_ROWS, connection: duckdb.DuckDBPyConnection | None = None,
) -> list[ColumnDrift]:
    """genobs' aggregate-based verdicts on the same two frames (loaded into DuckDB)."""
    con = connection or duckdb.connect()
    columns = list(numerical) + list(categorical)
    ref = reference[columns].assign(_side=REF)
    cur = current[columns].assign(_side=CUR)
    casts = ", ".join(
        [f'CAST("{c}" AS DOUBLE) AS "{c}"' for c in numerical] + [f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in categorical]
    )
    con.register("_drift_ref", ref)
    con.register("_drift_cur", cur)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _drift_frames AS SELECT _side, {casts} FROM _drift_ref "
            f"UNION ALL SELECT _side, {casts} FROM _drift_cur"
        )
    finally:
        con.unregister("_drift_ref")
        con.unregister("_drift_cur")
    try:
        return columns_drift(con, "_drift_frames", numerical, categorical, exact_rows=exact_rows)
    finally:
        con.execute("DROP TABLE IF EXISTS _drift_frames")
