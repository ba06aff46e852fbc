"""genobs.yaml: typed sections, errors that name the key, `genobs config show` with secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genobs.cli import app
from genobs.config import ConfigError, load_config


def test_sections_are_typed_and_unknown_keys_are_named(tmp_path: Path) -> None:
    good = tmp_path / "genobs.yaml"
    good.write_text("server: {evaluate_interval_s: 5}\nslo: {evaluate_interval_s: 10}\nui: {port: 9501}\n"
                    "evaluators: {enabled: [hallucination]}\n")
    config = load_config(good)
    assert (config.server.evaluate_interval_s, config.slo.evaluate_interval_s, config.ui.port) == (5, 10, 9501)
    assert config.evaluators.enabled == ["hallucination"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {evaluate_intervall_s: 5}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: server.evaluate_intervall_s: Extra inputs"):
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("alerting: {}\n")
    with pytest.raises(ConfigError, match="alerting"):
        load_config(unknown)


def test_config_show_prints_effective_values_with_secrets_masked(tmp_path: Path) -> None:
    path = tmp_path / "genobs.yaml"
    path.write_text("server: {port: 9090, ingest_token_env: MY_TOKEN}\n"
                    "evaluators: {clip: {model: ViT-B-32, api_key: sk-live-123}}\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["server"]["port"] == 9090 and shown["server"]["ingest_token_env"] == "MY_TOKEN"
    assert shown["slo"]["evaluate_interval_s"] == 30.0                 # defaults of unset sections too
    assert shown["evaluators"]["clip"] == {"model": "ViT-B-32", "api_key": "***"}
    assert "sk-live-123" not in result.output
