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

    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Request rate")
        w.show_chart(w.line_chart(series, "requests_per_min", "requests / min", href="link"))
    with c2:
        st.subheader("Error rate")
        chart = alt.Chart(series).mark_area(color="#d62728", opacity=0.6, line=True).encode(
            x=w.time_axis(), y=alt.Y("error_pct:Q", title="error rate (%)"),
            href="failed_link:N",
            tooltip=[alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                     alt.Tooltip("failed:Q", title="failed"), alt.Tooltip("requests:Q", title="requests"),
                     alt.Tooltip("error_pct:Q", title="error rate (%)", format=".2f")]).properties(height=220)
        w.show_chart(chart)

    c3, c4 = st.columns(2)
    with c3:
        st.subheader("Latency p50 / p95 / p99")
        lat = series.melt(id_vars=["bucket", "link"], value_vars=["p50_ms", "p95_ms", "p99_ms"],
                          var_name="quantile", value_name="latency_ms")
        lat["quantile"] = lat["quantile"].str.replace("_ms", "")
        w.show_chart(w.line_chart(lat, "latency_ms", "latency (ms)", color="quantile", href="link",
                                  y_scale=alt.Scale(type="log")))
    with c4:
        st.subheader("Traffic by model version")
        versions = queries.version_series(f.db, f.scope, f.bucket_s)
        versions["requests_per_min"] = versions["requests"] / (f.bucket_s / 60.0)
        chart = alt.Chart(versions).mark_area().encode(
            x=w.time_axis(), y=alt.Y("requests_per_min:Q", title="requests / min", stack=True),
            color=alt.Color("version:N", title="model version"),
            tooltip=[alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"), "version:N",
                     alt.Tooltip("requests:Q", title="requests")]).properties(height=220)
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
            st.dataframe(errors, hide_index=True, width="stretch")

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
    w.show_chart(w.line_chart(gpu, "utilization_pct", "GPU utilization (%)", color="gpu", color_title="GPU",
                              y_scale=alt.Scale(domain=[0, 100])))
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
    st.dataframe(alerts, hide_index=True, width="stretch")


if __name__ == "__main__":
    render()
