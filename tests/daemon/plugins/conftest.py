"""The plug-in tests' server process: a runtime started in the test's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from jobyard.config import Config
from jobyard.runtime import Runtime, build_runtime


@contextlib.asynccontextmanager
async def started_runtime(tmp_path, database_url: str, **settings: Any) -> AsyncIterator[Runtime]:
    """A runtime on ``tmp_path`` with the admin key ``jy_t`` and a fast daemon, plus
    ``settings``; stopped on exit."""
    config = Config(data_dir=tmp_path, database_url=database_url, bootstrap_admin_key="jy_t",
                    tick_interval_s=0.05, kill_grace_s=1, **settings)
    runtime = build_runtime(config)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
