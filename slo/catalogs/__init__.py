"""Burn-rate alert window catalogs: YAML data, one file per SLO period (like Sloth's).

A catalog names, per severity (page, ticket) and speed (quick, slow), a share of the error
budget and a long and a short window. The burn-rate factor is derived from them:
``factor = errorBudgetPercent / 100 * period / longWindow`` (the SRE Workbook's 14.4 is
2 % of a 30-day budget spent in one hour). An SLO whose period has no shipped catalog uses
the 30d windows with its own period in that formula, so 28 days gives 13.44 and 7 days 3.36.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from genobs.slo.timeutil import TimeParseError, format_duration, parse_duration

DEFAULT_PERIOD = "30d"
SEVERITIES = ("page", "ticket")
SPEEDS = ("quick", "slow")


class CatalogError(ValueError):
    """A window catalog that cannot be used (the message names the file and key)."""


@dataclass(frozen=True)
class AlertWindow:
    """One multiwindow burn-rate condition: burn > factor over both windows."""

    severity: str          # page | ticket
    speed: str             # quick | slow
    budget_percent: float  # share of the period's error budget this alert allows to spend
    short: timedelta
    long: timedelta
    factor: float

    @property
    def name(self) -> str:
        return f"{self.severity}-{self.speed}"


@dataclass(frozen=True)
class WindowCatalog:
    source: str
    period: timedelta            # the period the catalog was written for
    windows: tuple[AlertWindow, ...]

    def for_period(self, period: timedelta) -> "WindowCatalog":
        """The same windows with factors derived for ``period`` (budget share x period / long)."""
        return WindowCatalog(
            source=self.source, period=period,
            windows=tuple(
                AlertWindow(w.severity, w.speed, w.budget_percent, w.short, w.long,
                            derive_factor(w.budget_percent, period, w.long))
                for w in self.windows
            ),
        )

    def digest(self) -> str:
        text = ";".join(f"{w.name}:{w.budget_percent}:{w.short}:{w.long}" for w in self.windows)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def derive_factor(budget_percent: float, period: timedelta, long_window: timedelta) -> float:
    return budget_percent / 100.0 * (period / long_window)


def _duration(value: Any, where: str) -> timedelta:
    try:
        span = parse_duration(str(value))
    except (TimeParseError, ValueError) as exc:
        raise CatalogError(f"{where}: {exc}") from None
    if span <= timedelta(0):
        raise CatalogError(f"{where}: must be positive")
    return span


def parse_catalog(data: Any, source: str) -> WindowCatalog:
    """Read a catalog mapping (``kind: AlertWindows``; Sloth's own files read too)."""
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: expected a mapping with kind: AlertWindows and spec:")
    if data.get("kind", "AlertWindows") != "AlertWindows":
        raise CatalogError(f"{source}: kind: expected AlertWindows, got {data.get('kind')!r}")
    spec = data.get("spec", data)
    if not isinstance(spec, dict):
        raise CatalogError(f"{source}: spec: expected a mapping")
    if "sloPeriod" not in spec:
        raise CatalogError(f"{source}: spec.sloPeriod: missing (e.g. 30d)")
    period = _duration(spec["sloPeriod"], f"{source}: spec.sloPeriod")
    windows: list[AlertWindow] = []
    for severity in SEVERITIES:
        block = spec.get(severity)
        if not isinstance(block, dict):
            raise CatalogError(f"{source}: spec.{severity}: missing (quick: and slow: windows)")
        for speed in SPEEDS:
            where = f"{source}: spec.{severity}.{speed}"
            entry = block.get(speed)
            if not isinstance(entry, dict):
                raise CatalogError(f"{where}: missing (errorBudgetPercent, shortWindow, longWindow)")
            for key in ("errorBudgetPercent", "shortWindow", "longWindow"):
                if key not in entry:
                    raise CatalogError(f"{where}.{key}: missing")
            try:
                percent = float(entry["errorBudgetPercent"])
            except (TypeError, ValueError):
                raise CatalogError(f"{where}.errorBudgetPercent: expected a number") from None
            if not 0 < percent <= 100:
                raise CatalogError(f"{where}.errorBudgetPercent: must be in (0, 100]")
            short = _duration(entry["shortWindow"], f"{where}.shortWindow")
            long = _duration(entry["longWindow"], f"{where}.longWindow")
            if short >= long:
                raise CatalogError(f"{where}: shortWindow must be shorter than longWindow")
            windows.append(AlertWindow(severity, speed, percent, short, long, derive_factor(percent, period, long)))
    return WindowCatalog(source=source, period=period, windows=tuple(windows))


def load_catalog_file(path: str | Path) -> WindowCatalog:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalog(data, str(path))


def shipped_periods() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml"))


def shipped_catalog(period: str) -> WindowCatalog | None:
    resource = resources.files(__package__) / f"{period}.yaml"
    if not resource.is_file():
        return None
    return parse_catalog(yaml.safe_load(resource.read_text()), f"genobs.slo.catalogs/{period}.yaml")


def catalog_for(period: timedelta) -> WindowCatalog:
    """The shipped catalog for this period, else the 30d windows with factors for ``period``."""
    found = shipped_catalog(format_duration(period))
    if found is not None and found.period == period:
        return found
    default = shipped_catalog(DEFAULT_PERIOD)
    assert default is not None, "the 30d catalog ships with genobs"
    return default.for_period(period)
