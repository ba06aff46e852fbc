"""Response text with the hallucination evaluator's unsupported spans marked, as safe HTML.

scores.details of ``hallucination_score`` holds ``unsupported_spans``: ``{start, end,
reason, text}`` character offsets into the response (evaluators/hallucination.py).
"""

from __future__ import annotations

import html
from typing import Any, Iterable

MARK_STYLE = "background:#ffd6d6;border-bottom:2px solid #d62728;padding:0 1px"


def valid_spans(spans: Iterable[Any], length: int) -> list[tuple[int, int, str]]:
    """In-bounds, non-overlapping spans, in order (later overlapping ones are dropped)."""
    out: list[tuple[int, int, str]] = []
    for span in spans:
        if not isinstance(span, dict):
            continue
        try:
            start, end = int(span["start"]), int(span["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= start < end <= length:
            out.append((start, end, str(span.get("reason") or "unsupported")))
    out.sort()
    kept: list[tuple[int, int, str]] = []
    for start, end, reason in out:
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end, reason))
    return kept


def highlighted_html(text: str, spans: Iterable[Any]) -> str:
    """``text`` HTML-escaped, each unsupported span in a <mark> titled with its reason."""
    parts: list[str] = []
    pos = 0
    for start, end, reason in valid_spans(spans, len(text)):
        parts.append(html.escape(text[pos:start]))
        parts.append(f'<mark style="{MARK_STYLE}" title="{html.escape(reason, quote=True)}">'
                     f"{html.escape(text[start:end])}</mark>")
        pos = end
    parts.append(html.escape(text[pos:]))
    return "".join(parts).replace("\n", "<br>")
