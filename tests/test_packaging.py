"""The distribution: one wheel whose only top-level package is `genobs`, with the domain
packages inside it (genobs.collectors, ...), the demo data inside genobs/sample_data, and a
`genobs` console script that works from a fresh environment.

The wheel is built from a copy of the checkout (setuptools reuses build/, and a stale file
there would end up in the wheel), without build isolation: the test environment's setuptools
builds it, so no network is needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
JUNK = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              "*.duckdb", "*.duckdb.wal", "*.duckdb.server.json", "tests", "bench")


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(REPO, source, ignore=JUNK)
    out = work / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out),
         str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, (
        "building the wheel failed (it needs setuptools>=70.1 in this environment: pip install -e '.[test]')\n"
        + built.stdout[-3000:] + built.stderr[-3000:])
    (path,) = out.glob("genobs-*.whl")
    return path


def test_the_only_top_level_package_is_genobs(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    version = _project()["project"]["version"]
    assert {n.split("/")[0] for n in names} == {"genobs", f"genobs-{version}.dist-info"}
    top_level = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    if top_level:  # setuptools writes it; pip ignores it, but tools that read it see one name
        assert zipfile.ZipFile(wheel).read(top_level[0]).decode().split() == ["genobs"]


def test_every_module_of_every_package_is_in_the_wheel_under_genobs(wheel: Path) -> None:
    """A folder listed in package-dir lands under its genobs.* name; a new subpackage that is
    not listed in pyproject's packages would be missing here."""
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for package, folder in _project()["tool"]["setuptools"]["package-dir"].items():
        for path in (REPO / folder).rglob("*.py"):
            expected.add("/".join((*package.split("."), *path.relative_to(REPO / folder).parts)))
    assert len(expected) > 50
    assert sorted(expected - names) == []
    assert not [n for n in names if n.endswith("clip_fixtures.py") or n.endswith("drift_evidently.py")]


def test_sample_data_files_are_inside_the_wheel(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = REPO / "sample_data" / "data"
    expected = {"genobs/sample_data/data/" + p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()}
    assert len(expected) > 10 and "genobs/sample_data/data/chat_samples.jsonl.gz" in expected
    assert sorted(expected - names) == []
    assert "genobs/sample_data/README.md" in names


def test_the_wheel_installs_and_runs_without_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """Installed into a fresh virtualenv (dependencies taken from this environment, genobs
    only from the wheel) and run outside the checkout: the packages import from the venv,
    the demo data is found there, the folder names are not importable, and `genobs --help`
    works."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                                "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # This environment's dependency folders, appended after the venv's own (so genobs comes
    # from the wheel). Their .pth files are not processed, so an editable genobs stays out.
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).resolve() != site.resolve()]
    deps.append(sysconfig.get_paths()["purelib"])
    (site / "_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    probe = """
import importlib, json
import genobs, genobs.collectors, genobs.evaluators, genobs.slo, genobs.dashboards, genobs.sample_data
from genobs.sample_data import data_dir
missing = []
for name in ("collectors", "evaluators", "slo", "dashboards", "sample_data"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        missing.append(name)
print(json.dumps({"files": [m.__file__ for m in (genobs, genobs.collectors, genobs.sample_data)],
                  "chat": (data_dir() / "chat_samples.jsonl.gz").is_file(), "not_importable": missing}))
"""
    ran = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout.strip().splitlines()[-1])
    assert all(Path(f).resolve().is_relative_to(site.resolve()) for f in found["files"]), found["files"]
    assert found["chat"] is True
    assert found["not_importable"] == ["collectors", "evaluators", "slo", "dashboards", "sample_data"]
    helped = subprocess.run([str(env_dir / "bin" / "genobs"), "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: genobs" in helped.stdout and "demo" in helped.stdout
