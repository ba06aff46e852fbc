"""On-call: request and error rates, p50/p95/p99 latency, traffic by model version, GPUs,
the alert stream. Chart points and the worst-bucket rows open those requests in Samples."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from genobs.dashboards import queries, widgets as w

ALERT_ROWS = 12        # newest alerts listed on the page
SPIKE_ERROR_PCT = 5.0   # a bucket failing this share of requests is called out at the top


def render() -> None:
    st.title("On-call")
    db = queries.db_path()
    counts = queries.table_counts(db)
    f = w.sidebar_filters(db)
    if w.no_samples(counts, f):
        return
    w.live(f, lambda: _body(f, counts))


def _body(f: w.Filters, counts: dict[str, int]) -> None:
    series = queries.traffic_series(f.db, f.scope, f.bucket_s)
    if len(series) == 0:
        w.empty_window()
        return
    series["link"] = [f.samples_link(range=w.bucket_range(b, f.bucket_s)) for b in series["bucket"]]
    series["failed_link"] = [f.samples_link(range=w.bucket_range(b, f.bucket_s), status=["error", "timeout"])
                             for b in series["bucket"]]
    peak = series.loc[series["error_pct"].idxmax()]
    st.caption(f"{w.fmt_time(f.window.start)} → {w.fmt_time(f.window.end)} UTC · buckets of "
               f"{w.bucket_label(f.bucket_s)} · {int(series['requests'].sum()):,} requests")
    w.metric_row([
        ("Peak error rate", w.fmt(float(peak["error_pct"]), "%", 1),
         f"In the {w.bucket_label(f.bucket_s)} bucket at {w.fmt_time(peak['bucket'])} UTC."),
        ("Worst p95 latency", w.fmt(float(series["p95_ms"].max()), "ms", 0), "Highest bucket p95."),
        ("Median p50 latency", w.fmt(float(series["p50_ms"].median()), "ms", 0), "Median of the bucket p50s."),
        ("Failed requests", f"{int(series['failed'].sum()):,}", "status error or timeout."),
    ])

    if float(peak["error_pct"]) >= SPIKE_ERROR_PCT:
        st.error(f"**Error spike**: {float(peak['error_pct']):.1f}% of requests failed "
                 f"({int(peak['failed']):,} of {int(peak['requests']):,}) in the {w.bucket_label(f.bucket_s)} from "
                 f"{w.fmt_time(peak['bucket'])} UTC, p95 latency {w.fmt(peak['p95_ms'], 'ms', 0)}. "
                 f"[Open the failed requests ↗]({peak['failed_link']})")

    versions = queries.version_series(f.db, f.scope, f.bucket_s)
    gpu = queries.gpu_series(f.db, f.window.start, f.window.end, (), f.bucket_s)
    st.subheader("Traffic, errors, latency, GPUs")
    w.show_chart(_panel(f, series, versions, gpu))
    st.caption("One time axis for all rows: Request rate (requests / min), Error rate (% of requests failed), "
               "Latency p50 / p95 / p99 (ms, log scale), Traffic by model version (requests / min, stacked)"
               + (", GPU utilization (%: lowest GPU, mean, highest GPU)" if len(gpu) else "")
               + ". Click a bar to open that bucket's requests (top row) or failed requests (second row) in Samples.")
    _gpu_notes(gpu)

    st.subheader("Worst buckets")
    worst = queries.worst_buckets(f.db, f.scope, f.bucket_s)
    if len(worst):
        # A static Markdown table (5 rows, links kept), not the interactive grid: the grid's
        # code (about 0.5 MB of JavaScript) and its canvas cost the first paint more.
        st.markdown(w.markdown_table(
            ["service", f"bucket start (UTC, {w.bucket_label(f.bucket_s)})", "requests", "error rate (%)",
             "p95 latency (ms)", "failed requests"],
            [[r.service, w.fmt_time(r.bucket), f"{int(r.requests):,}", w.fmt(float(r.error_pct), "", 1),
              w.fmt(float(r.p95_ms), "", 0),
              w.md_link("open ↗", f.samples_link(range=w.bucket_range(r.bucket, f.bucket_s), service=r.service,
                                                 status=["error", "timeout"]))]
             for r in worst.itertuples()]))
    errors = queries.error_breakdown(f.db, f.scope)
    if len(errors):
        with st.expander("Non-ok requests by status and error type"):
            # A static table (at most 20 rows): the interactive grid costs the first paint more.
            st.table(errors, hide_index=True)

    st.subheader("Alert stream")
    _alerts(f, counts)


ROW_HEIGHT = 110   # px per row of the panel: five rows fit a laptop screen with the KPIs above


def _panel(f: w.Filters, series: pd.DataFrame, versions: pd.DataFrame, gpu: pd.DataFrame) -> alt.VConcatChart:
    """The page's time series as rows of ONE chart over a shared time axis: an incident lines
    up across rows, and the browser builds one Vega view instead of five (each view costs
    its own parse, dataflow and layout; bench/bench_dashboard.py). Every row is a single mark
    (no layers), so Streamlit fits the chart to the page width (autosize fit-x). Bars carry
    the links to Samples (one item per bucket); lines carry no per-point marks."""
    tip_time = alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M")
    # Full-width rows: about 8 time labels, not one per 60 px.
    x = alt.X("bucket:T", title="time (UTC)", axis=alt.Axis(format="%b %d %H:%M", tickCount=8, labelOverlap=True))
    legend = alt.Legend(orient="top", direction="horizontal", title=None)   # keeps every row's plot width equal

    def row(df: pd.DataFrame, title: str) -> alt.Chart:
        return alt.Chart(df, title=alt.TitleParams(title, anchor="start", fontSize=13)).properties(height=ROW_HEIGHT)

    requests = row(series[["bucket", "requests_per_min", "link"]], "Request rate").mark_bar(color="#1f77b4").encode(
        x=x, y=alt.Y("requests_per_min:Q", title="requests / min"), href="link:N",
        tooltip=[tip_time, alt.Tooltip("requests_per_min:Q", title="requests / min", format=",.2f")])
    errors = row(series[["bucket", "failed", "requests", "error_pct", "failed_link"]], "Error rate").mark_bar(
        color="#d62728").encode(
        x=x, y=alt.Y("error_pct:Q", title="error rate (%)"), href="failed_link:N",
        tooltip=[tip_time, alt.Tooltip("failed:Q", title="failed"), alt.Tooltip("requests:Q", title="requests"),
                 alt.Tooltip("error_pct:Q", title="error rate (%)", format=".2f")])
    lat = series.melt(id_vars=["bucket"], value_vars=["p50_ms", "p95_ms", "p99_ms"],
                      var_name="quantile", value_name="latency_ms")
    lat["quantile"] = lat["quantile"].str.replace("_ms", "")
    latency = row(lat, "Latency p50 / p95 / p99").mark_line().encode(
        x=x, y=alt.Y("latency_ms:Q", title="latency (ms)", scale=alt.Scale(type="log")),
        color=alt.Color("quantile:N", legend=legend, scale=alt.Scale(range=["#1f77b4", "#ff7f0e", "#d62728"])))
    versions = versions.assign(requests_per_min=versions["requests"] / (f.bucket_s / 60.0))
    traffic = row(versions, "Traffic by model version").mark_area().encode(
        x=x, y=alt.Y("requests_per_min:Q", title="requests / min", stack=True),
        color=alt.Color("version:N", legend=legend),
        tooltip=[tip_time, "version:N", alt.Tooltip("requests:Q", title="requests")])
    rows: list[alt.Chart] = [requests, errors, latency, traffic]
    if len(gpu):
        # The fleet as three lines (lowest GPU, mean, highest GPU), not a line per GPU: a glance
        # at load at a fixed browser cost however many GPUs report; the GPUs page draws each.
        fleet = gpu.groupby("bucket", as_index=False)["utilization_pct"].agg(["min", "mean", "max"])
        fleet = fleet.rename(columns={"min": "lowest GPU", "mean": "mean", "max": "highest GPU"}).melt(
            id_vars=["bucket"], var_name="series", value_name="utilization_pct")
        n_gpus = gpu["gpu"].nunique()
        rows.append(row(fleet, f"GPU utilization ({n_gpus} GPUs)").mark_line().encode(
            x=x, y=alt.Y("utilization_pct:Q", title="GPU utilization (%)", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("series:N", legend=legend, sort=["lowest GPU", "mean", "highest GPU"],
                            scale=alt.Scale(domain=["lowest GPU", "mean", "highest GPU"],
                                            range=["#98df8a", "#2ca02c", "#98df8a"])),
            strokeDash=alt.StrokeDash("series:N", legend=None, sort=["lowest GPU", "mean", "highest GPU"],
                                      scale=alt.Scale(domain=["lowest GPU", "mean", "highest GPU"],
                                                      range=[[4, 2], [1, 0], [4, 2]]))))
    return alt.vconcat(*rows, spacing=14).resolve_scale(x="shared", y="independent", color="independent")


def _gpu_notes(gpu: pd.DataFrame) -> None:
    if len(gpu) == 0:
        st.info("No GPU telemetry in range. Collect it with `genobs collect-gpu` (NVML, a DCGM exporter, or "
                "nvidia-smi CSV) or let `genobs serve` poll it (server.poll_nvml / server.dcgm_urls).")
        return
    throttled = gpu[gpu["throttled"] > 0]
    if len(throttled):
        st.warning("GPU throttling: " + ", ".join(
            f"{g} ({int(n)} readings)" for g, n in throttled.groupby("gpu")["throttled"].sum().items())
            + ". See the GPUs page.")


def _alerts(f: w.Filters, counts: dict[str, int]) -> None:
    if counts.get("alerts", 0) == 0:
        st.info("No alerts recorded: the SLO engine writes them. Define SLOs in `slo.yaml` and run "
                "`genobs serve` or `genobs slo check`.")
        return
    alerts = queries.alert_stream(f.db, f.window.start, f.window.end)
    if len(alerts) == 0:
        st.success("No alerts in this time range.")
        return
    # The newest ones, what on-call reads first, as a static table (no grid code to load);
    # the SLOs page has the full history.
    shown = alerts.head(ALERT_ROWS)
    st.markdown(w.markdown_table(
        ["started (UTC)", "ended (UTC)", "state", "severity", "SLO", "service", "burn rate (×)"],
        [[w.fmt_time(r.starts_at), w.fmt_time(r.ends_at), r.state, r.severity, r.slo, r.service or "—",
          w.fmt(r.burn_rate_long, "", 1)] for r in shown.itertuples()]))
    if len(alerts) > ALERT_ROWS:
        st.caption(f"The {ALERT_ROWS} newest of {len(alerts)} alerts in range; the SLOs page lists them all.")


if __name__ == "__main__":
    render()
