"""Overview (executive): availability, p95 latency, hallucination rate, cost per 1k requests,
error budget per SLO, firing alerts."""

from __future__ import annotations

import altair as alt
import streamlit as st

from genobs.dashboards import queries, widgets as w


def render() -> None:
    st.title("Overview")
    db = queries.db_path()
    counts = queries.table_counts(db)
    f = w.sidebar_filters(db)
    if w.no_samples(counts, f):
        return
    w.live(f, lambda: _body(f, counts))


def _body(f: w.Filters, counts: dict[str, int]) -> None:
    k = queries.overview_kpis(f.db, f.scope)
    st.caption(f"{w.fmt_time(f.window.start)} → {w.fmt_time(f.window.end)} UTC · "
               f"{k['requests']:,} requests" + (f" · services: {', '.join(f.services)}" if f.services else "")
               + (f" · models: {', '.join(f.models)}" if f.models else ""))
    if k["requests"] == 0:
        w.empty_window()
        return
    hall = (w.fmt(k["hallucination_rate_pct"], "%") if k["scored"]
            else "not scored")
    w.metric_row([
        ("Availability", w.fmt(k["availability_pct"], "%", 2),
         f"Requests not failed (status error/timeout): {k['requests'] - k['failed']:,} of {k['requests']:,}."),
        ("p95 latency", w.fmt(k["p95_latency_ms"], "ms", 0), "95th percentile of latency_ms over all requests."),
        ("Hallucination rate", hall,
         f"Share of scored answers labelled hallucinated: {k['hallucinated']:,} of {k['scored']:,}."
         if k["scored"] else "No hallucination scores in range: run `genobs evaluate hallucination`."),
        ("Cost per 1k requests", w.fmt(k["cost_per_1k_usd"], "USD", 2),
         f"Total {w.fmt(k['cost_usd'], 'USD', 2)} over {k['requests']:,} requests."),
        ("Failed requests", f"{k['failed']:,}", "status error or timeout."),
    ])

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Requests and errors")
        series = queries.traffic_series(f.db, f.scope, f.bucket_s)
        if len(series):
            series["link"] = [f.samples_link(range=w.bucket_range(b, f.bucket_s), status=["error", "timeout"])
                              for b in series["bucket"]]
            # The links and the tooltip ride on the bars (one item per bucket); the error line
            # has no point overlay: Streamlit's Vega interprets every mark's encoders per datum,
            # so each extra mark per bucket costs first-paint time in the browser.
            base = alt.Chart(series).encode(x=w.time_axis())
            bars = base.mark_bar(opacity=0.35).encode(
                y=alt.Y("requests_per_min:Q", title=f"requests / min (per {w.bucket_label(f.bucket_s)})"),
                href="link:N",
                tooltip=[alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                         alt.Tooltip("requests:Q", title="requests"), alt.Tooltip("failed:Q", title="failed"),
                         alt.Tooltip("error_pct:Q", title="error rate (%)", format=".2f")])
            err = base.mark_line(color="#d62728").encode(y=alt.Y("error_pct:Q", title="error rate (%)"))
            w.show_chart(alt.layer(bars, err).resolve_scale(y="independent").properties(height=260))
            st.caption("Bars: requests per minute; red line: error rate. Click a bar to open that bucket's "
                       "failed requests in Samples.")
    with right:
        st.subheader("Error budget per SLO")
        _budgets(f)
        st.subheader("Firing alerts")
        alerts = queries.firing_alerts(f.db)
        if counts.get("alerts", 0) == 0:
            st.info("No alerts recorded. Alerts come from the SLO engine: define SLOs in `slo.yaml` and run "
                    "`genobs serve` (evaluates them every 30 s) or `genobs slo check`.")
        elif len(alerts) == 0:
            st.success("No alert is firing.")
        else:
            st.dataframe(alerts[["slo", "severity", "starts_at", "burn_rate_long"]], hide_index=True,
                         width="stretch", column_config={
                             "starts_at": st.column_config.DatetimeColumn("since (UTC)", format="YYYY-MM-DD HH:mm"),
                             "burn_rate_long": st.column_config.NumberColumn("burn rate (×)", format="%.1f")})


def _budgets(f: w.Filters) -> None:
    status = queries.slo_status(f.db)
    if status.empty:
        st.info("No SLO status in this database: the SLO engine has not written any. "
                "Define SLOs in `slo.yaml` (see docs/slo.md) and run `genobs serve` or `genobs slo check`.")
        return
    shown = status[["slo", "objective", "window", "budget_remaining"]].copy()
    shown["budget_remaining"] = 100 * shown["budget_remaining"]
    # Narrow columns with short titles: the table fits its half of the page, no figure cut off.
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "slo": st.column_config.TextColumn("SLO", width=130),
        "objective": st.column_config.NumberColumn("objective", format="%.2f%%", width=75),
        "window": st.column_config.TextColumn("window", width=60),
        "budget_remaining": st.column_config.ProgressColumn("budget left", format="%.0f%%",
                                                            min_value=0, max_value=100, width=130)})
    st.caption(f"As of the SLO engine's last evaluation ({w.fmt_time(status['at'].max())} UTC). See SLOs.")


if __name__ == "__main__":
    render()
