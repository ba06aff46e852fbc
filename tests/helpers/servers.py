"""Starting the platform for a test: the one place that knows how, so that when the way a
process starts it changes, only this module follows."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from genobs.runtime import PlatformHandle, ServerSettings, start_platform

HOST = "127.0.0.1"


def start_server(db: Path, *, port: int = 0, **settings: Any) -> PlatformHandle:
    """The platform (genobs.runtime, with its scheduler) serving ``db`` on 127.0.0.1 (``port``
    0: a free one), without NVML polling and without an ingest token unless ``settings`` say
    otherwise (ServerSettings fields).
    The caller stops it and closes ``handle.store``; ``running_server`` does both."""
    options: dict[str, Any] = {"poll_nvml": False, "ingest_token": None, **settings}
    return start_platform(db, HOST, port, settings=ServerSettings(**options))


@contextmanager
def running_server(db: Path, **settings: Any) -> Iterator[PlatformHandle]:
    """``start_server`` for the length of a ``with`` block: stopped and its store closed after."""
    handle = start_server(db, **settings)
    try:
        yield handle
    finally:
        handle.stop()
        handle.store.close()
