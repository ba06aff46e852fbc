"""A/B for bench/bench_dashboard.py: the dashboards of another commit (--ref, e.g. main)
against this working tree, interleaved per page and range on the same database, measured with
this tree's instrument (tests/dashboard_browser.py wait_rendered, bench_dashboard.load).

The reference's packages are exported with `git archive` into a temporary folder laid out as
the installed `genobs` package (dashboards/ -> genobs/dashboards, ...) and its UI server runs
from there (its working directory and PYTHONPATH), so each side serves its own code.

    python bench/ab_dashboard.py --db /tmp/bench_10000000.duckdb --ref main
    (build the database with bench/bench_dashboard.py --keep DIR first)
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_dashboard as bench  # noqa: E402
import dashboard_browser as browser_helpers  # noqa: E402  (bench_dashboard put tests/ on sys.path)

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("collectors", "evaluators", "slo", "dashboards", "sample_data")


def export(ref: str, into: Path) -> Path:
    """The ``genobs`` package of commit ``ref`` under ``into`` (as installed: subpackages inside)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "genobs", *SUBPACKAGES],
                             check=True, capture_output=True).stdout
    tree = into / "tree"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    package = into / "pkg" / "genobs"
    shutil.copytree(tree / "genobs", package)
    for name in SUBPACKAGES:
        if (tree / name).exists():
            shutil.copytree(tree / name, package / name)
    return package.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--ref", default="main")
    parser.add_argument("--ranges", default=",".join(bench.RANGES))
    parser.add_argument("--repeat", type=int, default=1, help="run the interleaved rounds this many times")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    popen = subprocess.Popen

    def popen_in(cwd: Path | None):  # the UI server's working directory decides which genobs it imports
        def start(*a: object, **k: object) -> subprocess.Popen[bytes]:
            if cwd is not None:
                k["cwd"] = cwd
            return popen(*a, **k)  # type: ignore[arg-type]
        return start

    out: dict[str, object] = {"ref": args.ref, "ref_commit": subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", args.ref], capture_output=True, text=True).stdout.strip(),
        "db": str(args.db), "loadavg_start": __import__("os").getloadavg()}
    with tempfile.TemporaryDirectory(prefix="ab_dashboard_") as tmp:
        ref_pkg = export(args.ref, Path(tmp))
        sides = {args.ref: (ref_pkg, {"PYTHONPATH": str(ref_pkg)}), "this tree": (None, {})}
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=browser_helpers.chromium_path(), args=["--no-sandbox"])
            rounds = [(i, rng, name, path) for i in range(args.repeat) for rng in args.ranges.split(",")
                      for name, path in bench.PAGES.items()]
            for i, rng, name, path in rounds:
                for side, (cwd, env) in sides.items():
                    browser_helpers.subprocess.Popen = popen_in(cwd)  # type: ignore[attr-defined]
                    url_path, port = f"{path}?range={rng}&refresh=off", browser_helpers.free_port()
                    context = chromium.new_context(viewport={"width": 1500, "height": 1600})
                    context.add_init_script(browser_helpers.TIMELINE_INIT)
                    page = context.new_page()
                    bench.drop_from_page_cache(args.db)     # "cold" as bench_dashboard means it
                    with bench.started_ui(args.db, port=port, env=env) as (base, _, start_s):
                        cold = bench.load(page, f"{base}/{url_path}")
                        warm = bench.load(page, None)
                        page.goto("about:blank")
                    with browser_helpers.serve_ui(args.db, port=port, env=env) as (base, _):
                        cold_server = bench.load(page, f"{base}/{url_path}")
                        page.goto("about:blank")
                    context.close()
                    row = {"cold_s": cold["s"], "cold_server_warm_browser_s": cold_server["s"], "warm_s": warm["s"],
                           "server_start_s": start_s, "cold_timeline_ms": {k: v for k, v in cold.items() if k != "s"},
                           "warm_timeline_ms": {k: v for k, v in warm.items() if k != "s"}}
                    key = f"{name} ({rng}) {side}" + (f" #{i + 1}" if args.repeat > 1 else "")
                    out[key] = row
                    print(f"{key}: {row}", file=sys.stderr, flush=True)
            chromium.close()
        browser_helpers.subprocess.Popen = popen  # type: ignore[attr-defined]
    out["loadavg_end"] = __import__("os").getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
