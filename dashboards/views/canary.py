"""Canary: baseline vs canary distributions per metric; the stored verdict and why."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

from genobs.dashboards import queries, widgets as w

SCORE_METRICS = {queries.HALLUCINATION_METRIC: "hallucination score (0-1)", queries.CLIP_METRIC: "CLIP score (0-100)"}


def render() -> None:
    st.title("Canary")
    db = queries.db_path()
    counts = queries.table_counts(db)
    f = w.sidebar_filters(db)
    if w.no_samples(counts, f):
        return
    arms = queries.arms(db, f.scope)
    if len(arms) < 2:
        st.info("**No canary in this time range**: the samples have "
                + (f"one deployment arm (`variant` = {arms['variant'].iloc[0]!r})" if len(arms) else "no arms")
                + ". Send the canary's samples with `variant: canary` and the baseline's with `variant: baseline` "
                "(or compare two `model_version`s), then judge them with `genobs canary`.")
        return
    variants = list(arms["variant"])
    base_default = "baseline" if "baseline" in variants else variants[0]
    can_default = "canary" if "canary" in variants else next(v for v in variants if v != base_default)
    baseline = st.sidebar.selectbox("Baseline arm", variants, index=variants.index(base_default), key="_w_baseline")
    canary = st.sidebar.selectbox("Canary arm", variants, index=variants.index(can_default), key="_w_canary")
    w.live(f, lambda: _body(f, counts, arms, baseline, canary))


def _body(f: w.Filters, counts: dict[str, int], arms: pd.DataFrame, baseline: str, canary: str) -> None:
    st.subheader("Verdict")
    _verdict(f, counts, baseline, canary)
    st.subheader("Arms")
    shown = arms[arms["variant"].isin([baseline, canary])]
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "error_pct": st.column_config.NumberColumn("error rate (%)", format="%.2f"),
        "first": st.column_config.DatetimeColumn("first (UTC)", format="YYYY-MM-DD HH:mm"),
        "last": st.column_config.DatetimeColumn("last (UTC)", format="YYYY-MM-DD HH:mm")})

    st.subheader("Baseline vs canary, per metric")
    st.caption(f"Distributions of a random sample of at most {queries.DISTRIBUTION_SAMPLE:,} values per arm. "
               "Change = canary median / baseline median − 1 (descriptive; the verdict above is the judge's).")
    metrics = dict(queries.CANARY_METRICS)
    available = set(queries.score_metrics(f.db))
    metrics.update({m: t for m, t in SCORE_METRICS.items() if m in available})
    rows = []
    frames = {}
    for metric, title in metrics.items():
        parts = []
        for arm in (baseline, canary):
            values = queries.arm_values(f.db, f.scope, arm, metric)
            values["arm"] = arm
            parts.append(values)
        df = pd.concat(parts, ignore_index=True)
        if df.empty:
            continue
        frames[metric] = df
        b = df[df["arm"] == baseline]["value"]
        c = df[df["arm"] == canary]["value"]
        change = (c.median() / b.median() - 1) * 100 if len(b) and len(c) and b.median() else None
        if metric == queries.HALLUCINATION_METRIC and len(b) and len(c):
            change = (c.mean() / b.mean() - 1) * 100 if b.mean() else None
        rows.append({"metric": title, "baseline n": len(b), "canary n": len(c),
                     "baseline median": b.median() if len(b) else None, "canary median": c.median() if len(c) else None,
                     "baseline mean": b.mean() if len(b) else None, "canary mean": c.mean() if len(c) else None,
                     "change (%)": change})
    table = pd.DataFrame(rows)
    if len(table):
        big = table[table["change (%)"].abs() >= 50] if "change (%)" in table else table.iloc[0:0]
        for _, r in big.iterrows():
            change = float(r["change (%)"])
            st.error(f"**{r['metric']}**: canary {'+' if change > 0 else ''}{change:.0f}% vs baseline "
                     f"(mean {r['canary mean']:.3g} vs {r['baseline mean']:.3g}).")
        st.dataframe(table, hide_index=True, width="stretch", column_config={
            c: st.column_config.NumberColumn(c, format="%d" if c.endswith(" n") else "%.3f")
            for c in table.columns if c != "metric"})
    if queries.HALLUCINATION_METRIC in frames:
        _hallucinated_share(f, baseline, canary)
    cols = st.columns(3)
    for i, (metric, df) in enumerate((m, d) for m, d in frames.items() if m not in SCORE_METRICS):
        with cols[i % 3]:
            title = metrics[metric]
            chart = alt.Chart(df).mark_boxplot(extent=1.5, size=40).encode(
                x=alt.X("arm:N", title="arm", sort=[baseline, canary]),
                y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
                color=alt.Color("arm:N", legend=None, sort=[baseline, canary],
                                scale=alt.Scale(range=["#1f77b4", w.CANARY_RED]))).properties(height=230)
            st.altair_chart(chart, width="stretch")
    st.markdown(f"[Canary samples with the worst hallucination scores ↗]"
                f"({f.samples_link(variant=canary, order='worst hallucination')})")


def _hallucinated_share(f: w.Filters, baseline: str, canary: str) -> None:
    """Share of each arm's scored answers labelled hallucinated (the score is near 0 or 1 for
    most answers, so a box plot would hide what a share shows)."""
    by = queries.score_by_version(f.db, f.scope, queries.HALLUCINATION_METRIC)
    by = by[by["variant"].isin([baseline, canary])].copy()
    if by.empty:
        return
    by["arm"] = by["variant"] + " (" + by["model_version"] + ")"
    chart = alt.Chart(by).mark_bar(size=60).encode(
        x=alt.X("arm:N", title="arm (model version)"),
        y=alt.Y("hallucinated_pct:Q", title="hallucinated (%)"),
        color=alt.Color("arm:N", legend=None, scale=w.version_colors(by["arm"])),
        tooltip=["arm:N", alt.Tooltip("scored:Q", title="scored answers"),
                 alt.Tooltip("hallucinated_pct:Q", title="hallucinated (%)", format=".1f")]).properties(height=230)
    left, right = st.columns([1, 2])
    with left:
        st.markdown("**Hallucinated answers per arm (%)**")
        st.altair_chart(chart, width="stretch")
    with right:
        st.markdown("**Hallucination score distribution (0-1)**")
        values = pd.concat([queries.arm_values(f.db, f.scope, arm, queries.HALLUCINATION_METRIC).assign(arm=arm)
                            for arm in (baseline, canary)], ignore_index=True)
        hist = alt.Chart(values).mark_bar(opacity=0.6).encode(
            x=alt.X("value:Q", bin=alt.Bin(maxbins=20), title="hallucination score (0-1)"),
            y=alt.Y("count():Q", title="answers (count)", stack=None),
            color=alt.Color("arm:N", title="arm", scale=w.version_colors(values["arm"]))).properties(height=230)
        st.altair_chart(hist, width="stretch")


def _verdict(f: w.Filters, counts: dict[str, int], baseline: str, canary: str) -> None:
    if counts.get("canary_verdicts", 0) == 0:
        st.info(f"**No canary verdict stored.** Judge this canary: `genobs canary --baseline {baseline} "
                f"--canary {canary} --window '{f.range_text}'` (the gate for CI/CD: exit 0 pass, 1 fail). "
                "Until then this page shows the arms' distributions only.")
        return
    verdicts = queries.canary_verdicts(f.db, f.window.start, f.window.end)
    if len(verdicts) == 0:
        st.info("No verdict for a window in this time range. Run `genobs canary` for it.")
        return
    latest = verdicts.iloc[0]
    text = f"**{str(latest['verdict']).upper()}** — score {w.fmt(latest['score'], '', 0)} · " \
           f"{latest['baseline']} vs {latest['canary']} · window {w.fmt_time(latest['window_start'])} → " \
           f"{w.fmt_time(latest['window_end'])} UTC · judged {w.fmt_time(latest['created_at'])} UTC"
    {"pass": st.success, "marginal": st.warning}.get(str(latest["verdict"]).lower(), st.error)(text)
    details = _json(latest["details"])
    if isinstance(details, dict) and details.get("reason"):
        st.markdown(f"**Why:** {details['reason']}")
    per_metric = details.get("metrics") if isinstance(details, dict) else None
    if isinstance(per_metric, list) and per_metric and isinstance(per_metric[0], dict):
        table = pd.DataFrame(per_metric)
        first = [c for c in VERDICT_COLUMNS if c in table.columns]
        rest = [c for c in table.columns if c not in first]
        full, table = table, table[first]
        # Narrow figures first, the long reason last with what width is left: the table fits
        # the page (a long reason ends in an ellipsis inside its cell, not past the page edge).
        st.dataframe(table.style.apply(_classification_colours, axis=1), hide_index=True, width="stretch",
                     column_config={
                         "name": st.column_config.TextColumn("metric", width=125),
                         "classification": st.column_config.TextColumn("class", width=70),
                         "critical": st.column_config.CheckboxColumn("critical", width=55),
                         "effect_size": st.column_config.NumberColumn("effect (ratio)", format="%.3f", width=80),
                         "p_value": st.column_config.NumberColumn("p-value", format="%.2g", width=65),
                         "n_baseline": st.column_config.NumberColumn("n baseline", width=75),
                         "n_canary": st.column_config.NumberColumn("n canary", width=70),
                         "mean_baseline": st.column_config.NumberColumn("mean baseline", format="%.4g", width=95),
                         "mean_canary": st.column_config.NumberColumn("mean canary", format="%.4g", width=90),
                         "reason": st.column_config.TextColumn("reason", width=280)})
        if rest:
            with st.expander(f"Every field the judge recorded per metric ({len(full.columns)} columns; scroll sideways)"):
                st.dataframe(full[first + rest], hide_index=True, width="stretch")
    elif isinstance(per_metric, dict):
        st.dataframe(pd.DataFrame([{"metric": k, **(v if isinstance(v, dict) else {"value": v})}
                                   for k, v in per_metric.items()]), hide_index=True, width="stretch")
    elif details:
        st.json(details, expanded=False)
    if len(verdicts) > 1:
        with st.expander(f"Earlier verdicts ({len(verdicts) - 1})"):
            st.dataframe(verdicts.drop(columns=["details"]), hide_index=True, width="stretch")


VERDICT_COLUMNS = ("name", "classification", "critical", "effect_size", "p_value", "n_baseline",
                   "n_canary", "mean_baseline", "mean_canary", "reason")


def _classification_colours(row: pd.Series) -> list[str]:
    """Red for a metric the judge did not pass (High/Low), grey for no data."""
    label = str(row.get("classification", ""))
    colour = {"High": "background-color: #fde0e0", "Low": "background-color: #fde0e0",
              "NoData": "background-color: #eeeeee"}.get(label, "")
    return [colour] * len(row)


def _json(text: object) -> object:
    try:
        return json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}


if __name__ == "__main__":
    render()
