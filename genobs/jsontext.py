"""JSON text with a bound on nesting, read without recursion errors.

Python's json module recurses once per nesting level: about 1,000 levels raise
RecursionError (a RuntimeError, not a ValueError), which used to escape as a 500 and lose
the whole request. Every JSON text from outside goes through this module instead: its
nesting depth is measured first by a linear scan (no recursion), and a text deeper than
the limit is refused with TooDeep (a ValueError) before anything parses it.

The depth of a value is 1 for a scalar... no: 0 for a scalar, 1 for ``{}`` or ``[]``,
and one more per enclosing object or array. A sample record ``{"attributes": {"a": 1}}``
has depth 2. The limit is genobs.records.MAX_NESTING_DEPTH.
"""

from __future__ import annotations

import json
import re
from typing import Any

from genobs.records import MAX_NESTING_DEPTH


class TooDeep(ValueError):
    """The JSON text nests objects/arrays deeper than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels (the limit for JSON objects and arrays)")
        self.limit = limit


# A string token (the unrolled form: linear in Python's engine) or a bracket.
_TOKENS_STR = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)
_TOKENS_BYTES = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


def _openers(text: str | bytes) -> int:
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def nesting_depth(text: str | bytes, stop_above: int | None = None) -> int:
    """The deepest nesting of brackets outside strings in ``text`` (JSON or not); stops
    counting once it is over ``stop_above``. Cheap when there are few brackets at all."""
    if stop_above is not None and _openers(text) <= stop_above:
        # not more openers than the limit: cannot be deeper (the exact depth is not needed)
        return min(_openers(text), stop_above)
    tokens = _TOKENS_STR if isinstance(text, str) else _TOKENS_BYTES
    depth = deepest = 0
    for match in tokens.finditer(text):
        token = match.group(0)
        first = token[0] if isinstance(token, str) else chr(token[0])
        if first in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        elif first in "]}":
            depth = max(depth - 1, 0)
    return deepest


def is_too_deep(text: str | bytes, limit: int = MAX_NESTING_DEPTH) -> bool:
    return nesting_depth(text, stop_above=limit) > limit


def loads(text: str | bytes, limit: int = MAX_NESTING_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` that refuses texts nested deeper than ``limit`` (TooDeep) instead of
    raising RecursionError. Other problems raise ValueError as json.loads does."""
    if is_too_deep(text, limit):
        raise TooDeep(limit)
    return json.loads(text, **kwargs)


def split_array(text: bytes) -> list[bytes] | None:
    """The element texts of a top-level JSON array, cut by a linear scan (no parse, so any
    depth is fine); None when ``text`` is not an array. Each element is returned as written
    (a malformed one is left for the record check to name)."""
    start = len(text) - len(text.lstrip())
    if text[start:start + 1] != b"[":
        return None
    elements: list[bytes] = []
    depth = 0
    begin = start + 1
    position = begin
    # strings, brackets and commas: a comma at depth 1 ends an element
    for match in re.finditer(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', text[start:], re.S):
        token = match.group(0)[:1]
        position = start + match.start()
        if token in (b"[", b"{"):
            depth += 1
        elif token in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                piece = text[begin:position].strip()
                if piece:
                    elements.append(piece)
                return elements
        elif token == b"," and depth == 1:
            elements.append(text[begin:position].strip())
            begin = position + 1
    piece = text[begin:].strip()   # unterminated array: what is left is one (bad) element
    if piece:
        elements.append(piece)
    return elements


def record_text(record: Any) -> bytes:
    """One decoded record as compact-enough JSON text (UTF-8), never raising for what a
    caller may hand over. A string holding a lone surrogate (JSON allows the escape,
    Unicode has no such character) is written as its escape, so that the record check
    names it instead of the encoder failing; a record nested too deep for the encoder
    becomes the text of an equally deep array, which the record check rejects as too deep;
    what JSON cannot hold is written as its str()."""
    try:
        return json.dumps(record, default=str, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(record, default=str).encode()
    except RecursionError:
        return b"[" * (MAX_NESTING_DEPTH + 1) + b"]" * (MAX_NESTING_DEPTH + 1)
