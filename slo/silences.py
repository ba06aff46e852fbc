"""Silences (maintenance windows): label matchers and a time range, as in Alertmanager.

A matcher is ``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex`` (the regex
anchored, as Alertmanager anchors it). An alert is silenced at time T when every matcher of
a silence matches its labels and the silence is active at T (``starts_at <= T < ends_at``,
not expired before T).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from genobs.slo.timeutil import as_utc, utcnow
from genobs.store import Store

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class SilenceError(ValueError):
    pass


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        hit = re.fullmatch(self.value, actual) is not None if self.is_regex else actual == self.value
        return hit if self.is_equal else not hit

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    def __str__(self) -> str:
        op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[(self.is_regex, self.is_equal)]
        return f"{self.name}{op}{self.value}"


def parse_matcher(text: str) -> Matcher:
    match = _MATCHER.match(text)
    if not match:
        raise SilenceError(f"--match {text!r}: expected label=value, label!=value, label=~regex or label!~regex")
    name, op, value = match.groups()
    value = value.strip('"')
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise SilenceError(f"--match {text!r}: not a regular expression: {exc}") from None
    return Matcher(name, value, is_regex=op in ("=~", "!~"), is_equal=op in ("=", "=~"))


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str | None
    comment: str | None
    expired_at: datetime | None

    def active(self, at: datetime) -> bool:
        at = as_utc(at)
        end = min(self.ends_at, self.expired_at) if self.expired_at is not None else self.ends_at
        return self.starts_at <= at < end

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def state(self, at: datetime) -> str:
        if self.active(at):
            return "active"
        return "pending" if as_utc(at) < self.starts_at else "expired"

    def as_dict(self, at: datetime | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "matchers": [str(m) for m in self.matchers], "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(), "created_by": self.created_by, "comment": self.comment,
            "expired_at": self.expired_at.isoformat() if self.expired_at else None,
            "state": self.state(at or utcnow()),
        }


def add_silence(store: Store, matchers: Iterable[Matcher], starts_at: datetime, ends_at: datetime, *,
                comment: str, created_by: str | None = None) -> int:
    matchers = list(matchers)
    if not matchers:
        raise SilenceError("a silence needs at least one --match")
    if as_utc(ends_at) <= as_utc(starts_at):
        raise SilenceError("--end must be after --start")
    with store.transaction() as cur:
        (silence_id,) = cur.execute(
            "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) VALUES (?, ?, ?, ?, ?) RETURNING id",
            [json.dumps([m.as_dict() for m in matchers]), as_utc(starts_at), as_utc(ends_at), created_by, comment],
        ).fetchone()
    return int(silence_id)


def expire_silence(store: Store, silence_id: int, at: datetime | None = None) -> bool:
    with store.transaction() as cur:
        row = cur.execute("SELECT id FROM silences WHERE id = ? AND expired_at IS NULL", [silence_id]).fetchone()
        if row is None:
            return False
        cur.execute("UPDATE silences SET expired_at = ? WHERE id = ?", [as_utc(at or utcnow()), silence_id])
    return True


def list_silences(store: Store) -> list[Silence]:
    rows = store.fetchall(
        "SELECT id, matchers, starts_at, ends_at, created_by, comment, expired_at FROM silences ORDER BY id"
    )
    out = []
    for sid, matchers, starts, ends, by, comment, expired in rows:
        parsed = tuple(Matcher(m["name"], m["value"], m.get("isRegex", False), m.get("isEqual", True))
                       for m in json.loads(matchers))
        out.append(Silence(int(sid), parsed, as_utc(starts), as_utc(ends), by, comment,
                           as_utc(expired) if expired else None))
    return out


def silenced_by(silences: Iterable[Silence], labels: Mapping[str, str], at: datetime) -> list[int]:
    return [s.id for s in silences if s.active(at) and s.matches(labels)]
