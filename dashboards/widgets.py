"""Widgets every page shares: the time range and filters (kept in the URL), live refresh,
charts with units, links to the Samples page, and the messages of an empty page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

import altair as alt
import pandas as pd
import streamlit as st

from genobs.dashboards import queries
from genobs.dashboards.timewindow import (
    DEFAULT_RANGE,
    PRESETS,
    TimeParseError,
    Window,
    anchor,
    bucket_label,
    bucket_seconds,
    parse_window,
)

CUSTOM = "custom…"
REFRESH_CHOICES = {"off": None, "15 s": 15, "30 s": 30, "1 min": 60, "5 min": 300}
DEFAULT_REFRESH = "30 s"

# URL parameter names: a link carries the range and the filters to whoever opens it.
P_RANGE, P_SERVICE, P_MODEL, P_REFRESH = "range", "service", "model", "refresh"


def _param(name: str) -> str | None:
    value = st.query_params.get(name)
    return value if value else None


def _param_list(name: str) -> list[str]:
    return [v for v in st.query_params.get_all(name) if v]


def _remembered(name: str, default: Any) -> Any:
    """A filter's value: the URL first (a shared link), then this session, then the default.
    Page changes in st.navigation drop the URL's parameters, so the session keeps them."""
    return st.session_state.get(f"_genobs_{name}", default)


def _remember(name: str, value: Any) -> None:
    st.session_state[f"_genobs_{name}"] = value


class Filters:
    """What the sidebar selected: the window, services, models, refresh interval."""

    def __init__(self, db: str, window: Window, range_text: str, services: tuple[str, ...],
                 models: tuple[str, ...], refresh_s: int | None, anchored_at: datetime) -> None:
        self.db = db
        self.window = window
        self.range_text = range_text
        self.services = services
        self.models = models
        self.refresh_s = refresh_s
        self.anchored_at = anchored_at

    @property
    def scope(self) -> queries.Scope:
        return queries.Scope(self.window.start, self.window.end, self.services, self.models)

    @property
    def bucket_s(self) -> int:
        return bucket_seconds(self.window)

    def samples_link(self, **extra: Any) -> str:
        """A relative URL of the Samples page with this page's range and filters (+ ``extra``)."""
        return samples_link(self, **extra)


def sidebar_filters(db: str, *, with_models: bool = True) -> Filters:
    """The time-range picker and service/model filters, read from and written to the URL."""
    newest = queries.newest_data(db)
    anchored_at = anchor(newest)
    url_range = _param(P_RANGE)
    current = url_range or _remembered(P_RANGE, DEFAULT_RANGE)
    sb = st.sidebar
    options = [*PRESETS, CUSTOM]
    choice = sb.selectbox("Time range", options, index=options.index(current) if current in PRESETS else len(PRESETS),
                          key="_w_range_choice")
    range_text = choice
    if choice == CUSTOM:
        range_text = sb.text_input("From..to (UTC, RFC 3339)", value="" if current in PRESETS else current,
                                   placeholder="2026-11-18T13:00:00Z..2026-11-18T16:00:00Z", key="_w_range_custom")
    try:
        window = parse_window(range_text or DEFAULT_RANGE, now=anchored_at)
    except (TimeParseError, ValueError) as exc:
        sb.error(f"{exc}. Showing {DEFAULT_RANGE}.")
        range_text = DEFAULT_RANGE
        window = parse_window(DEFAULT_RANGE, now=anchored_at)
    now = datetime.now(timezone.utc)
    span = f"{fmt_time(window.start)} → {fmt_time(window.end)} UTC"
    if newest is not None and (now - anchored_at).total_seconds() > 600 and ".." not in range_text:
        span = f"Newest data: {fmt_time(newest)}; relative ranges end there.  \n{span}"
    sb.caption(span)   # one element, not two: each is a message the browser handles before drawing

    opts = queries.filter_options(db, window.start, window.end)
    all_services = sorted(set(opts["service"])) if len(opts) else []
    wanted = _param_list(P_SERVICE) or _remembered(P_SERVICE, [])
    services = sb.multiselect("Service", all_services, default=[s for s in wanted if s in all_services],
                              placeholder="all services", key="_w_services")
    models: list[str] = []
    if with_models:
        pool = opts[opts["service"].isin(services)] if services else opts
        all_models = sorted(set(pool["model"])) if len(pool) else []
        wanted_m = _param_list(P_MODEL) or _remembered(P_MODEL, [])
        models = sb.multiselect("Model", all_models, default=[m for m in wanted_m if m in all_models],
                                placeholder="all models", key="_w_models")
    refresh_default = _param(P_REFRESH) or _remembered(P_REFRESH, DEFAULT_REFRESH)
    refresh_keys = list(REFRESH_CHOICES)
    refresh = sb.selectbox("Live refresh", refresh_keys,
                           index=refresh_keys.index(refresh_default) if refresh_default in refresh_keys else 0,
                           key="_w_refresh")

    for name, value in ((P_RANGE, range_text), (P_SERVICE, services), (P_MODEL, models), (P_REFRESH, refresh)):
        _remember(name, value)
    _sync_url({P_RANGE: [range_text], P_SERVICE: services, P_MODEL: models, P_REFRESH: [refresh]})
    return Filters(db, window, range_text, tuple(services), tuple(models), REFRESH_CHOICES[refresh], anchored_at)


def _sync_url(wanted: dict[str, list[str]]) -> None:
    """Keep the URL in step with the widgets so a copied link opens the same view. Only what
    differs is written, in one update: each write is a message the browser must handle
    before it draws the page."""
    changed = {name: values for name, values in wanted.items()
               if values and st.query_params.get_all(name) != list(values)}
    if changed:
        st.query_params.update(changed)
    for name, values in wanted.items():
        if not values and name in st.query_params:
            del st.query_params[name]


def live(filters: Filters, body: Callable[[], None]) -> None:
    """Run ``body`` as a fragment that re-runs itself every refresh interval (when on)."""
    st.fragment(body, run_every=filters.refresh_s)()


# --------------------------------------------------------------------------- links


def samples_link(filters: Filters | None = None, **extra: Any) -> str:
    params: list[tuple[str, str]] = []
    if filters is not None:
        params.append((P_RANGE, str(extra.pop(P_RANGE, None) or filters.range_text)))
        params += [(P_SERVICE, s) for s in filters.services]
        params += [(P_MODEL, m) for m in filters.models]
    for key, value in extra.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            params += [(key, str(v)) for v in value]
        else:
            params.append((key, str(value)))
    return "samples?" + urlencode(params)


def bucket_range(start: datetime, seconds: int) -> str:
    """The range text of one chart bucket (for links from a chart point)."""
    return window_text(start, start + timedelta(seconds=seconds))


def window_text(start: datetime, end: datetime) -> str:
    return f"{iso(start)}..{iso(end)}"


def iso(value: datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_time(value: datetime | None) -> str:
    if value is None or pd.isna(value):
        return "—"
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:,.{digits}f}"
    return f"{text} {unit}".strip() if unit and unit not in ("%",) else f"{text}{unit}"


# --------------------------------------------------------------------------- charts


def time_axis(title: str = "time (UTC)") -> alt.X:
    return alt.X("bucket:T", title=title, axis=alt.Axis(format="%b %d %H:%M"))


def line_chart(df: pd.DataFrame, y: str, y_title: str, color: str | None = None, *, height: int = 220,
               href: str | None = None, marks: alt.Chart | None = None, y_scale: alt.Scale | None = None,
               color_title: str | None = None) -> alt.LayerChart | alt.Chart:
    """A time series with a titled (unit-bearing) y axis; ``href``: a column of links opened
    on click (points link to the Samples page)."""
    enc: dict[str, Any] = {
        "x": time_axis(),
        "y": alt.Y(f"{y}:Q", title=y_title, scale=y_scale or alt.Undefined),
        "tooltip": [alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                    alt.Tooltip(f"{y}:Q", title=y_title, format=",.2f")],
    }
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color_title or color)
        enc["tooltip"].append(alt.Tooltip(f"{color}:N"))
    chart = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=18) if href else False).encode(**enc)
    if href:
        chart = chart.encode(href=f"{href}:N")
    layers = [chart] if marks is None else [marks, chart]
    return alt.layer(*layers).properties(height=height)


CANARY_RED = "#d62728"
PALETTE = ("#1f77b4", "#7fb2e5", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f")


def version_colors(names: Iterable[str]) -> alt.Scale:
    """Colours for arms/versions: canary arms red, the rest from a calm palette, so a
    canary's line stands out from its baseline."""
    domain = sorted(set(names))
    others = iter(PALETTE * 4)
    return alt.Scale(domain=domain, range=[CANARY_RED if "canary" in n else next(others) for n in domain])


def show_chart(chart: Any) -> None:
    st.altair_chart(chart, width="stretch")


def md_cell(value: Any) -> str:
    """Text for a Markdown table cell: pipes and newlines would break the table, and the
    characters Markdown would format are escaped (the text is data, not markup)."""
    text = "—" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    for ch in "*_`[]<>#~$":
        text = text.replace(ch, "\\" + ch)
    return text


class MdLink(str):
    """Markdown the page built (a link), passed through markdown_table unescaped."""


def md_link(label: str, url: str) -> MdLink:
    """A Markdown link to a relative URL of this app (e.g. samples_link's)."""
    return MdLink(f"[{md_cell(label)}]({url.replace(' ', '%20').replace('(', '%28').replace(')', '%29')})")


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A static table as Markdown: cells are escaped with md_cell unless they are md_link
    links. One element the browser draws as plain HTML (no interactive grid to load)."""
    def cell(value: Any) -> str:
        return value if isinstance(value, MdLink) else md_cell(value)
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def link_column(label: str = "open") -> Any:
    return st.column_config.LinkColumn(label, display_text="open ↗", width="small")


# --------------------------------------------------------------------------- empty states

NO_SAMPLES_HELP = (
    "Send samples to this database: `genobs ingest FILE.jsonl --db PATH`, `POST /v1/samples` on a "
    "running `genobs serve`, or the Python SDK (`genobs.sdk.Client(url).log(...)`). "
    "To see every page with data, build the demo: `genobs demo`."
)


def no_samples(counts: dict[str, int], filters: Filters | None = None) -> bool:
    """Say what to do when there is nothing to show; True when the page should stop."""
    if counts.get("samples", 0) == 0:
        st.info("**No samples in this database yet.** " + NO_SAMPLES_HELP)
        return True
    return False


def empty_window(what: str = "samples") -> None:
    st.info(f"No {what} in the selected time range and filters. Widen the time range in the sidebar "
            "(e.g. *last 30d*) or clear the service/model filters.")


def metric_row(items: Iterable[tuple[str, str, str | None]]) -> None:
    """A row of st.metric tiles: (label, value, help)."""
    # One horizontal container, not st.columns: a column is a block of its own, so a row of
    # n tiles in columns costs n + 1 more elements for the browser to lay out and draw.
    row = st.container(horizontal=True, gap="medium")
    for label, value, help_text in items:
        row.metric(label, value, help=help_text, width="stretch")
