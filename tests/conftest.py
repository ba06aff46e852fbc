"""Shared fixtures (a store, a running server, a tiny CLIP model) and the import guard.

Helpers that are plain functions or data live in tests/helpers/; test modules import from
there or use these fixtures, never each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from helpers import import_guard

# First, before any test module is collected: `import collectors` (or evaluators, slo,
# dashboards, sample_data) fails instead of loading a second copy from the checkout.
import_guard.install()

from genobs.store import Store  # noqa: E402 - after the guard is in place

if TYPE_CHECKING:
    from genobs.runtime import PlatformHandle


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real DuckDB file in tmp_path, migrated, closed after the test."""
    s = Store.open(tmp_path / "genobs.duckdb")
    yield s
    s.close()


@pytest.fixture
def running_server(tmp_path: Path) -> Iterator["PlatformHandle"]:
    """The platform on 127.0.0.1 on a free port over tmp_path/genobs.duckdb (no token, no
    NVML polling); ``.url``, ``.store``. Stopped and its store closed after the test."""
    from helpers import servers  # here, not at the top: tests without a server skip uvicorn's import

    with servers.running_server(tmp_path / "genobs.duckdb") as handle:
        yield handle


@pytest.fixture(scope="session")
def tiny_open_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-initialised open_clip model (a few MB) as a ``local-dir:`` model directory;
    nothing is downloaded. Read-only for the tests that share it."""
    from helpers.clip_fixtures import save_random_open_clip  # imports torch: only when asked for

    return save_random_open_clip(tmp_path_factory.mktemp("tiny-open-clip") / "model", size="tiny", seed=0)
