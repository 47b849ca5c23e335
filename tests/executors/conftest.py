"""Fixtures of the executor tests: launch specs whose processes are checked for at teardown."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.executors.base import LaunchSpec
from tests.executors.helpers import kill_marked

SpecFactory = Callable[..., LaunchSpec]


@pytest.fixture
def make_spec(tmp_path: Path) -> Iterator[SpecFactory]:
    """Builds specs with unique markers; kills whatever still carries them at teardown."""
    markers: set[str] = set()
    counter = itertools.count()

    def make(
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        cap: int = 1 << 20,
        grace: float = 5.0,
        limits: dict[str, Any] | None = None,
        gpus: tuple[int, ...] = (),
    ) -> LaunchSpec:
        i = next(counter)
        marker = f"test-{uuid.uuid4().hex}"
        markers.add(marker)
        full_env = {"PATH": os.environ["PATH"], "JOBYARD_JOB_MARKER": marker, **(env or {})}
        return LaunchSpec(
            f"job{i}", 1, argv, full_env, cwd, str(tmp_path / f"run{i}"), cap, grace, marker,
            limits=limits or {}, gpus=gpus,
        )

    yield make
    assert kill_marked(markers) == [], "a test left job processes behind"
