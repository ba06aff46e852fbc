"""Each SLI as SQL: which samples are events and which of them are good.

A *series* is what a rollup stores per minute: ``total`` events, ``good`` events and, for
spend, ``value`` (dollars). The SQL fragments here read the ``samples`` table (alias ``s``)
and, for quality SLIs, one score per sample (alias ``q<N>``, the worst score when several
reference models scored it). Values are bound as parameters; only the ``ratio`` SLI's
predicates are SQL text from the spec (trusted configuration).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from genobs.slo.spec import SloSpec, SpendSpec, series_definition, series_key


@dataclass(frozen=True)
class ScoreJoin:
    """One score per sample: max (worst) for good_below metrics, min for good_above."""

    metric: str
    reference_model: str | None
    worst: str  # "max" | "min"


# Predicates the rollup build recognises: a series limited to one service, and a quality
# series' "the sample has a score" ("{q}" is the alias of its score join).
SERVICE_SQL = "s.service = ?"
SCORED_SQL = "{q}.v IS NOT NULL"


@dataclass
class Fragment:
    sql: str
    params: list[Any] = field(default_factory=list)
    # The atomic predicates this one is the AND of (empty: it is atomic). The rollup build
    # evaluates each distinct atom once per sample and combines them per series, instead
    # of evaluating, e.g., the service filter once for every series.
    parts: tuple["Fragment", ...] = ()

    def atoms(self) -> tuple["Fragment", ...]:
        return self.parts or (self,)

    def atom_key(self) -> tuple[str, str]:
        return (self.sql, repr(self.params))


@dataclass
class SeriesSql:
    """How one series is computed (``source`` is "samples" or "drift")."""

    key: str
    definition: dict[str, Any]
    source: str
    total: Fragment               # predicate: the row is an event
    good: Fragment                # predicate: the event is good (ANDed with total)
    value: str | None = None      # summed column (spend)
    score: ScoreJoin | None = None


def _scope(service: str | None, filters: list[tuple[str, list[str]]]) -> Fragment:
    atoms: list[Fragment] = []
    if service is not None:
        atoms.append(Fragment(SERVICE_SQL, [service]))
    for column, values in filters:
        # IN (?, ?) rather than IN (SELECT unnest(?)): a subquery inside an aggregate's
        # FILTER becomes a join per series and makes a rollup build ~10x slower.
        atoms.append(Fragment(f"s.{column} IN ({', '.join('?' * len(values))})", list(values)))
    if not atoms:
        return Fragment("TRUE")
    if len(atoms) == 1:
        return atoms[0]
    return Fragment(" AND ".join(a.sql for a in atoms), [p for a in atoms for p in a.params], parts=tuple(atoms))


def _and(*fragments: Fragment) -> Fragment:
    return Fragment(" AND ".join(f"({f.sql})" for f in fragments), [p for f in fragments for p in f.params],
                    parts=tuple(atom for f in fragments for atom in f.atoms()))


def series_for_slo(spec: SloSpec) -> SeriesSql:
    sli = spec.sli
    key = series_key(spec)
    definition = series_definition(spec)
    scope = _scope(spec.service, spec.filter.items())
    if sli.kind == "drift":
        # Events are drift runs of the service (rows of drift_results, alias d).
        return SeriesSql(
            key, definition, "drift",
            total=Fragment("d.feature = ? AND d.service = ? AND d.drift_score IS NOT NULL", [sli.feature, spec.service]),
            good=Fragment("d.drift_score < ?", [sli.good_below]),
        )
    score = None
    if sli.kind == "availability":
        total = scope
        bad = list(sli.bad_statuses)
        good = Fragment(f"s.status NOT IN ({', '.join('?' * len(bad))})", bad) if bad else Fragment("TRUE")
    elif sli.kind in ("latency", "ttft"):
        column = "latency_ms" if sli.kind == "latency" else "ttft_ms"
        total = _and(scope, Fragment(f"s.{column} IS NOT NULL"))
        good = Fragment(f"s.{column} <= ?", [sli.threshold_ms])
    elif sli.kind == "quality":
        score = ScoreJoin(sli.metric, sli.reference_model, "max" if sli.good_below is not None else "min")
        # "{q}" is replaced by the alias of this score join in the combined query.
        total = _and(scope, Fragment(SCORED_SQL))
        good = (Fragment("{q}.v < ?", [sli.good_below]) if sli.good_below is not None
                else Fragment("{q}.v > ?", [sli.good_above]))
    elif sli.kind == "safety":
        total = scope
        good = Fragment("NOT coalesce(s.safety_flagged, FALSE)")
    elif sli.kind == "ratio":
        # Trusted config: the predicates are SQL over the samples columns, as written.
        total = _and(scope, Fragment(sli.total))
        good = Fragment(sli.good)
    else:  # pragma: no cover - the spec's discriminator admits no other kind
        raise ValueError(f"unknown SLI kind {sli.kind!r}")
    return SeriesSql(key, definition, "samples", total=total, good=good, score=score)


def series_for_spend(spend: SpendSpec) -> SeriesSql:
    filters = [("tenant", [spend.tenant])] if spend.tenant is not None else []
    scope = _scope(spend.service, filters)
    definition = {"spend": {"service": spend.service, "tenant": spend.tenant}}
    key = "spend-" + hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]
    return SeriesSql(key, definition, "samples", total=scope, good=Fragment("FALSE"), value="s.cost_usd")
