"""SLOs: budget burn-down, burn rates with the alert thresholds, alert history, silences.

The SLO engine (genobs.slo) writes alerts, notifications and silences; its budgets and burn
rates come from its own read models. Where those are absent the page says what to run."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from genobs.dashboards import queries, widgets as w


def render() -> None:
    st.title("SLOs")
    db = queries.db_path()
    counts = queries.table_counts(db)
    f = w.sidebar_filters(db, with_models=False)
    w.live(f, lambda: _body(f, counts))


def _body(f: w.Filters, counts: dict[str, int]) -> None:
    st.subheader("Error budgets and burn rates")
    tables = queries.slo_read_models(f.db)
    if not tables:
        st.info("**No SLO status in this database.** The budget burn-down and burn-rate charts need the SLO "
                "engine's evaluations: define SLOs in `slo.yaml` (name, service, objective, window, sli), then "
                "run `genobs serve` (evaluates every 30 s) or `genobs slo check --db PATH`. No numbers are shown "
                "until it has written them.")
    else:
        st.caption("SLO engine tables present: " + ", ".join(tables))

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


if __name__ == "__main__":
    render()
