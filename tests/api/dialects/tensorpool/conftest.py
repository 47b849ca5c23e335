"""The real ``tp`` CLI (tensorpool 0.0.9 from the package index) in its own virtual environment.

The environment is built once per machine under ``.venv/compat/`` and reused while
``tp-cli.txt`` is unchanged (``jobyard.testing.client_venv``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from jobyard.testing import ServerProcess, client_venv

REQUIREMENTS = Path(__file__).with_name("tp-cli.txt")
ROOT = Path(__file__).resolve().parents[4]

Tp = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def tp_bin() -> Path:
    return client_venv(REQUIREMENTS, ROOT) / "bin" / "tp"


def tp_runner(tp_bin: Path, server: ServerProcess, key: str | None = None) -> Tp:
    """``tp(*args, cwd=..., timeout=...)`` runs the real CLI against ``server``."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TENSORPOOL_", "JOBYARD_"))}
        full_env.update(TENSORPOOL_ENGINE=server.url, TENSORPOOL_KEY=key or server.admin_key,
                        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                        PYTHONIOENCODING="utf-8")
        full_env.update(env or {})
        return subprocess.run([str(tp_bin), *args], cwd=cwd, env=full_env, timeout=timeout,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)

    return run


@pytest.fixture
def tp(tp_bin: Path, server: ServerProcess) -> Tp:
    return tp_runner(tp_bin, server)
