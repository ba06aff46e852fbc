"""`genobs --help` lists the commands, and every command's `--help` shows an example
(DESIGN §4)."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from genobs.cli import app


def command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command that does something, e.g. ("slo", "check"); groups (which have a
    ``commands`` dict) are walked, not listed."""
    paths = []
    for name, command in (getattr(group, "commands", None) or {}).items():
        if command.hidden:
            continue
        if getattr(command, "commands", None):
            paths += command_paths(command, prefix + (name,))
        else:
            paths.append(prefix + (name,))
    return paths


COMMANDS = command_paths(typer.main.get_command(app))
assert ("init",) in COMMANDS and ("ingest",) in COMMANDS


def test_top_level_help_lists_the_commands_and_where_data_lives() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("init", "ingest"):
        assert name in result.output
    for path in COMMANDS:
        assert path[0] in result.output
    assert "--db" in result.output and "genobs.duckdb" in result.output
    assert "genobs demo" in result.output          # where to start


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_help_shows_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`genobs {' '.join(path)} --help` has no example"
    assert f"genobs {' '.join(path)}" in result.output
