"""On-call: request and error rates, p50/p95/p99 latency, traffic by model version, GPUs,
the alert stream. Chart points and the worst-bucket rows open those requests in Samples."""

from __future__ import annotations

import altair as alt
import streamlit as st

from genobs.dashboards import queries, widgets as w

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

    # Bars, not lines with point overlays or areas with links: each bar is one clickable item
    # (a link per bucket), and Streamlit's Vega runs its encoders through an interpreter, so
    # every extra mark per datum costs browser time on first paint (bench/bench_dashboard.py;
    # an area with a link costs about 10 times a bar chart there).
    tip_time = alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M")
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Request rate")
        # Each chart gets only its columns: every column is sent and parsed per chart.
        chart = alt.Chart(series[["bucket", "requests_per_min", "link"]]).mark_bar(color="#1f77b4").encode(
            x=w.time_axis(), y=alt.Y("requests_per_min:Q", title="requests / min"), href="link:N",
            tooltip=[tip_time, alt.Tooltip("requests_per_min:Q", title="requests / min", format=",.2f")]
        ).properties(height=220)
        w.show_chart(chart)
    with c2:
        st.subheader("Error rate")
        chart = alt.Chart(series[["bucket", "failed", "requests", "error_pct", "failed_link"]]).mark_bar(
            color="#d62728").encode(
            x=w.time_axis(), y=alt.Y("error_pct:Q", title="error rate (%)"), href="failed_link:N",
            tooltip=[tip_time, alt.Tooltip("failed:Q", title="failed"), alt.Tooltip("requests:Q", title="requests"),
                     alt.Tooltip("error_pct:Q", title="error rate (%)", format=".2f")]).properties(height=220)
        w.show_chart(chart)
    st.caption("Click a bar to open that bucket's requests (left) or failed requests (right) in Samples.")

    c3, c4 = st.columns(2)
    with c3:
        st.subheader("Latency p50 / p95 / p99")
        lat = series.melt(id_vars=["bucket"], value_vars=["p50_ms", "p95_ms", "p99_ms"],
                          var_name="quantile", value_name="latency_ms")
        lat["quantile"] = lat["quantile"].str.replace("_ms", "")
        w.show_chart(w.line_chart(lat, "latency_ms", "latency (ms)", color="quantile",
                                  y_scale=alt.Scale(type="log")))
    with c4:
        st.subheader("Traffic by model version")
        versions = queries.version_series(f.db, f.scope, f.bucket_s)
        versions["requests_per_min"] = versions["requests"] / (f.bucket_s / 60.0)
        chart = alt.Chart(versions).mark_area().encode(
            x=w.time_axis(), y=alt.Y("requests_per_min:Q", title="requests / min", stack=True),
            color=alt.Color("version:N", title="model version"),
            tooltip=[tip_time, "version:N", alt.Tooltip("requests:Q", title="requests")]).properties(height=220)
        w.show_chart(chart)

    st.subheader("Worst buckets")
    worst = queries.worst_buckets(f.db, f.scope, f.bucket_s)
    if len(worst):
        worst["samples"] = [f.samples_link(range=w.bucket_range(b, f.bucket_s), service=s,
                                           status=["error", "timeout"]) for b, s in zip(worst["bucket"], worst["service"])]
        st.dataframe(worst, hide_index=True, width="stretch", column_config={
            "bucket": st.column_config.DatetimeColumn(f"bucket start (UTC, {w.bucket_label(f.bucket_s)})",
                                                      format="YYYY-MM-DD HH:mm"),
            "error_pct": st.column_config.NumberColumn("error rate (%)", format="%.1f"),
            "p95_ms": st.column_config.NumberColumn("p95 latency (ms)", format="%.0f"),
            "samples": w.link_column("failed requests")})
    errors = queries.error_breakdown(f.db, f.scope)
    if len(errors):
        with st.expander("Non-ok requests by status and error type"):
            # A static table (at most 20 rows): the interactive grid costs the first paint more.
            st.table(errors, hide_index=True)

    c5, c6 = st.columns(2)
    with c5:
        st.subheader("GPUs")
        _gpus(f)
    with c6:
        st.subheader("Alert stream")
        _alerts(f, counts)


def _gpus(f: w.Filters) -> None:
    gpu = queries.gpu_series(f.db, f.window.start, f.window.end, (), f.bucket_s)
    if len(gpu) == 0:
        st.info("No GPU telemetry in range. Collect it with `genobs collect-gpu` (NVML, a DCGM exporter, or "
                "nvidia-smi CSV) or let `genobs serve` poll it (server.poll_nvml / server.dcgm_urls).")
        return
    # The fleet as one band (lowest to highest GPU) and its mean, not a line per GPU: a glance
    # at load for on-call, at a fixed browser cost however many GPUs report; the GPUs page
    # draws each GPU.
    fleet = gpu.groupby("bucket", as_index=False)["utilization_pct"].agg(["min", "mean", "max"])
    n_gpus = gpu["gpu"].nunique()
    y = alt.Y("min:Q", title="GPU utilization (%)", scale=alt.Scale(domain=[0, 100]))
    band = alt.Chart(fleet).mark_area(opacity=0.3, color="#2ca02c").encode(x=w.time_axis(), y=y, y2="max:Q")
    mean = alt.Chart(fleet).mark_line(color="#2ca02c").encode(
        x=w.time_axis(), y=alt.Y("mean:Q", title="GPU utilization (%)"),
        tooltip=[alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                 alt.Tooltip("mean:Q", title="mean (%)", format=".0f"), alt.Tooltip("min:Q", title="lowest GPU (%)", format=".0f"),
                 alt.Tooltip("max:Q", title="highest GPU (%)", format=".0f")])
    w.show_chart(alt.layer(band, mean).properties(height=220))
    st.caption(f"Mean utilization of {n_gpus} GPU(s) (line) and the range from the lowest to the highest "
               "GPU (band). Per-GPU charts: the GPUs page.")
    throttled = gpu[gpu["throttled"] > 0]
    if len(throttled):
        st.warning("Throttling: " + ", ".join(
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
    # What on-call reads first, in columns that fit half the page; the SLOs page has the rest.
    st.dataframe(alerts[["starts_at", "state", "severity", "slo", "burn_rate_long"]], hide_index=True,
                 width="stretch", column_config={
                     "starts_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm"),
                     "burn_rate_long": st.column_config.NumberColumn("burn rate (×)", format="%.1f")})


if __name__ == "__main__":
    render()
