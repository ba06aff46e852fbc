"""The dependency rule (DESIGN §1), read from the source with ast, and the import guard.

- Domain packages (collectors, evaluators, slo, dashboards, sample_data) import the shell
  (genobs) and never each other; slo reads the evaluators' scores through the store.
- Nothing imports a domain package by its folder name (`import collectors`): only as
  genobs.collectors, the name it is installed under.
- In the shell, only the wiring (genobs/cli.py, runtime.py, wiring.py, demo.py and
  genobs/commands/) imports domain packages.

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.import_guard import DOMAIN_PACKAGES

REPO = Path(__file__).resolve().parents[1]
SHELL_WIRING = {"genobs.cli", "genobs.runtime", "genobs.wiring", "genobs.demo"}
SHELL_WIRING_PACKAGES = ("genobs.commands",)
# (importing domain, imported domain) pairs the design allows. None: slo reads scores via SQL.
ALLOWED_BETWEEN_DOMAINS: set[tuple[str, str]] = set()


def package_dirs() -> dict[str, Path]:
    """Package name -> folder, from pyproject's [tool.setuptools.package-dir] (what installs)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: REPO / folder for name, folder in config["package-dir"].items()}


def modules() -> dict[str, Path]:
    """Every module of the distribution by its installed name (genobs.slo.x -> slo/x.py)."""
    found: dict[str, Path] = {}
    for package, folder in package_dirs().items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


@dataclass(frozen=True)
class Import:
    target: str
    line: int


def imports_of(module: str, source: str, is_package: bool = False) -> list[Import]:
    """Absolute names imported by ``module`` (relative imports resolved)."""
    package = module if is_package else module.rpartition(".")[0]
    out: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            # `from genobs import slo` imports genobs.slo: name each imported member too
            out += [Import(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return out


def domain_of(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] == "genobs" and len(parts) > 1 and parts[1] in DOMAIN_PACKAGES:
        return parts[1]
    return None


def is_wiring(module: str) -> bool:
    return module in SHELL_WIRING or module.startswith(tuple(p + "." for p in SHELL_WIRING_PACKAGES)) \
        or module in SHELL_WIRING_PACKAGES


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """What ``module`` imports against the rule, as 'module:line imports X (why)'."""
    found = []
    importer = domain_of(module)
    for imp in imports_of(module, source, is_package):
        top = imp.target.partition(".")[0]
        imported = domain_of(imp.target)
        if top in DOMAIN_PACKAGES:
            why = f"a folder name; import genobs.{imp.target}"
        elif imported is None or imported == importer:
            continue
        elif importer is None and not is_wiring(module):
            why = "the shell imports domain packages only in its wiring (cli, runtime, wiring, demo, commands)"
        elif importer is not None and (importer, imported) not in ALLOWED_BETWEEN_DOMAINS:
            why = f"domain packages never import each other ({importer} -> {imported})"
        else:
            continue
        found.append(f"{module}:{imp.line} imports {imp.target} ({why})")
    return found


def test_the_checker_finds_each_kind_of_violation() -> None:
    assert violations("genobs.slo.rules", "from genobs.evaluators import clip\n") == [
        "genobs.slo.rules:1 imports genobs.evaluators.clip (domain packages never import each other (slo -> evaluators))"]
    assert violations("genobs.slo.rules", "def f():\n    from ..evaluators.clip import x\n")[0].startswith(
        "genobs.slo.rules:2 imports genobs.evaluators.clip.x")
    assert violations("genobs.collectors.files", "import evaluators.clip\n")[0].endswith(
        "(a folder name; import genobs.evaluators.clip)")
    assert violations("genobs.store", "from genobs import slo\n")[0].startswith("genobs.store:1 imports genobs.slo")
    assert violations("genobs.cli", "from genobs.slo import engine\n") == []
    assert violations("genobs.commands.slo", "from genobs.slo import engine\n") == []
    assert violations("genobs.slo", "from . import engine\nfrom genobs.store import Store\n", is_package=True) == []


def test_domain_packages_import_only_the_shell_and_the_shell_only_in_its_wiring() -> None:
    found = modules()
    assert {"genobs.cli", "genobs.store", "genobs.collectors.pipeline", "genobs.evaluators.clip",
            "genobs.sample_data.generate"} <= set(found)
    bad = []
    for name, path in sorted(found.items()):
        bad += violations(name, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py")
    assert bad == []


def test_shell_modules_that_import_domain_packages_are_wiring() -> None:
    """Lists them, so a reviewer sees where the shell reaches into the domain packages."""
    wiring = sorted(
        name for name, path in modules().items()
        if domain_of(name) is None
        and any(domain_of(i.target) for i in imports_of(name, path.read_text(encoding="utf-8"), path.name == "__init__.py"))
    )
    assert wiring and all(is_wiring(name) for name in wiring), wiring


def test_a_top_level_domain_import_fails_instead_of_loading_a_second_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the guard, Python run from the checkout loads the folder as a package of its own.
    second_copy = subprocess.run([sys.executable, "-c", "import collectors; print(collectors.__name__)"],
                                 cwd=REPO, capture_output=True, text=True, timeout=60)
    assert second_copy.stdout.strip() == "collectors"

    monkeypatch.syspath_prepend(str(REPO))  # as when pytest runs from the checkout
    for name in DOMAIN_PACKAGES:
        assert (REPO / name / "__init__.py").is_file()
        for module in (name, f"{name}.anything"):
            with pytest.raises(ImportError, match=rf"import genobs\.{name} instead"):
                importlib.import_module(module)
        assert name not in sys.modules
    assert importlib.import_module("genobs.collectors").__name__ == "genobs.collectors"
