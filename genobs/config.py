"""genobs.yaml: every key optional, defaults documented here and in docs/config.md.

Looked up at --config, then GENOBS_CONFIG, then ./genobs.yaml. Secrets never come from
this file: tokens and routing keys are read from the environment variables it names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_CONFIG_FILE = "genobs.yaml"


class ConfigError(Exception):
    pass


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelPriceConfig(_Section):
    input_per_mtok: float = Field(ge=0, description="USD per million input tokens")
    output_per_mtok: float = Field(ge=0, description="USD per million output tokens")


class IngestConfig(_Section):
    redact: bool = True
    prices: dict[str, ModelPriceConfig] = Field(
        default_factory=dict, description="per model; used when a sample has no cost_usd"
    )


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 32 * 1024 * 1024
    ingest_token_env: str = "GENOBS_INGEST_TOKEN"
    evaluate_interval_s: float = 60.0
    drift_interval_s: float = 3600.0
    gpu_poll_interval_s: float = 15.0
    poll_nvml: bool = False
    dcgm_urls: list[str] = Field(default_factory=list)
    max_label_series: int = Field(
        default=2000, ge=1, description="label sets per Prometheus metric family before folding into __other__"
    )
    duckdb_threads: int | None = Field(
        default=None, ge=1, description="DuckDB worker threads in `genobs serve`; default: CPUs - 1 (at least 1)"
    )


class ImagesConfig(_Section):
    root: str | None = Field(default=None, description="where relative image paths point; default: the DB's folder")
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000


class EvaluatorsConfig(_Section):
    """``evaluators:`` — the runner and the reference models (docs/evaluators.md). The
    per-evaluator sections (``clip``, ``hallucination``) are checked by the evaluator that
    reads them, which names the key in its error."""

    enabled: list[str] | None = Field(default=None, description="default: every evaluator")
    device: str = Field(default="auto", description="auto (CUDA when present), cpu or cuda[:N]")
    batch_size: int | None = Field(default=None, ge=1, description="default: per evaluator")
    num_workers: int | None = Field(default=None, ge=0, description="image decoding workers")
    clip: dict[str, Any] = Field(default_factory=dict)
    hallucination: dict[str, Any] = Field(default_factory=dict)


class SloConfig(_Section):
    """``slo:`` — the SLO engine (DESIGN §6). Owned by genobs.slo."""

    file: str | None = Field(default=None, description="SLO spec YAML; default ./slo.yaml when it exists")
    evaluate_interval_s: float = Field(default=30.0, gt=0, description="how often `genobs serve` evaluates SLOs")
    external_url: str | None = Field(
        default=None, description="dashboard URL put in notifications (generatorURL, Slack links); default: the UI's URL"
    )


class ReceiverConfig(_Section):
    """One place alerts go. Secrets are never here: only the NAMES of environment variables."""

    name: str = Field(min_length=1, description="receiver name (in the outbox and metrics)")
    type: Literal["webhook", "alertmanager", "pagerduty", "slack"]
    url: str | None = Field(default=None, description="endpoint (webhook; Alertmanager base URL; PagerDuty events URL)")
    url_env: str | None = Field(default=None, description="env var holding the URL when it is a secret (Slack)")
    hmac_secret_env: str | None = Field(
        default=None, description="webhook: env var holding the HMAC-SHA256 key; signs the body (X-Genobs-Signature)"
    )
    routing_key_env: str | None = Field(default=None, description="pagerduty: env var holding the routing key")
    match: dict[str, str | list[str]] = Field(
        default_factory=dict, description="route only alerts whose labels have these values (e.g. severity: page)"
    )
    group_by: list[str] = Field(default_factory=lambda: ["service"], description="labels that group alerts into one message")
    max_alerts: int = Field(default=0, ge=0, description="webhook: at most this many alerts per message (0: all)")
    send_resolved: bool = True
    timeout_s: float = Field(default=10.0, gt=0)


class NotifiersConfig(_Section):
    """``notifiers:`` — where alerts go (DESIGN §6). Secrets are named by environment variable."""

    receivers: list[ReceiverConfig] = Field(default_factory=list)
    drain_interval_s: float = Field(default=5.0, gt=0, description="how often the outbox is drained")
    max_attempts: int = Field(default=12, ge=1, description="deliveries tried before a notification is given up")
    backoff_initial_s: float = Field(default=2.0, gt=0, description="first retry delay; doubles per attempt, with jitter")
    backoff_max_s: float = Field(default=600.0, gt=0, description="longest retry delay")


class CanaryConfig(_Section):
    """``canary:`` — the canary judge (DESIGN §7)."""

    file: str | None = Field(default=None, description="canary.yaml; default ./canary.yaml when it exists")
    analysis_poll_s: float = Field(default=30.0, gt=0, description="how often `genobs serve` advances "
                                   "continuous canary analyses that are due")


class UiConfig(_Section):
    """``ui:`` — the Streamlit dashboards (DESIGN §8)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8501
    token_env: str = Field(default="GENOBS_UI_TOKEN", description="env var holding the UI access token")


class GenobsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    evaluators: EvaluatorsConfig = Field(default_factory=EvaluatorsConfig)
    slo: SloConfig = Field(default_factory=SloConfig)
    notifiers: NotifiersConfig = Field(default_factory=NotifiersConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)
    ui: UiConfig = Field(default_factory=UiConfig)

    source: Path | None = Field(default=None, exclude=True)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("GENOBS_CONFIG")
    if env:
        return Path(env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_config(explicit: str | os.PathLike[str] | None = None) -> GenobsConfig:
    """The config at --config / GENOBS_CONFIG / ./genobs.yaml, or the defaults."""
    path = config_path(explicit)
    if path is None:
        return GenobsConfig()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    try:
        config = GenobsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    config.source = path
    return config


# Keys whose values are secrets wherever they appear. Secrets belong in the environment;
# this catches one put in the file by mistake.
_SECRET_KEY_PARTS = ("token", "secret", "password", "routing_key", "api_key", "webhook_url")


def masked(data: Any, key: str = "") -> Any:
    """``data`` with the values of secret-looking keys replaced by "***" (config show).
    Names of environment variables (keys ending in ``_env``) are not secrets and stay."""
    if isinstance(data, dict):
        return {k: masked(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v, key) for v in data]
    lowered = key.lower()
    if data is not None and not lowered.endswith("_env") and any(part in lowered for part in _SECRET_KEY_PARTS):
        return "***"
    return data


def effective_config(config: GenobsConfig) -> dict[str, Any]:
    """Every section with its effective values, secrets masked."""
    return masked(config.model_dump(mode="json"))
