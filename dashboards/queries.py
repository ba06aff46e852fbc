"""Every query the dashboards run: parameterized, cached with a TTL, bounded.

Each function takes plain hashable arguments (the database path, the window, the filters)
so ``st.cache_data`` can key on them: all sessions of one process share the answers for
``CACHE_TTL_S`` seconds, and a page re-run (or a live-refresh tick) inside that time costs
no query. Reads only.

Cost bounds. Samples arrive in time order, so DuckDB's per-row-group min/max of
``timestamp`` skips every row group outside the window: a query costs the rows in the
window, not the table. Lists (samples, alerts, worst answers) end in LIMIT; distributions
for the canary page and the Evidently report read a fixed-size reservoir sample of the
window. Time series are bucketed so a chart has at most a few hundred points per series.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import pandas as pd
import streamlit as st

from genobs.store import Store, StoreError

CACHE_TTL_S = 30
FAILED_STATUSES = ("error", "timeout")   # what availability counts as failed ('filtered' is a policy answer)
HALLUCINATION_METRIC = "hallucination_score"
CLIP_METRIC = "clip_score"
LIST_LIMIT = 200
DISTRIBUTION_SAMPLE = 5000     # values per arm and metric on the canary page
EVIDENTLY_SAMPLE = 2000        # rows per window for Evidently's report

READ_ONLY_ENV = "GENOBS_UI_READ_ONLY"


# --------------------------------------------------------------------------- the store


def db_path() -> str:
    """The database the UI shows: $GENOBS_DB (set by `genobs serve` / `genobs dashboard`)."""
    return str(os.environ.get("GENOBS_DB") or "genobs.duckdb")


def store(db: str) -> Store:
    """The process's shared store for ``db`` (read-only when the UI runs alone)."""
    return Store.open(db, read_only=os.environ.get(READ_ONLY_ENV) == "1")


def _df(db: str, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    return store(db).execute(sql, list(params)).df()


def _one(db: str, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
    row = store(db).fetchone(sql, list(params))
    return row if row is not None else ()


@dataclass(frozen=True)
class Scope:
    """What a page looks at: a window and optional service / model filters."""

    start: datetime
    end: datetime
    services: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


def _where(scope: Scope, alias: str = "") -> tuple[str, list[Any]]:
    """WHERE clause selecting the scope's samples (``alias``: the samples table's alias)."""
    p = f"{alias}." if alias else ""
    clauses = [f"{p}timestamp >= ?", f"{p}timestamp < ?"]
    params: list[Any] = [scope.start, scope.end]
    if scope.services:
        clauses.append(f"{p}service IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(scope.services))
    if scope.models:
        clauses.append(f"{p}model IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(scope.models))
    return " AND ".join(clauses), params


_FAILED = "status IN ('error', 'timeout')"

# time_bucket's origin for widths under a month (2000-01-03 00:00 UTC, a Monday), in µs.
_BUCKET_ORIGIN_US = 946_857_600_000_000


def _bucket(column: str, seconds: int) -> str:
    """SQL for the start of ``column``'s bucket of ``seconds``: the same instants as
    time_bucket(to_seconds(seconds), column), computed on the epoch in integers.
    DuckDB's time_bucket on a TIMESTAMPTZ goes through ICU's calendar per row: 0.5 s of the
    0.6 s a 2.5M-row bucketed count took on the bench's 10M database (last 7 days); this
    takes 0.1 s. The modulo is taken floor-wise so instants before the origin bucket right.
    The width is an int computed by the page (timewindow.bucket_seconds), written as a
    literal (int() here) because it appears three times."""
    us = f"(epoch_us({column}) - {_BUCKET_ORIGIN_US})"
    width = f"{int(seconds) * 1_000_000}"
    return f"make_timestamptz({us} - ((({us} % {width}) + {width}) % {width}) + {_BUCKET_ORIGIN_US})"


# --------------------------------------------------------------------------- inventory


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def open_problem(db: str) -> str | None:
    """Why the database cannot be shown (missing, locked, old schema), or None."""
    try:
        store(db)
    except StoreError as exc:
        return str(exc)
    return None


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def table_counts(db: str) -> dict[str, int]:
    """Rows per table the pages read (what is there at all)."""
    tables = ("samples", "scores", "gpu_telemetry", "drift_results", "alerts", "notifications",
              "silences", "canary_verdicts", "dead_letter")
    existing = {name for (name,) in store(db).fetchall(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}
    counts: dict[str, int] = {}
    for name in tables:
        # Table names come from the fixed tuple above, never from input.
        counts[name] = int(_one(db, f"SELECT count(*) FROM {name}")[0]) if name in existing else 0
    return counts


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def newest_data(db: str) -> datetime | None:
    """The newest sample or GPU reading: where relative time ranges end when it is old."""
    row = _one(db, "SELECT greatest((SELECT max(timestamp) FROM samples), (SELECT max(timestamp) FROM gpu_telemetry))")
    return row[0] if row else None


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def filter_options(db: str, start: datetime, end: datetime) -> pd.DataFrame:
    """(service, model) pairs with samples in the window."""
    return _df(db, "SELECT DISTINCT service, model FROM samples WHERE timestamp >= ? AND timestamp < ? "
                   "ORDER BY service, model", [start, end])


# --------------------------------------------------------------------------- overview


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def overview_kpis(db: str, scope: Scope) -> dict[str, Any]:
    """Requests, availability, p95 latency, cost and hallucination rate over the scope."""
    where, params = _where(scope)
    requests, failed, p95, cost, costed = _one(
        db,
        f"SELECT count(*), count(*) FILTER ({_FAILED}), quantile_cont(latency_ms, 0.95), "
        f"sum(cost_usd), count(cost_usd) FROM samples WHERE {where}", params)
    where_s, params_s = _where(scope, "s")
    scored, hallucinated = _one(
        db,
        "SELECT count(*), count(*) FILTER (sc.label = 'hallucinated') FROM scores sc "
        f"JOIN samples s USING (request_id) WHERE sc.metric = ? AND sc.error IS NULL AND {where_s}",
        [HALLUCINATION_METRIC, *params_s])
    return {
        "requests": int(requests or 0),
        "failed": int(failed or 0),
        "availability_pct": (100.0 * (1 - failed / requests)) if requests else None,
        "p95_latency_ms": p95,
        "cost_usd": cost,
        "cost_per_1k_usd": (1000.0 * cost / costed) if costed else None,
        "scored": int(scored or 0),
        "hallucinated": int(hallucinated or 0),
        "hallucination_rate_pct": (100.0 * hallucinated / scored) if scored else None,
    }


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def firing_alerts(db: str) -> pd.DataFrame:
    return _df(db, "SELECT slo, service, severity, starts_at, burn_rate_long, burn_rate_short, fingerprint "
                   "FROM alerts WHERE state = 'firing' ORDER BY severity = 'page' DESC, starts_at DESC LIMIT ?",
               [LIST_LIMIT])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def slo_read_models(db: str) -> list[str]:
    """Tables of the SLO engine beyond the base schema (its rollups / status), if built."""
    rows = store(db).fetchall(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND "
        "table_name IN ('slo_status', 'slo_series', 'slo_rollups') ORDER BY 1")
    return [name for (name,) in rows]


# --------------------------------------------------------------------------- traffic (on-call)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def traffic_series(db: str, scope: Scope, bucket_s: int) -> pd.DataFrame:
    """Per bucket: requests, failures, request and error rates, p50/p95/p99 latency (ms)."""
    where, params = _where(scope)
    return _df(
        db,
        f"SELECT {_bucket('timestamp', bucket_s)} AS bucket, count(*) AS requests, "
        f"count(*) FILTER ({_FAILED}) AS failed, "
        "count(*) / (? / 60.0) AS requests_per_min, "
        f"100.0 * count(*) FILTER ({_FAILED}) / count(*) AS error_pct, "
        "quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q "
        f"FROM samples WHERE {where} GROUP BY bucket ORDER BY bucket",
        [bucket_s, *params],
    ).pipe(_split_quantiles)


def _split_quantiles(df: pd.DataFrame) -> pd.DataFrame:
    if "q" in df:
        q = df.pop("q")
        for i, name in enumerate(("p50_ms", "p95_ms", "p99_ms")):
            df[name] = [None if v is None or len(v) <= i else v[i] for v in q]
    return df


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def version_series(db: str, scope: Scope, bucket_s: int) -> pd.DataFrame:
    """Requests per bucket and model version (with its arm)."""
    where, params = _where(scope)
    # Group by the (dictionary-encoded) columns and build the label per group, not per row:
    # a third less time on a 10M-sample table (bench/bench_dashboard.py's database).
    return _df(
        db,
        "SELECT bucket, model || ' ' || model_version || CASE WHEN variant = 'primary' THEN '' "
        "ELSE ' (' || variant || ')' END AS version, sum(requests)::BIGINT AS requests FROM ("
        f"SELECT {_bucket('timestamp', bucket_s)} AS bucket, model, model_version, variant, "
        f"count(*) AS requests FROM samples WHERE {where} GROUP BY ALL) GROUP BY ALL ORDER BY bucket, version",
        params)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def worst_buckets(db: str, scope: Scope, bucket_s: int, limit: int = 5) -> pd.DataFrame:
    """The buckets with the highest error rate (then p95), at least 20 requests each."""
    where, params = _where(scope)
    return _df(
        db,
        f"SELECT service, {_bucket('timestamp', bucket_s)} AS bucket, count(*) AS requests, "
        f"100.0 * count(*) FILTER ({_FAILED}) / count(*) AS error_pct, "
        "quantile_cont(latency_ms, 0.95) AS p95_ms "
        f"FROM samples WHERE {where} GROUP BY ALL HAVING count(*) >= 20 "
        "ORDER BY error_pct DESC, p95_ms DESC LIMIT ?",
        [*params, limit])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def error_breakdown(db: str, scope: Scope) -> pd.DataFrame:
    where, params = _where(scope)
    return _df(db, f"SELECT status, coalesce(error_type, '') AS error_type, count(*) AS requests FROM samples "
                   f"WHERE {where} AND status <> 'ok' GROUP BY ALL ORDER BY requests DESC LIMIT 20", params)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def alert_stream(db: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Alerts that started in the window or were still open in it, newest first."""
    return _df(
        db,
        "SELECT starts_at, ends_at, state, severity, slo, service, burn_rate_long, burn_rate_short, fingerprint "
        "FROM alerts WHERE starts_at < ? AND (ends_at IS NULL OR ends_at >= ?) "
        "ORDER BY starts_at DESC LIMIT ?",
        [end, start, LIST_LIMIT])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def notification_outbox(db: str, start: datetime, end: datetime) -> pd.DataFrame:
    return _df(
        db,
        "SELECT created_at, receiver, dedup_key, attempts, delivered_at, next_attempt_at, last_error "
        "FROM notifications WHERE created_at >= ? AND created_at < ? ORDER BY created_at DESC LIMIT ?",
        [start, end, LIST_LIMIT])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def silences(db: str) -> pd.DataFrame:
    return _df(db, "SELECT id, matchers::VARCHAR AS matchers, starts_at, ends_at, created_by, comment, "
                   "now() BETWEEN starts_at AND ends_at AS active FROM silences ORDER BY ends_at DESC LIMIT ?",
               [LIST_LIMIT])


# --------------------------------------------------------------------------- GPUs


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def gpu_series(db: str, start: datetime, end: datetime, hosts: tuple[str, ...], bucket_s: int) -> pd.DataFrame:
    """Per bucket and GPU: mean utilization, max memory, mean power, max temperature,
    min SM clock, and how many readings reported throttling."""
    host_clause = "AND host IN (SELECT unnest(?::VARCHAR[]))" if hosts else ""
    params: list[Any] = [start, end] + ([list(hosts)] if hosts else [])
    return _df(
        db,
        f"SELECT {_bucket('timestamp', bucket_s)} AS bucket, host || ' / GPU ' || gpu_index AS gpu, "
        "avg(utilization_pct) AS utilization_pct, max(memory_used_mib) / 1024.0 AS memory_used_gib, "
        "max(memory_total_mib) / 1024.0 AS memory_total_gib, avg(power_w) AS power_w, "
        "max(temperature_c) AS temperature_c, min(sm_clock_mhz) AS sm_clock_mhz, "
        "count(*) FILTER (throttle_reasons IS NOT NULL AND throttle_reasons NOT IN ('none', '')) AS throttled "
        f"FROM gpu_telemetry WHERE timestamp >= ? AND timestamp < ? {host_clause} "
        "GROUP BY ALL ORDER BY bucket, gpu",
        params)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def throttle_episodes(db: str, start: datetime, end: datetime, gap_s: int = 300) -> pd.DataFrame:
    """Runs of throttled readings per GPU (a gap over ``gap_s`` starts a new episode)."""
    return _df(
        db,
        "WITH t AS (SELECT host, gpu_index, timestamp, throttle_reasons, temperature_c, sm_clock_mhz, "
        "  CASE WHEN lag(timestamp) OVER w IS NULL OR timestamp - lag(timestamp) OVER w > to_seconds(?::BIGINT) "
        "       THEN 1 ELSE 0 END AS new_episode "
        "  FROM gpu_telemetry WHERE timestamp >= ? AND timestamp < ? "
        "  AND throttle_reasons IS NOT NULL AND throttle_reasons NOT IN ('none', '') "
        "  WINDOW w AS (PARTITION BY host, gpu_index ORDER BY timestamp)), "
        "e AS (SELECT *, sum(new_episode) OVER (PARTITION BY host, gpu_index ORDER BY timestamp) AS episode FROM t) "
        "SELECT host || ' / GPU ' || gpu_index AS gpu, min(timestamp) AS start, max(timestamp) AS \"end\", "
        "count(*) AS readings, max(temperature_c) AS max_temperature_c, min(sm_clock_mhz) AS min_sm_clock_mhz, "
        "string_agg(DISTINCT throttle_reasons, '; ') AS reasons "
        "FROM e GROUP BY host, gpu_index, episode ORDER BY start LIMIT ?",
        [gap_s, start, end, LIST_LIMIT])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def gpu_hosts(db: str, start: datetime, end: datetime) -> list[str]:
    rows = store(db).fetchall("SELECT DISTINCT host FROM gpu_telemetry WHERE timestamp >= ? AND timestamp < ? "
                              "ORDER BY 1", [start, end])
    return [h for (h,) in rows]


# --------------------------------------------------------------------------- quality


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def score_series(db: str, scope: Scope, metric: str, bucket_s: int) -> pd.DataFrame:
    """Per bucket and model version (with arm): scored samples, mean score, share labelled
    'hallucinated' (for the hallucination metric)."""
    where, params = _where(scope, "s")
    return _df(
        db,
        f"SELECT {_bucket('s.timestamp', bucket_s)} AS bucket, "
        "s.model_version || CASE WHEN s.variant = 'primary' THEN '' ELSE ' (' || s.variant || ')' END AS version, "
        "count(*) AS scored, avg(sc.value) AS mean_score, "
        "100.0 * count(*) FILTER (sc.label = 'hallucinated') / count(*) AS hallucinated_pct "
        f"FROM scores sc JOIN samples s USING (request_id) WHERE sc.metric = ? AND sc.error IS NULL AND {where} "
        "GROUP BY ALL ORDER BY bucket",
        [metric, *params])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def score_by_version(db: str, scope: Scope, metric: str) -> pd.DataFrame:
    where, params = _where(scope, "s")
    return _df(
        db,
        "SELECT s.model, s.model_version, s.variant, count(*) AS scored, avg(sc.value) AS mean_score, "
        "100.0 * count(*) FILTER (sc.label = 'hallucinated') / count(*) AS hallucinated_pct "
        f"FROM scores sc JOIN samples s USING (request_id) WHERE sc.metric = ? AND sc.error IS NULL AND {where} "
        "GROUP BY ALL ORDER BY s.model, s.model_version, s.variant",
        [metric, *params])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def worst_samples(db: str, scope: Scope, metric: str, descending: bool, limit: int = 25) -> pd.DataFrame:
    """The worst-scored samples of the scope (highest hallucination, lowest CLIP)."""
    where, params = _where(scope, "s")
    order = "DESC" if descending else "ASC"
    return _df(
        db,
        "SELECT s.request_id, s.timestamp, s.service, s.model_version, s.variant, sc.value AS score, sc.label, "
        "left(coalesce(nullif(s.response, ''), s.prompt), 160) AS text "
        f"FROM scores sc JOIN samples s USING (request_id) WHERE sc.metric = ? AND sc.error IS NULL AND {where} "
        f"ORDER BY sc.value {order} NULLS LAST LIMIT ?",
        [metric, *params, limit])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def score_metrics(db: str) -> list[str]:
    return [m for (m,) in store(db).fetchall("SELECT DISTINCT metric FROM scores ORDER BY 1")]


# --------------------------------------------------------------------------- drift


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def drift_results(db: str, start: datetime, end: datetime, services: tuple[str, ...]) -> pd.DataFrame:
    """Drift results whose current window overlaps [start, end) (one row per run x feature x
    method); ``current_end`` is when the drift refers to (runs may be computed much later)."""
    svc = "AND service IN (SELECT unnest(?::VARCHAR[]))" if services else ""
    params: list[Any] = [start, end] + ([list(services)] if services else []) + [5000]
    return _df(
        db,
        "WITH d AS (SELECT *, coalesce(try_cast(split_part(\"current\", '..', 2) AS TIMESTAMPTZ), computed_at) "
        "AS current_end, coalesce(try_cast(split_part(\"current\", '..', 1) AS TIMESTAMPTZ), computed_at) "
        "AS current_start FROM drift_results) "
        "SELECT run_id, computed_at, current_end, service, reference, \"current\", feature, feature_type, method, "
        "statistic, p_value, threshold, drifted, drift_score, details::VARCHAR AS details FROM d "
        f"WHERE current_end > ? AND current_start < ? {svc} "
        "ORDER BY computed_at, feature, method LIMIT ?",
        params)


EVIDENTLY_NUMERIC = ("latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd")
EVIDENTLY_CATEGORICAL = ("status", "model_version", "variant", "tenant", "region")


@st.cache_data(ttl=300, show_spinner=False)
def evidently_sample(db: str, scope: Scope, rows: int = EVIDENTLY_SAMPLE) -> pd.DataFrame:
    """A reservoir sample of ``rows`` samples of the scope, with the columns Evidently reads."""
    where, params = _where(scope)
    columns = ", ".join((*EVIDENTLY_NUMERIC, *EVIDENTLY_CATEGORICAL))
    return _df(
        db,
        f"SELECT {columns}, length(response) AS response_chars FROM (SELECT * FROM samples WHERE {where}) "
        f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE (7)",
        params)


# --------------------------------------------------------------------------- canary


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def arms(db: str, scope: Scope) -> pd.DataFrame:
    """Deployment arms in the scope: variant, versions, requests, error rate."""
    where, params = _where(scope)
    return _df(
        db,
        "SELECT variant, string_agg(DISTINCT model_version, ', ') AS versions, count(*) AS requests, "
        f"100.0 * count(*) FILTER ({_FAILED}) / count(*) AS error_pct, min(timestamp) AS first, "
        f"max(timestamp) AS last FROM samples WHERE {where} GROUP BY variant ORDER BY requests DESC",
        params)


CANARY_METRICS: dict[str, str] = {
    "latency_ms": "latency (ms)",
    "ttft_ms": "time to first token (ms)",
    "output_tokens": "output tokens (tokens)",
    "cost_usd": "cost (USD)",
}


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def arm_values(db: str, scope: Scope, variant: str, metric: str, per_arm: int = DISTRIBUTION_SAMPLE) -> pd.DataFrame:
    """A bounded sample of one arm's values of a sample column or a score metric."""
    where, params = _where(scope, "s")
    if metric in CANARY_METRICS:
        sql = (f"SELECT s.{metric} AS value FROM samples s WHERE {where} AND s.variant = ? "
               f"AND s.{metric} IS NOT NULL")
        args = [*params, variant]
    else:
        sql = (f"SELECT sc.value FROM scores sc JOIN samples s USING (request_id) WHERE {where} "
               "AND s.variant = ? AND sc.metric = ? AND sc.error IS NULL AND sc.value IS NOT NULL")
        args = [*params, variant, metric]
    return _df(db, f"SELECT value FROM ({sql}) USING SAMPLE reservoir({int(per_arm)} ROWS) REPEATABLE (7)", args)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def canary_verdicts(db: str, start: datetime, end: datetime, limit: int = 20) -> pd.DataFrame:
    """Stored verdicts whose window overlaps ours (or created in it), newest first."""
    return _df(
        db,
        "SELECT id, created_at, service, baseline, canary, window_start, window_end, score, verdict, "
        "details::VARCHAR AS details FROM canary_verdicts "
        "WHERE coalesce(window_start, created_at) < ? AND coalesce(window_end, created_at) >= ? "
        "ORDER BY created_at DESC LIMIT ?",
        [end, start, limit])


# --------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class SampleSearch:
    text: str = ""
    statuses: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    min_hallucination: float | None = None
    order: str = "newest"          # newest | worst hallucination | slowest


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def search_samples(db: str, scope: Scope, search: SampleSearch, limit: int = LIST_LIMIT) -> pd.DataFrame:
    where, params = _where(scope, "s")
    clauses = [where]
    if search.text.strip():
        # Substring search, case-insensitive; the pattern is a parameter (% and _ escaped).
        needle = search.text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("(s.request_id = ? OR s.prompt ILIKE ? ESCAPE '\\' OR s.response ILIKE ? ESCAPE '\\')")
        params += [search.text.strip(), f"%{needle}%", f"%{needle}%"]
    for column, values in (("status", search.statuses), ("model_version", search.versions),
                           ("variant", search.variants)):
        if values:
            clauses.append(f"s.{column} IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(values))
    if search.min_hallucination is not None:
        clauses.append("h.value >= ?")
        params.append(search.min_hallucination)
    order = {"worst hallucination": "h.value DESC NULLS LAST", "slowest": "s.latency_ms DESC NULLS LAST"}.get(
        search.order, "s.timestamp DESC")
    return _df(
        db,
        "SELECT s.request_id, s.timestamp, s.service, s.model, s.model_version, s.variant, s.status, "
        "s.latency_ms, h.value AS hallucination_score, left(s.prompt, 120) AS prompt "
        "FROM samples s LEFT JOIN scores h ON h.request_id = s.request_id AND h.metric = ? AND h.error IS NULL "
        f"WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?",
        [HALLUCINATION_METRIC, *params, limit])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def sample_detail(db: str, request_id: str) -> dict[str, Any] | None:
    cur = store(db).execute("SELECT * FROM samples WHERE request_id = ?", [request_id])
    row = cur.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cur.description]
    return dict(zip(names, row))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def sample_scores(db: str, request_id: str) -> pd.DataFrame:
    return _df(db, "SELECT metric, value, label, evaluator, reference_model, evaluated_at, error, "
                   "details::VARCHAR AS details FROM scores WHERE request_id = ? ORDER BY metric, reference_model",
               [request_id])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def distinct_values(db: str, scope: Scope, column: str) -> list[str]:
    if column not in ("status", "model_version", "variant"):
        raise ValueError(f"not a filter column: {column}")
    where, params = _where(scope)
    return [v for (v,) in store(db).fetchall(
        f"SELECT DISTINCT {column} FROM samples WHERE {where} ORDER BY 1", params)]


# --------------------------------------------------------------------------- SLO engine read models
# Written by genobs.slo (slo_status: the last evaluation of each SLO; slo_series + slo_rollups:
# per-minute good/total events per series). Read only when those tables exist.


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def slo_status(db: str) -> pd.DataFrame:
    if "slo_status" not in slo_read_models(db):
        return pd.DataFrame()
    return _df(db, 'SELECT slo, service, objective, "window", "at", evaluated_at, good, total, error_ratio, '
                   "budget_remaining, burn_rates::VARCHAR AS burn_rates, details->>'sli' AS sli "
                   "FROM slo_status ORDER BY budget_remaining, slo")


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def slo_series_for(db: str, service: str | None, sli_kind: str) -> list[str]:
    """Rollup series of this service and SLI kind (the SLO's series when there is one)."""
    if "slo_series" not in slo_read_models(db):
        return []
    rows = store(db).fetchall(
        "SELECT series FROM slo_series WHERE (definition->>'service') IS NOT DISTINCT FROM ? "
        "AND (definition->'sli'->>'kind') = ? ORDER BY series", [service, sli_kind])
    return [s for (s,) in rows]


BURN_WINDOWS_S: dict[str, int] = {"1h": 3600, "6h": 6 * 3600, "1d": 86400, "3d": 3 * 86400}


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def slo_burn(db: str, series: str, start: datetime, end: datetime, window_s: int) -> pd.DataFrame:
    """Hourly, for one rollup series: events and bad events over the SLO window and over the
    burn-rate windows (1h, 6h, 1d, 3d) ending at each hour. Reads the rollups of
    [start - window, end) only."""
    frames = {"w": int(window_s), **{k: int(v) for k, v in BURN_WINDOWS_S.items()}}
    # Frame sizes are whole seconds computed here (ints), not input: DuckDB wants constants.
    sums = ", ".join(
        f"sum(t - g) OVER (ORDER BY hour RANGE BETWEEN INTERVAL {s - 3600} SECOND PRECEDING AND CURRENT ROW) "
        f"AS bad_{k}, sum(t) OVER (ORDER BY hour RANGE BETWEEN INTERVAL {s - 3600} SECOND PRECEDING AND CURRENT ROW) "
        f"AS total_{k}" for k, s in frames.items())
    return _df(
        db,
        "WITH h AS (SELECT time_bucket(INTERVAL 1 HOUR, minute) AS hour, sum(good) AS g, sum(total) AS t "
        "FROM slo_rollups WHERE series = ? AND minute >= ? - to_seconds(?::BIGINT) AND minute < ? GROUP BY 1) "
        f"SELECT * FROM (SELECT hour, {sums} FROM h) WHERE hour >= ? ORDER BY hour",
        [series, start, int(window_s), end, start])


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def alert_events(db: str, start: datetime, end: datetime) -> pd.DataFrame:
    if "alert_events" not in {n for (n,) in store(db).fetchall(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}:
        return pd.DataFrame()
    return _df(db, 'SELECT "at", slo, severity, state, fingerprint FROM alert_events WHERE "at" >= ? AND "at" < ? '
                   'ORDER BY "at" DESC LIMIT ?', [start, end, LIST_LIMIT])


# --------------------------------------------------------------------------- server start


def prime(db: str, scope: Scope, bucket_s: int) -> None:
    """Run the queries of Overview and On-call for ``scope`` once (launch.warm_up, before the
    UI listens): DuckDB then holds the window's columns in its buffers and the OS has read
    them from disk, so the first visitor's page does not wait for the disk (on the bench's
    10M-sample database a disk-cold first Overview took 4.6 s, a page-cache-warm one 1.3 s).
    Reads only; the answers are dropped (the caller clears the query cache)."""
    table_counts(db)
    filter_options(db, scope.start, scope.end)
    overview_kpis(db, scope)
    traffic_series(db, scope, bucket_s)
    version_series(db, scope, bucket_s)
    worst_buckets(db, scope, bucket_s)
    error_breakdown(db, scope)
    gpu_series(db, scope.start, scope.end, (), bucket_s)
    firing_alerts(db)
    slo_status(db)
    alert_stream(db, scope.start, scope.end)
