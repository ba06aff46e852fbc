"""Quality: CLIP alignment and hallucination by model version over time; worst samples."""

from __future__ import annotations

import altair as alt
import streamlit as st

from genobs.dashboards import queries, widgets as w

METRICS = {
    queries.HALLUCINATION_METRIC: ("Hallucination", "hallucinated answers (%)", True),
    queries.CLIP_METRIC: ("CLIP alignment", "mean CLIP score (0-100)", False),
}


def render() -> None:
    st.title("Quality")
    db = queries.db_path()
    counts = queries.table_counts(db)
    f = w.sidebar_filters(db)
    if w.no_samples(counts, f):
        return
    if counts.get("scores", 0) == 0:
        st.info("**No evaluator scores yet.** Score the samples: `genobs evaluate hallucination clip` "
                "(or let `genobs serve` run the evaluators every minute). Hallucination needs samples with "
                "`context` or `reference`; CLIP needs image samples and its reference model.")
        return
    w.live(f, lambda: _body(f))


def _body(f: w.Filters) -> None:
    available = set(queries.score_metrics(f.db))
    for metric, (title, y_title, higher_is_worse) in METRICS.items():
        st.header(title)
        if metric not in available:
            cmd = "hallucination" if metric == queries.HALLUCINATION_METRIC else "clip"
            st.info(f"No `{metric}` scores in this database: run `genobs evaluate {cmd}`.")
            continue
        by_version = queries.score_by_version(f.db, f.scope, metric)
        if len(by_version) == 0:
            w.empty_window(f"`{metric}` scores")
            continue
        series = queries.score_series(f.db, f.scope, metric, f.bucket_s)
        y = "hallucinated_pct" if metric == queries.HALLUCINATION_METRIC else "mean_score"
        series["link"] = [
            f.samples_link(range=w.bucket_range(b, f.bucket_s), order="worst hallucination")
            for b in series["bucket"]]
        left, right = st.columns([3, 2])
        with left:
            chart = alt.Chart(series).mark_line(point=alt.OverlayMarkDef(size=30)).encode(
                x=w.time_axis(), y=alt.Y(f"{y}:Q", title=y_title),
                color=alt.Color("version:N", title="model version (arm)", scale=w.version_colors(series["version"])),
                href="link:N",
                tooltip=[alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"), "version:N",
                         alt.Tooltip("scored:Q", title="scored"),
                         alt.Tooltip(f"{y}:Q", title=y_title, format=".2f")]).properties(height=260)
            w.show_chart(chart)
        with right:
            # Four columns that fit this narrow column of the page (model, version and arm in one).
            shown = by_version.assign(version=by_version["model"] + " " + by_version["model_version"] + " ("
                                      + by_version["variant"] + ")")
            st.dataframe(shown[["version", "scored", "mean_score", "hallucinated_pct"]], hide_index=True,
                         width="stretch", column_config={
                             "version": st.column_config.TextColumn("model version (arm)", width=150),
                             "scored": st.column_config.NumberColumn("scored", width=55),
                             "mean_score": st.column_config.NumberColumn("mean score", format="%.3f", width=75),
                             "hallucinated_pct": st.column_config.NumberColumn(
                                 "hallucinated (%)" if metric == queries.HALLUCINATION_METRIC else "flagged (%)",
                                 format="%.1f", width=95)})
            if metric == queries.HALLUCINATION_METRIC and len(by_version) > 1:
                worst = by_version.loc[by_version["hallucinated_pct"].idxmax()]
                best = by_version.loc[by_version["hallucinated_pct"].idxmin()]
                if worst["hallucinated_pct"] >= 2 * max(best["hallucinated_pct"], 0.5):
                    st.error(f"**{worst['model_version']} ({worst['variant']})** hallucinates in "
                             f"{worst['hallucinated_pct']:.1f}% of scored answers vs "
                             f"{best['hallucinated_pct']:.1f}% for {best['model_version']} ({best['variant']}).")
        st.subheader(f"Worst samples — {title.lower()}")
        worst_rows = queries.worst_samples(f.db, f.scope, metric, descending=higher_is_worse)
        worst_rows["open"] = [w.samples_link(None, rid=r) for r in worst_rows["request_id"]]
        # Fixed widths that add up to the page's width: the long text ends in an ellipsis in
        # its cell (the sample page shows it whole) and the request id stays on the page.
        st.dataframe(worst_rows, hide_index=True, width="stretch", column_config={
            "open": w.link_column(), "score": st.column_config.NumberColumn("score", format="%.3f", width=55),
            "label": st.column_config.TextColumn("label", width=95),
            "model_version": st.column_config.TextColumn("version", width=65),
            "variant": st.column_config.TextColumn("arm", width=70),
            "timestamp": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm", width=125),
            "text": st.column_config.TextColumn("text", width=380),
            "request_id": st.column_config.TextColumn("request id", width=150)},
            column_order=["open", "score", "label", "model_version", "variant", "timestamp", "text", "request_id"])


if __name__ == "__main__":
    render()
