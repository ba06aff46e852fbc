"""GPUs: utilization, memory, power and temperature per GPU, throttle episodes marked."""

from __future__ import annotations

import altair as alt
import streamlit as st

from genobs.dashboards import queries, widgets as w

PANELS = (
    ("utilization_pct", "utilization (%)", alt.Scale(domain=[0, 100])),
    ("memory_used_gib", "memory used (GiB)", alt.Undefined),
    ("power_w", "power (W)", alt.Undefined),
    ("temperature_c", "temperature (°C)", alt.Undefined),
    ("sm_clock_mhz", "SM clock (MHz)", alt.Undefined),
)


def render() -> None:
    st.title("GPUs")
    db = queries.db_path()
    counts = queries.table_counts(db)
    f = w.sidebar_filters(db, with_models=False)
    if counts.get("gpu_telemetry", 0) == 0:
        st.info("**No GPU telemetry in this database.** Collect it: `genobs collect-gpu` (NVML on this host), "
                "`genobs collect-gpu --dcgm-url http://HOST:9400/metrics`, `genobs collect-gpu --nvidia-smi-csv FILE`, "
                "or `POST /v1/gpu` to a running `genobs serve`.")
        return
    hosts = queries.gpu_hosts(db, f.window.start, f.window.end)
    chosen = st.sidebar.multiselect("GPU host", hosts, placeholder="all hosts", key="_w_gpu_hosts")
    w.live(f, lambda: _body(f, tuple(chosen)))


def _body(f: w.Filters, hosts: tuple[str, ...]) -> None:
    gpu = queries.gpu_series(f.db, f.window.start, f.window.end, hosts, f.bucket_s)
    if len(gpu) == 0:
        w.empty_window("GPU readings")
        return
    episodes = queries.throttle_episodes(f.db, f.window.start, f.window.end)
    if hosts and len(episodes):
        episodes = episodes[episodes["gpu"].str.split(" / ").str[0].isin(hosts)]
    summary = gpu.groupby("gpu").agg(utilization_pct=("utilization_pct", "mean"),
                                     max_temperature_c=("temperature_c", "max"),
                                     min_sm_clock_mhz=("sm_clock_mhz", "min"),
                                     throttled_readings=("throttled", "sum")).reset_index()
    st.caption(f"{w.fmt_time(f.window.start)} → {w.fmt_time(f.window.end)} UTC · {len(summary)} GPUs · "
               f"buckets of {w.bucket_label(f.bucket_s)}")
    if len(episodes):
        st.error("**Throttling** — " + "; ".join(
            f"{r.gpu}: {w.fmt_time(r.start)} → {w.fmt_time(r.end)} UTC, up to {r.max_temperature_c:.0f} °C, "
            f"SM clock down to {r.min_sm_clock_mhz:.0f} MHz ({r.reasons})" for r in episodes.itertuples()))
    else:
        st.success("No throttling reported in this time range.")
    st.dataframe(summary, hide_index=True, width="stretch", column_config={
        "utilization_pct": st.column_config.NumberColumn("mean utilization (%)", format="%.1f"),
        "max_temperature_c": st.column_config.NumberColumn("max temperature (°C)", format="%.0f"),
        "min_sm_clock_mhz": st.column_config.NumberColumn("min SM clock (MHz)", format="%.0f"),
        "throttled_readings": st.column_config.NumberColumn("throttled readings")})

    shade = None
    if len(episodes):
        bands = episodes.rename(columns={"start": "band_start", "end": "band_end"})
        shade = alt.Chart(bands).mark_rect(color="#d62728", opacity=0.18).encode(
            x="band_start:T", x2="band_end:T",
            tooltip=[alt.Tooltip("gpu:N", title="throttled GPU"), alt.Tooltip("reasons:N", title="reasons"),
                     alt.Tooltip("band_start:T", title="from (UTC)", format="%Y-%m-%d %H:%M"),
                     alt.Tooltip("band_end:T", title="to (UTC)", format="%Y-%m-%d %H:%M")])
    cols = st.columns(2)
    for i, (column, title, scale) in enumerate(PANELS):
        with cols[i % 2]:
            st.subheader(title[0].upper() + title[1:])
            w.show_chart(w.line_chart(gpu, column, title, color="gpu", color_title="GPU", marks=shade,
                                      y_scale=scale))
    if len(episodes):
        st.subheader("Throttle episodes")
        st.dataframe(episodes, hide_index=True, width="stretch", column_config={
            "start": st.column_config.DatetimeColumn("from (UTC)", format="YYYY-MM-DD HH:mm"),
            "end": st.column_config.DatetimeColumn("to (UTC)", format="YYYY-MM-DD HH:mm"),
            "max_temperature_c": st.column_config.NumberColumn("max temperature (°C)", format="%.0f"),
            "min_sm_clock_mhz": st.column_config.NumberColumn("min SM clock (MHz)", format="%.0f")})


if __name__ == "__main__":
    render()
