"""SLOs: budget burn-down, burn rates with the alert thresholds, alert history, silences.

The SLO engine (genobs.slo) writes alerts, notifications and silences; its budgets and burn
rates come from its own read models. Where those are absent the page says what to run."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from genobs.dashboards import queries, widgets as w
from genobs.times import TimeParseError, parse_duration


def render() -> None:
    st.title("SLOs")
    db = queries.db_path()
    counts = queries.table_counts(db)
    f = w.sidebar_filters(db, with_models=False)
    w.live(f, lambda: _body(f, counts))


PAGE_FACTORS = {"1h": 14.4, "6h": 6.0}      # SRE Workbook multiwindow thresholds for a 30-day window
TICKET_FACTORS = {"1d": 3.0, "3d": 1.0}


def _body(f: w.Filters, counts: dict[str, int]) -> None:
    st.subheader("Error budgets and burn rates")
    status = queries.slo_status(f.db)
    if status.empty:
        st.info("**No SLO status in this database.** The budget burn-down and burn-rate charts need the SLO "
                "engine's evaluations: define SLOs in `slo.yaml` (name, service, objective, window, sli), then "
                "run `genobs serve` (evaluates every 30 s) or `genobs slo check --db PATH`. No numbers are shown "
                "until it has written them.")
    else:
        _status_table(status)
        names = list(status["slo"])
        chosen = st.selectbox("SLO", names, key="_w_slo")
        _burn_charts(f, status[status["slo"] == chosen].iloc[0])

    st.subheader("Alert history")
    if counts.get("alerts", 0) == 0:
        st.info("No alerts recorded yet (the SLO engine writes them when a burn-rate condition holds).")
    else:
        alerts = queries.alert_stream(f.db, f.window.start, f.window.end)
        if len(alerts) == 0:
            st.success("No alerts in this time range.")
        else:
            timeline = alerts.copy()
            timeline["until"] = timeline["ends_at"].fillna(f.window.end)
            chart = alt.Chart(timeline).mark_bar(height=14).encode(
                x=alt.X("starts_at:T", title="time (UTC)"), x2="until:T",
                y=alt.Y("slo:N", title="SLO"),
                color=alt.Color("severity:N", title="severity",
                                scale=alt.Scale(domain=["page", "ticket"], range=["#d62728", "#ff7f0e"])),
                tooltip=["slo:N", "severity:N", "state:N",
                         alt.Tooltip("starts_at:T", title="from (UTC)", format="%Y-%m-%d %H:%M"),
                         alt.Tooltip("until:T", title="to (UTC)", format="%Y-%m-%d %H:%M"),
                         alt.Tooltip("burn_rate_long:Q", title="burn rate (long window, ×budget)", format=".1f"),
                         alt.Tooltip("burn_rate_short:Q", title="burn rate (short window, ×budget)", format=".1f")]
            ).properties(height=max(80, 28 * timeline["slo"].nunique()))
            st.altair_chart(chart, width="stretch")
            st.dataframe(alerts, hide_index=True, width="stretch", column_config={
                "burn_rate_long": st.column_config.NumberColumn("burn rate long (×)", format="%.1f"),
                "burn_rate_short": st.column_config.NumberColumn("burn rate short (×)", format="%.1f")})

    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Silences")
        if counts.get("silences", 0) == 0:
            st.info("No silences. Add a maintenance window with `genobs silence`.")
        else:
            st.dataframe(queries.silences(f.db), hide_index=True, width="stretch")
    with c2:
        st.subheader("Notification outbox")
        if counts.get("notifications", 0) == 0:
            st.info("No notifications sent. Receivers are configured under `notifiers:` in genobs.yaml.")
        else:
            out = queries.notification_outbox(f.db, f.window.start, f.window.end)
            if len(out) == 0:
                st.info("No notifications in this time range.")
            else:
                st.dataframe(out, hide_index=True, width="stretch")


def _status_table(status: pd.DataFrame) -> None:
    shown = status.copy()
    shown["budget_remaining_pct"] = 100 * shown["budget_remaining"]
    shown["error_ratio_pct"] = 100 * shown["error_ratio"]
    spent = shown[shown["budget_remaining"] <= 0]
    if len(spent):
        st.error("**Error budget spent**: " + ", ".join(
            f"{r.slo} ({r.budget_remaining_pct:.1f}%)" for r in spent.itertuples()))
    st.caption(f"As of the engine's last evaluation ({w.fmt_time(shown['at'].max())} UTC of data time); "
               "remaining = 1 − (bad events / allowed bad events) over each SLO's window.")
    st.dataframe(shown[["slo", "service", "sli", "objective", "window", "total", "error_ratio_pct",
                        "budget_remaining_pct"]], hide_index=True, width="stretch", column_config={
        "objective": st.column_config.NumberColumn("objective (%)", format="%.2f"),
        "total": st.column_config.NumberColumn("events in window"),
        "error_ratio_pct": st.column_config.NumberColumn("bad events (%)", format="%.3f"),
        "budget_remaining_pct": st.column_config.ProgressColumn("budget remaining (%)", format="%.0f%%",
                                                                min_value=0, max_value=100)})


def _burn_charts(f: w.Filters, row: pd.Series) -> None:
    try:
        window_s = int(parse_duration(str(row["window"])).total_seconds())
    except (TimeParseError, ValueError):
        st.warning(f"SLO window {row['window']!r} is not a duration; no charts.")
        return
    series = queries.slo_series_for(f.db, row["service"], str(row["sli"]))
    if len(series) != 1:
        st.info(f"Burn-down not drawn: {len(series)} rollup series match {row['service']} / {row['sli']} "
                "(the engine's status does not name its series).")
        return
    burn = queries.slo_burn(f.db, series[0], f.window.start, f.window.end, window_s)
    if burn.empty:
        w.empty_window("SLO rollups")
        return
    budget = 1 - float(row["objective"]) / 100
    scale = window_s / (30 * 86400)      # thresholds scale with the SLO window (DESIGN §6)
    burn["budget_remaining_pct"] = 100 * (1 - (burn["bad_w"] / burn["total_w"]) / budget)
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Budget burn-down** — {row['slo']} ({row['objective']}% over {row['window']})")
        chart = alt.Chart(burn).mark_line(color="#1f77b4").encode(
            x=alt.X("hour:T", title="time (UTC)"),
            y=alt.Y("budget_remaining_pct:Q", title=f"error budget remaining (%, {row['window']} window)"),
            tooltip=[alt.Tooltip("hour:T", format="%Y-%m-%d %H:%M", title="hour (UTC)"),
                     alt.Tooltip("budget_remaining_pct:Q", format=".1f", title="remaining (%)")])
        zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#d62728", strokeDash=[4, 4]).encode(y="y:Q")
        st.altair_chart(alt.layer(chart, zero).properties(height=260), width="stretch")
    with right:
        st.markdown("**Burn rates** (dashed: alert thresholds)")
        long = []
        for key in queries.BURN_WINDOWS_S:
            part = burn[["hour"]].copy()
            part["window"] = key
            part["burn_rate"] = (burn[f"bad_{key}"] / burn[f"total_{key}"].where(burn[f"total_{key}"] > 0)) / budget
            long.append(part)
        rates = pd.concat(long, ignore_index=True).dropna()
        thresholds = pd.DataFrame(
            [{"window": k, "threshold": v * scale, "severity": "page"} for k, v in PAGE_FACTORS.items()]
            + [{"window": k, "threshold": v * scale, "severity": "ticket"} for k, v in TICKET_FACTORS.items()])
        color = alt.Color("window:N", title="burn-rate window", sort=list(queries.BURN_WINDOWS_S))
        lines = alt.Chart(rates).mark_line().encode(
            x=alt.X("hour:T", title="time (UTC)"),
            y=alt.Y("burn_rate:Q", title="burn rate (× budget rate)", scale=alt.Scale(type="symlog")),
            color=color, tooltip=["window:N", alt.Tooltip("hour:T", format="%Y-%m-%d %H:%M"),
                                  alt.Tooltip("burn_rate:Q", format=".2f")])
        rules = alt.Chart(thresholds).mark_rule(strokeDash=[6, 4]).encode(
            y="threshold:Q", color=color, tooltip=["severity:N", "window:N", alt.Tooltip("threshold:Q", format=".2f")])
        st.altair_chart(alt.layer(lines, rules).properties(height=260), width="stretch")
    st.caption(f"Hourly from the engine's rollups (series {series[0]}). Page: {PAGE_FACTORS['1h'] * scale:.2f}× "
               f"over 1h (and 5m), {PAGE_FACTORS['6h'] * scale:.2f}× over 6h (and 30m); ticket: "
               f"{TICKET_FACTORS['1d'] * scale:.2f}× over 1d, {TICKET_FACTORS['3d'] * scale:.2f}× over 3d — the "
               f"SRE Workbook's factors × {row['window']}/30d.")


if __name__ == "__main__":
    render()
