"""What several test modules (and the benchmarks) share: sample records, labelled cases,
oracles and model fixtures. Test modules import from here, never from each other.

tests/ is on sys.path when pytest runs (rootdir-relative import of the test modules) and the
benchmarks add it themselves, so ``from helpers.x import y`` works in both.
"""

from pathlib import Path

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
"""tests/data: public data the suite reads (see tests/data/README.md for source and licence)."""
