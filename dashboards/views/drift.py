"""Drift: per-feature drift over time and embedding drift (drift_results), and Evidently's
own HTML report for two chosen windows on a bounded sample."""

from __future__ import annotations

import altair as alt
import streamlit as st
import streamlit.components.v1 as components

from genobs.dashboards import queries, widgets as w
from genobs.dashboards.evidently_report import drift_report_html
from genobs.dashboards.timewindow import TimeParseError, parse_window


def render() -> None:
    st.title("Drift")
    db = queries.db_path()
    counts = queries.table_counts(db)
    f = w.sidebar_filters(db, with_models=False)
    if w.no_samples(counts, f):
        return
    if counts.get("drift_results", 0) == 0:
        st.info("**No drift results yet.** Compare two windows: `genobs drift --reference 'A..B' --current 'C..D' "
                "--service NAME` (or let `genobs serve` compare each service's last 24 h with the week before, "
                "hourly). Evidently's report for any two windows is below.")
    else:
        w.live(f, lambda: _results(f))
    _evidently(f)


def _results(f: w.Filters) -> None:
    df = queries.drift_results(f.db, f.window.start, f.window.end, f.services)
    if len(df) == 0:
        st.info("No drift results whose current window falls in the selected time range. Widen the range, "
                "or run `genobs drift` for it.")
        return
    df["at"] = df["current_end"]
    latest_run = df.sort_values("computed_at").iloc[-1]["run_id"]
    latest = df[df["run_id"] == latest_run]
    head = latest.iloc[0]
    st.caption(f"{df['run_id'].nunique()} drift runs in range · latest: service {head['service'] or 'all'}, "
               f"reference {head['reference']} vs current {head['current']} (computed {w.fmt_time(head['computed_at'])} UTC)")
    dataset = latest[latest["feature_type"] == "dataset"]
    drifted = latest[(latest["drifted"] == True) & (latest["feature_type"] != "dataset")]  # noqa: E712
    w.metric_row([
        ("Drifted features (latest run)", f"{drifted['feature'].nunique()} of "
         f"{latest[latest['feature_type'] != 'dataset']['feature'].nunique()}", None),
        ("Dataset drift share", w.fmt(100 * float(dataset["statistic"].iloc[0]), "%", 0) if len(dataset) else "—",
         "Share of tabular + embedding features that drifted (Evidently's dataset-drift rule)."),
        ("Embedding drift", ", ".join(sorted(set(drifted[drifted["feature_type"] == "embedding"]["feature"]))) or "none",
         "Prompt / response embeddings: domain-classifier ROC AUC and MMD permutation test."),
    ])

    st.subheader("Per-feature drift over time")
    tab = df[~df["feature_type"].isin(["embedding", "dataset"]) & df["drift_score"].notna()].copy()
    if len(tab):
        tab["label"] = tab["feature"] + " (" + tab["method"] + ")"
        chart = alt.Chart(tab).mark_line(point=True).encode(
            x=alt.X("at:T", title="end of current window (UTC)"),
            y=alt.Y("drift_score:Q", title="drift score (test statistic, unitless)"),
            color=alt.Color("label:N", title="feature (method)"),
            tooltip=["feature:N", "method:N", alt.Tooltip("drift_score:Q", format=".3f"),
                     alt.Tooltip("threshold:Q", format=".3f"), "drifted:N", "current:N"]).properties(height=280)
        st.altair_chart(chart, width="stretch")
    st.subheader("Embedding drift over time")
    emb = df[df["feature_type"] == "embedding"].copy()
    if len(emb):
        emb["label"] = emb["feature"] + " (" + emb["method"] + ")"
        chart = alt.Chart(emb).mark_line(point=True).encode(
            x=alt.X("at:T", title="end of current window (UTC)"),
            y=alt.Y("statistic:Q", title="ROC AUC (classifier) / MMD² (unitless)"),
            color=alt.Color("label:N", title="embedding (method)"),
            tooltip=["feature:N", "method:N", alt.Tooltip("statistic:Q", format=".4f"),
                     alt.Tooltip("p_value:Q", format=".4f"), alt.Tooltip("threshold:Q", format=".3f"),
                     "drifted:N"]).properties(height=240)
        st.altair_chart(chart, width="stretch")
    else:
        st.info("No embedding drift in these runs (run `genobs drift` with embeddings on).")
    st.subheader("Latest run")
    st.dataframe(latest[["feature", "feature_type", "method", "statistic", "p_value", "threshold", "drifted",
                         "details"]], hide_index=True, width="stretch", column_config={
        "statistic": st.column_config.NumberColumn("statistic", format="%.4f"),
        "p_value": st.column_config.NumberColumn("p-value", format="%.4f"),
        "threshold": st.column_config.NumberColumn("threshold", format="%.3f")})


def _default_windows(f: w.Filters) -> tuple[str, str]:
    """The selected range as the current window and the range of the same length before it."""
    span = f.window.end - f.window.start
    return (w.window_text(f.window.start - span, f.window.start), w.window_text(f.window.start, f.window.end))


def _evidently(f: w.Filters) -> None:
    st.subheader("Evidently data-drift report")
    ref_default, cur_default = _default_windows(f)
    with st.form("evidently"):
        c1, c2 = st.columns(2)
        ref_text = c1.text_input("Reference window (UTC)", value=ref_default)
        cur_text = c2.text_input("Current window (UTC)", value=cur_default)
        go = st.form_submit_button("Build Evidently report")
    st.caption(f"Evidently's DataDriftPreset on a random sample of at most {queries.EVIDENTLY_SAMPLE:,} samples "
               "per window (service filter applies).")
    if not go:
        return
    try:
        ref_w = parse_window(ref_text, now=f.anchored_at)
        cur_w = parse_window(cur_text, now=f.anchored_at)
    except (TimeParseError, ValueError) as exc:
        st.error(f"{exc}")
        return
    ref = queries.evidently_sample(f.db, queries.Scope(ref_w.start, ref_w.end, f.services, f.models))
    cur = queries.evidently_sample(f.db, queries.Scope(cur_w.start, cur_w.end, f.services, f.models))
    if len(ref) < 30 or len(cur) < 30:
        st.warning(f"Too few samples for a report: {len(ref)} in the reference window, {len(cur)} in the current "
                   "(at least 30 each). Pick wider windows.")
        return
    with st.spinner("Evidently is computing the report…"):
        html = drift_report_html(ref, cur, [*queries.EVIDENTLY_NUMERIC, "response_chars"],
                                 list(queries.EVIDENTLY_CATEGORICAL))
    st.caption(f"reference: {len(ref):,} samples · current: {len(cur):,} samples")
    components.html(html, height=900, scrolling=True)


if __name__ == "__main__":
    render()
