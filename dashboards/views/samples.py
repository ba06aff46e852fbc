"""Samples: search and filter; one sample's prompt, response (unsupported spans marked),
retrieved context, image and scores. Other pages link here with ?rid=... or filters."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import streamlit as st

from genobs.config import ConfigError, load_config
from genobs.dashboards import queries, widgets as w
from genobs.dashboards.highlight import highlighted_html, valid_spans

ORDERS = ("newest", "worst hallucination", "slowest")


def render() -> None:
    st.title("Samples")
    db = queries.db_path()
    counts = queries.table_counts(db)
    rid = st.query_params.get("rid")
    # Read the page's own URL parameters before the shared filters rewrite the URL.
    wanted = {k: st.query_params.get_all(k) for k in ("status", "version", "variant")}
    q_text = st.query_params.get("q", "")
    order = st.query_params.get("order", "newest")
    f = w.sidebar_filters(db)
    if w.no_samples(counts, f):
        return
    if rid:
        st.query_params["rid"] = rid
        _detail(db, rid)
        st.divider()
    _search(f, wanted, q_text, order)


def _search(f: w.Filters, wanted: dict[str, list[str]], q_text: str, order: str) -> None:
    st.subheader("Search")
    statuses = queries.distinct_values(f.db, f.scope, "status")
    versions = queries.distinct_values(f.db, f.scope, "model_version")
    variants = queries.distinct_values(f.db, f.scope, "variant")
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    text = c1.text_input("Text in prompt or response, or a request_id", value=q_text, key="_w_q")
    status = c2.multiselect("Status", statuses, default=[s for s in wanted["status"] if s in statuses],
                            placeholder="any", key="_w_status")
    version = c3.multiselect("Model version", versions, default=[v for v in wanted["version"] if v in versions],
                             placeholder="any", key="_w_version")
    variant = c4.multiselect("Arm (variant)", variants, default=[v for v in wanted["variant"] if v in variants],
                             placeholder="any", key="_w_variant")
    c5, c6 = st.columns([2, 2])
    order = c5.selectbox("Order", ORDERS, index=ORDERS.index(order) if order in ORDERS else 0, key="_w_order")
    min_h = c6.number_input("Minimum hallucination score (0 = any)", 0.0, 1.0, 0.0, 0.05, key="_w_minh")
    for name, value in (("status", status), ("version", version), ("variant", variant)):
        if value:
            st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]
    st.query_params["order"] = order
    if text:
        st.query_params["q"] = text
    elif "q" in st.query_params:
        del st.query_params["q"]
    search = queries.SampleSearch(text=text, statuses=tuple(status), versions=tuple(version),
                                  variants=tuple(variant), min_hallucination=min_h or None, order=order)
    rows = queries.search_samples(f.db, f.scope, search)
    if len(rows) == 0:
        w.empty_window("samples matching these filters")
        return
    rows.insert(0, "open", [w.samples_link(f, rid=r) for r in rows["request_id"]])
    st.caption(f"{len(rows)} samples" + (" (the first 200; narrow the filters)" if len(rows) >= queries.LIST_LIMIT
                                         else ""))
    st.dataframe(rows, hide_index=True, width="stretch", column_config={
        "open": w.link_column(),
        "timestamp": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.0f"),
        "hallucination_score": st.column_config.NumberColumn("hallucination", format="%.3f")})


def _detail(db: str, rid: str) -> None:
    sample = queries.sample_detail(db, rid)
    if sample is None:
        st.warning(f"No sample with request_id {rid!r} in this database.")
        return
    st.subheader(f"Sample {rid}")
    st.caption(f"{w.fmt_time(sample['timestamp'])} UTC · {sample['service']} · {sample['model']} "
               f"{sample['model_version']} ({sample['variant']}) · status **{sample['status']}**"
               + (f" ({sample['error_type']})" if sample.get("error_type") else "")
               + f" · latency {w.fmt(sample['latency_ms'], 'ms', 0)} · {sample['input_tokens'] or 0:,} → "
               f"{sample['output_tokens'] or 0:,} tokens · {w.fmt(sample['cost_usd'], 'USD', 5)}")
    scores = queries.sample_scores(db, rid)
    spans: list[dict] = []
    for details in scores[scores["metric"] == queries.HALLUCINATION_METRIC]["details"]:
        try:
            spans += (json.loads(details) or {}).get("unsupported_spans") or []
        except (TypeError, ValueError):
            pass
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Prompt**")
        st.text(sample.get("prompt") or "")
        response = sample.get("response") or ""
        marked = valid_spans(spans, len(response))
        st.markdown("**Response**" + (f" — {len(marked)} unsupported span(s) marked" if marked else ""))
        st.markdown(f'<div style="line-height:1.6">{highlighted_html(response, spans)}</div>', unsafe_allow_html=True)
        if marked:
            st.caption("; ".join(f"“{response[a:b]}”: {reason}" for a, b, reason in marked))
        if sample.get("reference"):
            st.markdown("**Reference answer**")
            st.text(sample["reference"])
        if sample.get("image"):
            st.markdown("**Image**")
            _image(db, sample["image"])
    with right:
        context = sample.get("context") or []
        st.markdown(f"**Retrieved context** ({len(context)} passages)")
        for i, passage in enumerate(context, 1):
            st.text(f"[{i}] {passage}")
        st.markdown("**Scores**")
        if len(scores):
            st.dataframe(scores.drop(columns=["details"]), hide_index=True, width="stretch")
        else:
            st.caption("Not scored.")
        attrs = sample.get("attributes")
        if attrs:
            with st.expander("Attributes"):
                st.json(json.loads(attrs) if isinstance(attrs, str) else attrs)


def _image(db: str, value: str) -> None:
    """Show an image from under the image root (images.root, else the database's folder);
    anything else is named, not read: a sample must not make the UI read arbitrary files."""
    try:
        cfg = load_config().images
    except ConfigError as exc:
        st.warning(f"config: {exc}")
        return
    root = Path(cfg.root).expanduser().resolve() if cfg.root else Path(db).resolve().parent
    raw = unquote(urlparse(value).path) if value.startswith("file:") else value
    path = (root / raw).resolve()
    if value.startswith("data:") or not path.is_relative_to(root):
        st.caption(f"image {value[:120]!r} is outside the image root {root}; not shown.")
        return
    if not path.is_file():
        st.caption(f"image file not found: {path} (set `images.root` in genobs.yaml).")
        return
    if path.stat().st_size > cfg.max_bytes:
        st.caption(f"image {path} is over images.max_bytes; not shown.")
        return
    st.image(str(path), width=256)


if __name__ == "__main__":
    render()
