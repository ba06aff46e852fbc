"""Evidently's own data-drift report (DataDriftPreset) as HTML, for the Drift page.

genobs's drift task computes the same decisions from DuckDB aggregates over whole windows;
this report runs Evidently itself on a bounded sample of each window (queries.EVIDENTLY_SAMPLE
rows), the view Evidently users know.
"""

from __future__ import annotations

import pandas as pd


def drift_report_html(reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str],
                      categorical: list[str]) -> str:
    """Run Report([DataDriftPreset()]) on the two frames; return its standalone HTML."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    # Columns empty in either window would make Evidently fail the whole report.
    numerical = [c for c in numerical if reference[c].notna().any() and current[c].notna().any()]
    categorical = [c for c in categorical if reference[c].notna().any() and current[c].notna().any()]
    columns = numerical + categorical
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    ref = reference[columns].copy()
    cur = current[columns].copy()
    for c in numerical:
        ref[c] = pd.to_numeric(ref[c], errors="coerce").astype(float)
        cur[c] = pd.to_numeric(cur[c], errors="coerce").astype(float)
    for c in categorical:
        ref[c] = ref[c].astype(str)
        cur[c] = cur[c].astype(str)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    return snapshot.get_html_str(as_iframe=False)
