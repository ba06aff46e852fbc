"""canary.yaml: which arms to compare, over which window, on which metrics, with which bounds.

Every key is optional: with no file, ``default_spec()`` judges latency, TTFT, output tokens,
cost, error rate, hallucination score and label rate, CLIP score and safety-flag rate, so
``genobs canary --baseline variant=baseline --canary variant=canary`` works as is.

Ratios are canary / baseline: ``allowed_increase: 1.05`` lets the canary be 5 % higher
before a significant difference counts as High. ``critical_increase`` is the ratio at which
a High fails the whole run even when the metric is not marked ``critical``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Direction = Literal["increase", "decrease", "either"]

# Sample fields an arm selector or filter may name (all plain columns of ``samples``).
SELECTOR_FIELDS = ("service", "model", "model_version", "variant", "tenant", "region", "modality")
# Numeric columns of ``samples`` a continuous metric may read.
NUMERIC_COLUMNS = ("latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "feedback")
# Columns a proportion metric may count events on.
EVENT_COLUMNS = ("status", "error_type", "safety_flagged", "cache_hit", "feedback", "modality")
DEFAULT_PATH = "canary.yaml"


class CanaryConfigError(ValueError):
    """A canary.yaml or selector problem; the message names the file and key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MetricSpec(_Model):
    """One metric to judge."""

    name: str = Field(description="name shown in reports (unique)")
    kind: Literal["continuous", "proportion"] = "continuous"
    column: str | None = Field(default=None, description="samples column: the value (continuous) or "
                               "the column whose values in `events` count as events (proportion)")
    score: str | None = Field(default=None, description="scores.metric to read instead of a samples column "
                              "(value for continuous; label in `events` for proportion)")
    reference_model: str | None = Field(default=None, description="scores.reference_model; default: the "
                                        "one that scored this metric last")
    events: list[Any] | None = Field(default=None, description="proportion: values that count as an event")
    statuses: list[str] | None = Field(default=None, description="only samples with these statuses "
                                       "(default: all)")
    direction: Direction = Field(default="increase", description="which change is bad")
    effect: Literal["mean_ratio", "cles"] = Field(
        default="mean_ratio", description="effect size: canary mean / baseline mean, or the common-language "
        "effect size P(canary > baseline) (bounds then are probabilities around 0.5)")
    allowed_increase: float = Field(default=1.1, gt=0)
    allowed_decrease: float = Field(default=0.9, gt=0)
    critical_increase: float | None = Field(default=None, gt=0)
    critical_decrease: float | None = Field(default=None, gt=0)
    min_difference: float = Field(default=0.0, ge=0, description="proportion: smallest rate difference "
                                  "(absolute, e.g. 0.005 = 0.5 points) that can count as High/Low")
    critical: bool = Field(default=False, description="a High/Low here fails the run")
    must_have_data: bool = Field(default=False, description="no data here makes the run inconclusive")
    require_power: bool | None = Field(
        default=None, description="Pass only with enough samples to detect the allowed change at `power` "
        "(default: on for proportions, off for continuous metrics)")
    group: str = "default"
    nan_strategy: Literal["remove", "zero"] = Field(default="remove", description="missing/NaN values: "
                                                    "dropped, or counted as 0")
    outliers: Literal["keep", "iqr"] = Field(default="keep", description="iqr: drop values beyond "
                                             "`outlier_factor` IQRs from the quartiles (Kayenta: 3.0)")
    outlier_factor: float = Field(default=3.0, gt=0)
    kayenta_tolerance: float | None = Field(
        default=None, ge=0, description="Kayenta's rule: a High/Low also needs the interval to clear "
        "this fraction of |estimate| (Kayenta: 0.25); off by default")

    @model_validator(mode="after")
    def _check(self) -> "MetricSpec":
        if (self.column is None) == (self.score is None):
            raise ValueError(f"metric {self.name!r}: set exactly one of `column` or `score`")
        if self.column is not None:
            allowed = NUMERIC_COLUMNS if self.kind == "continuous" else EVENT_COLUMNS
            if self.column not in allowed:
                raise ValueError(f"metric {self.name!r}: column {self.column!r} is not one of "
                                 f"{', '.join(allowed)} for a {self.kind} metric")
        if self.kind == "proportion" and not self.events:
            raise ValueError(f"metric {self.name!r}: a proportion metric needs `events`")
        if self.effect == "cles":
            for key in ("allowed_increase", "allowed_decrease", "critical_increase", "critical_decrease"):
                value = getattr(self, key)
                if value is not None and not 0 < value < 1:
                    raise ValueError(f"metric {self.name!r}: with effect cles, {key} is a probability in (0, 1)")
        if self.allowed_decrease > self.allowed_increase:
            raise ValueError(f"metric {self.name!r}: allowed_decrease is above allowed_increase")
        return self

    @property
    def power_required(self) -> bool:
        return self.kind == "proportion" if self.require_power is None else self.require_power


class Thresholds(_Model):
    pass_: float = Field(default=95.0, alias="pass", ge=0, le=100)
    marginal: float = Field(default=75.0, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> "Thresholds":
        if self.marginal > self.pass_:
            raise ValueError("thresholds: marginal is above pass")
        return self


class ExitCodes(_Model):
    marginal: Literal[0, 1, 3] = 3
    inconclusive: Literal[0, 1, 3] = 3


class CanarySpec(_Model):
    """canary.yaml."""

    baseline: str | None = Field(default=None, description="arm selector, e.g. variant=baseline")
    canary: str | None = Field(default=None, description="arm selector, e.g. variant=canary")
    filter: dict[str, str] = Field(default_factory=dict, description="applies to both arms (service, model)")
    window: str = Field(default="1h", description="judge the last WINDOW when --since is not given")
    min_samples: int = Field(default=50, ge=1, description="per arm and metric, below: inconclusive")
    confidence: float = Field(default=0.98, gt=0.5, lt=1)
    power: float = Field(default=0.8, gt=0.5, lt=1, description="for the samples-needed figure")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    groups: dict[str, float] = Field(default_factory=dict, description="group weights (percent); groups "
                                     "without a weight share what is left equally")
    nodata_share: float = Field(default=0.5, gt=0, le=1, description="this share of metrics with no data "
                                "makes the run inconclusive (Kayenta: 0.5)")
    exit_codes: ExitCodes = Field(default_factory=ExitCodes)
    metrics: list[MetricSpec] = Field(default_factory=lambda: default_metrics())

    @field_validator("filter")
    @classmethod
    def _filter_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in SELECTOR_FIELDS:
                raise ValueError(f"filter: {key!r} is not one of {', '.join(SELECTOR_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> "CanarySpec":
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metrics: names must be unique ({', '.join(dupes)})")
        if not self.metrics:
            raise ValueError("metrics: at least one metric")
        return self


def default_metrics() -> list[MetricSpec]:
    """The defaults: what users of an LLM or image service feel, in four groups.

    Latency-type metrics must not get slower by more than 5 % (a 15 % regression is caught
    at 200 samples per arm: bench/bench_canary.py); quality and safety are critical (a
    significant rise fails the run) and need enough samples to detect the allowed rise.
    """
    ok = ["ok"]
    return [
        MetricSpec(name="latency_ms", column="latency_ms", statuses=ok, group="latency",
                   allowed_increase=1.05, critical_increase=1.5, must_have_data=True),
        MetricSpec(name="ttft_ms", column="ttft_ms", statuses=ok, group="latency",
                   allowed_increase=1.05, critical_increase=1.5),
        MetricSpec(name="output_tokens", column="output_tokens", statuses=ok, group="cost", direction="either",
                   allowed_increase=1.15, allowed_decrease=0.85),
        MetricSpec(name="cost_usd", column="cost_usd", statuses=ok, group="cost",
                   allowed_increase=1.1, critical_increase=2.0),
        MetricSpec(name="error_rate", kind="proportion", column="status", events=["error", "timeout"],
                   group="errors", allowed_increase=1.5, min_difference=0.005, critical=True),
        MetricSpec(name="hallucination_score", score="hallucination_score", group="quality",
                   allowed_increase=1.1, critical=True),
        MetricSpec(name="hallucination_rate", kind="proportion", score="hallucination_score",
                   events=["hallucinated"], group="quality", allowed_increase=1.5, min_difference=0.02,
                   critical=True),
        MetricSpec(name="clip_score", score="clip_score", group="quality", direction="decrease",
                   allowed_decrease=0.95, critical=True),
        MetricSpec(name="safety_flag_rate", kind="proportion", column="safety_flagged", events=[True],
                   group="quality", allowed_increase=1.5, min_difference=0.005, critical=True),
    ]


def default_spec() -> CanarySpec:
    return CanarySpec()


def kayenta_spec(base: CanarySpec | None = None) -> CanarySpec:
    """``base`` judged as Kayenta's NetflixACAJudge does by default: confidence 0.98, allowed
    change 1.1 / 0.9 on every metric, either direction, the 0.25 tolerance on the interval,
    IQR outlier removal (factor 3), no critical metrics, no power requirement."""
    base = base or default_spec()
    metrics = [m.model_copy(update=dict(direction="either", allowed_increase=1.1, allowed_decrease=0.9,
                                         critical=False, critical_increase=None, critical_decrease=None,
                                         require_power=False, kayenta_tolerance=0.25, effect="mean_ratio",
                                         min_difference=0.0,
                                         outliers="iqr" if m.kind == "continuous" else "keep"))
               for m in base.metrics]
    return base.model_copy(update=dict(confidence=0.98, metrics=metrics, min_samples=1))


def load_spec(path: str | Path | None) -> CanarySpec:
    """canary.yaml at ``path``, else ./canary.yaml when it exists, else the defaults."""
    chosen = Path(path) if path else (Path(DEFAULT_PATH) if Path(DEFAULT_PATH).exists() else None)
    if chosen is None:
        return default_spec()
    try:
        data = yaml.safe_load(chosen.read_text())
    except FileNotFoundError:
        raise CanaryConfigError(f"{chosen}: canary config not found") from None
    except yaml.YAMLError as exc:
        raise CanaryConfigError(f"{chosen}: not valid YAML: {exc}") from None
    return spec_from_mapping(data or {}, source=str(chosen))


def spec_from_mapping(data: Any, *, source: str = "canary config") -> CanarySpec:
    if not isinstance(data, dict):
        raise CanaryConfigError(f"{source}: expected a mapping at the top level")
    try:
        return CanarySpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise CanaryConfigError(f"{source}: {problems}") from None


def parse_selector(text: str, *, what: str = "selector") -> dict[str, str]:
    """``variant=canary`` or ``service=chat-api,model_version=v1.6`` -> {field: value}."""
    result: dict[str, str] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        field, sep, value = part.partition("=")
        field, value = field.strip(), value.strip()
        if not sep or not field or not value:
            raise CanaryConfigError(f"{what} {text!r}: expected FIELD=VALUE[,FIELD=VALUE...]")
        if field not in SELECTOR_FIELDS:
            raise CanaryConfigError(f"{what} {text!r}: {field!r} is not one of {', '.join(SELECTOR_FIELDS)}")
        result[field] = value
    if not result:
        raise CanaryConfigError(f"{what}: empty selector (e.g. variant=canary or model_version=v1.6)")
    return result
