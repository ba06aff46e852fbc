"""SLO spec files (YAML, modelled on Sloth and OpenSLO; DESIGN §6).

```yaml
defaults:                      # optional: applied to every SLO's alerting
  alerting: {min_events: 10, repeat_interval: 4h}
slos:
  - name: chat-availability
    service: chat-api
    objective: 99.9            # percent
    window: 28d                # rolling, any Nd / Nw
    sli: {kind: availability}
    filter: {model: chat-large}
spend:                         # spend alerts (tickets)
  - name: chat-spend
    service: chat-api
    daily_budget_usd: 40
```

Errors name the file, the line, the SLO and the key (``slo.yaml:12: slo 'chat-latency':
sli.threshold_ms: field required``).

The ``ratio`` SLI's ``good`` and ``total`` are SQL predicates over the samples table's
columns. They are run as written: a spec file is trusted configuration, like code.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genobs.slo.catalogs import CatalogError, WindowCatalog, catalog_for, load_catalog_file, parse_catalog
from genobs.slo.timeutil import TimeParseError, parse_duration


class SpecError(ValueError):
    """A spec that cannot be used; the message names file, line, SLO and key."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
# Label names as Prometheus and Alertmanager accept them.
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_duration(value: Any, *, multiple_of_day: bool = False) -> str:
    text = str(value).strip()
    try:
        span = parse_duration(text)
    except (TimeParseError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if span <= timedelta(0):
        raise ValueError(f"{text!r}: must be positive")
    if multiple_of_day and span % timedelta(days=1):
        raise ValueError(f"{text!r}: a rolling SLO window is a whole number of days (e.g. 7d, 28d, 30d)")
    return text


# ----------------------------------------------------------------------------- SLIs


class AvailabilitySli(_Model):
    """Good: status is not error or timeout (a content filter's refusal is the service working)."""

    kind: Literal["availability"]
    bad_statuses: list[str] = Field(default_factory=lambda: ["error", "timeout"])


class LatencySli(_Model):
    """Good: latency_ms <= threshold_ms, among samples that have a latency (timeouts count as slow)."""

    kind: Literal["latency"]
    threshold_ms: float = Field(gt=0)


class TtftSli(_Model):
    """Good: ttft_ms <= threshold_ms, among samples that have a time to first token."""

    kind: Literal["ttft"]
    threshold_ms: float = Field(gt=0)


class QualitySli(_Model):
    """Good: the sample's score on ``metric`` is below ``good_below`` (or above ``good_above``).

    Samples without that score are not events. With several reference models scoring the
    same metric, the worst score counts unless ``reference_model`` picks one."""

    kind: Literal["quality"]
    metric: str = Field(min_length=1)
    good_below: float | None = None
    good_above: float | None = None
    reference_model: str | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> "QualitySli":
        if (self.good_below is None) == (self.good_above is None):
            raise ValueError("give exactly one of good_below and good_above")
        return self


class SafetySli(_Model):
    """Good: the answer was not safety-flagged."""

    kind: Literal["safety"]


class DriftSli(_Model):
    """Events: drift runs (rows of drift_results for ``feature``); good: drift_score below ``good_below``."""

    kind: Literal["drift"]
    feature: str = "dataset"
    good_below: float = Field(default=0.5, gt=0)


class RatioSli(_Model):
    """Trusted SQL predicates over the samples table's columns (run as written)."""

    kind: Literal["ratio"]
    good: str = Field(min_length=1)
    total: str = "TRUE"

    @field_validator("good", "total")
    @classmethod
    def _one_expression(cls, value: str) -> str:
        if ";" in value:
            raise ValueError("a predicate is one SQL expression (no ';')")
        return value


Sli = Annotated[
    Union[AvailabilitySli, LatencySli, TtftSli, QualitySli, SafetySli, DriftSli, RatioSli],
    Field(discriminator="kind"),
]

SLI_KINDS = ("availability", "latency", "ttft", "quality", "safety", "drift", "ratio")


# ----------------------------------------------------------------------------- alerting

FilterValue = Union[str, list[str]]


class SliFilter(_Model):
    model: FilterValue | None = None
    model_version: FilterValue | None = None
    variant: FilterValue | None = None
    tenant: FilterValue | None = None
    region: FilterValue | None = None

    def items(self) -> list[tuple[str, list[str]]]:
        out = []
        for key in ("model", "model_version", "variant", "tenant", "region"):
            value = getattr(self, key)
            if value is not None:
                out.append((key, [value] if isinstance(value, str) else list(value)))
        return out


class AlertingSpec(_Model):
    """Per SLO (or under ``defaults.alerting``). Durations in the one time grammar."""

    page: bool = True
    ticket: bool = True
    windows: str | dict[str, Any] | None = Field(
        default=None, description="a window catalog: a file path, a shipped period (30d, 28d, 7d) or inline"
    )
    min_events: int = Field(default=10, ge=0, description="events needed in the long window to alert")
    min_short_events: int = Field(default=1, ge=0, description="events needed in the short window")
    page_for: str = "0s"
    ticket_for: str = "0s"
    repeat_interval: str = "4h"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("page_for", "ticket_for", "repeat_interval")
    @classmethod
    def _durations(cls, value: Any) -> str:
        text = str(value).strip()
        if text in ("0", "0s"):
            return "0s"
        return _check_duration(text)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _LABEL.match(key):
                raise ValueError(f"{key!r} is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
        return value


class SloSpec(_Model):
    name: str
    service: str = Field(min_length=1)
    objective: float = Field(gt=0, lt=100, description="percent of good events, e.g. 99.9")
    window: str = "30d"
    sli: Sli
    filter: SliFilter = Field(default_factory=SliFilter)
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    alerting: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r}: use letters, digits and - _ . : (at most 128)")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: Any) -> str:
        return _check_duration(value, multiple_of_day=True)

    @property
    def window_span(self) -> timedelta:
        return parse_duration(self.window)

    @property
    def target(self) -> float:
        """The objective as a ratio (99.9 -> 0.999)."""
        return self.objective / 100.0

    @property
    def error_budget(self) -> float:
        # Rounded: 1 - 0.999 is 0.0010000000000000009 in binary floating point.
        return round((100.0 - self.objective) / 100.0, 12)


class SpendSpec(_Model):
    """Spend alerts (tickets): a daily budget, and a day-over-day increase."""

    name: str
    service: str | None = None
    tenant: str | None = None
    daily_budget_usd: float | None = Field(default=None, gt=0)
    day_over_day_pct: float | None = Field(default=20.0, gt=0, description="alert when the last 24h spent this much more than the 24h before")
    min_spend_usd: float = Field(default=1.0, ge=0, description="no anomaly alert below this spend (last 24h)")
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r}: use letters, digits and - _ . : (at most 128)")
        return value


class Defaults(_Model):
    alerting: dict[str, Any] = Field(default_factory=dict)


class SpecFile(_Model):
    slos: list[SloSpec] = Field(default_factory=list)
    spend: list[SpendSpec] = Field(default_factory=list)
    defaults: Defaults = Field(default_factory=Defaults)


# ----------------------------------------------------------------------------- resolved


@dataclass(frozen=True)
class Slo:
    """An SLO ready to evaluate: its spec, alerting settings, window catalog and series key."""

    spec: SloSpec
    alerting: AlertingSpec
    catalog: WindowCatalog

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def series(self) -> str:
        return series_key(self.spec)


@dataclass(frozen=True)
class Spec:
    slos: tuple[Slo, ...]
    spend: tuple[SpendSpec, ...]
    source: str

    def slo(self, name: str) -> Slo:
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(name)


def series_key(spec: SloSpec) -> str:
    """What a rollup series is: the events (service, filter, SLI); not the objective or window,
    so changing those keeps the rollups."""
    definition = series_definition(spec)
    return spec.sli.kind + "-" + hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


def series_definition(spec: SloSpec) -> dict[str, Any]:
    return {"service": spec.service, "filter": dict(spec.filter.items()), "sli": spec.sli.model_dump()}


# ----------------------------------------------------------------------------- loading


def _line_index(text: str) -> dict[tuple[Any, ...], int]:
    """1-based line of each node, keyed by path (('slos', 2, 'sli') ...)."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[path + (key.value,)] = key.start_mark.line + 1
                walk(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, path + (index,))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


_SLI_TAGS = set(SLI_KINDS)


def _describe(source: str, data: Any, lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...], msg: str) -> str:
    # Drop the discriminator's tag pydantic puts in the path (sli.latency.threshold_ms).
    path = tuple(p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] == "sli" and p in _SLI_TAGS))
    line = None
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            line = lines[path[:cut]]
            break
    where = f"{source}:{line}" if line else source
    if len(path) >= 2 and path[0] in ("slos", "spend") and isinstance(path[1], int):
        items = data.get(path[0]) if isinstance(data, dict) else None
        name = None
        if isinstance(items, list) and path[1] < len(items) and isinstance(items[path[1]], dict):
            name = items[path[1]].get("name")
        what = "slo" if path[0] == "slos" else "spend alert"
        subject = f"{what} {name!r}" if name else f"{path[0]}[{path[1]}]"
        key = ".".join(str(p) for p in path[2:]) or "(entry)"
        return f"{where}: {subject}: {key}: {msg}"
    return f"{where}: {'.'.join(str(p) for p in path) or '(top level)'}: {msg}"


def resolve_alerting(spec: SloSpec, defaults: dict[str, Any], base_dir: Path | None) -> tuple[AlertingSpec, WindowCatalog]:
    merged = {**defaults, **spec.alerting}
    alerting = AlertingSpec.model_validate(merged)
    period = spec.window_span
    windows = alerting.windows
    if windows is None:
        catalog = catalog_for(period)
    elif isinstance(windows, dict):
        catalog = parse_catalog(windows, f"slo {spec.name!r} alerting.windows").for_period(period)
    else:
        path = Path(windows)
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        if path.exists():
            catalog = load_catalog_file(path).for_period(period)
        else:
            try:
                shipped = catalog_for(parse_duration(windows))
            except (TimeParseError, ValueError):
                raise CatalogError(f"alerting.windows: {windows!r} is neither a file nor a period such as 30d") from None
            catalog = shipped.for_period(period)
    return alerting, catalog


def parse_spec(text: str, source: str = "<spec>", base_dir: Path | None = None) -> Spec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping with a 'slos:' list at the top level")
    lines = _line_index(text)
    try:
        parsed = SpecFile.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(source, data, lines, tuple(err["loc"]), err["msg"]) for err in exc.errors()]
        raise SpecError("\n".join(problems)) from None
    problems: list[str] = []
    seen: set[str] = set()
    slos: list[Slo] = []
    for index, spec in enumerate(parsed.slos):
        if spec.name in seen:
            problems.append(_describe(source, data, lines, ("slos", index, "name"), f"duplicate SLO name {spec.name!r}"))
        seen.add(spec.name)
        try:
            alerting, catalog = resolve_alerting(spec, parsed.defaults.alerting, base_dir)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(_describe(source, data, lines, ("slos", index, "alerting", *err["loc"]), err["msg"]))
            continue
        except CatalogError as exc:
            problems.append(_describe(source, data, lines, ("slos", index, "alerting", "windows"), str(exc)))
            continue
        slos.append(Slo(spec=spec, alerting=alerting, catalog=catalog))
    spend_names: set[str] = set()
    for index, spend in enumerate(parsed.spend):
        if spend.name in spend_names:
            problems.append(_describe(source, data, lines, ("spend", index, "name"), f"duplicate spend alert name {spend.name!r}"))
        spend_names.add(spend.name)
        if spend.daily_budget_usd is None and spend.day_over_day_pct is None:
            problems.append(_describe(source, data, lines, ("spend", index), "give daily_budget_usd and/or day_over_day_pct"))
    if problems:
        raise SpecError("\n".join(problems))
    return Spec(slos=tuple(slos), spend=tuple(parsed.spend), source=source)


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: SLO spec file not found") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_spec(text, str(path), base_dir=path.parent)


def default_spec_path(configured: str | None) -> Path | None:
    """The configured spec (slo.file), else ./slo.yaml when it exists."""
    if configured:
        return Path(configured)
    default = Path("slo.yaml")
    return default if default.exists() else None
