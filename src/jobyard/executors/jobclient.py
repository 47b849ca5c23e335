"""What a job may use of Jobyard itself, whatever identity it runs as: the reporting client.

The server's own environment may be closed to a tenant's uid (a virtualenv under ``/root``, say).
So at start the server copies the ``jobyard`` package's Python sources to
``<data_dir>/client/<version>/`` (read-only for everyone, written afresh when the version
changes) with a ``bin/jobyard`` that runs ``jobyard report``; every job gets that directory on
``PYTHONPATH`` and its ``bin`` on ``PATH``. ``import jobyard.job`` and ``jobyard report`` need
nothing but the standard library, so they work under any ``python3`` the machine has.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import jobyard

SHIM = """#!/bin/sh
# `jobyard report` inside a job (the rest of the CLI is the server's).
exec python3 -m jobyard.telemetry.report "$@"
"""


def install(data_dir: Path) -> Path:
    """Copy the client into ``data_dir`` (once per version); returns its directory."""
    root = Path(data_dir) / "client"
    target = root / jobyard.__version__
    if (target / "bin" / "jobyard").exists():
        return target
    root.mkdir(mode=0o755, exist_ok=True)
    root.chmod(0o755)
    staging = root / f".{jobyard.__version__}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    package = Path(jobyard.__file__).parent
    shutil.copytree(package, staging / "jobyard",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (staging / "bin").mkdir()
    (staging / "bin" / "jobyard").write_text(SHIM)
    for path in [staging, *staging.rglob("*")]:
        executable = path.is_dir() or path.parent.name == "bin"
        path.chmod(0o755 if executable else 0o644)
    try:
        staging.rename(target)
    except OSError:  # another replica's server installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return target


def job_env(client: Path, env: dict[str, str], first: bool) -> dict[str, str]:
    """``PYTHONPATH`` and ``PATH`` of a job's environment ``env`` with the client on them: after
    the job's own entries (a job that brings its own ``jobyard`` keeps it), or, for a job under
    its own identity (``first``), its ``bin`` first: the server's ``jobyard`` may be found on
    the ``PATH`` but fail to start for a uid that cannot reach the server's interpreter."""
    python_path = [p for p in (env.get("PYTHONPATH", ""), str(client)) if p]
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
    path = [str(client / "bin"), *path] if first else [*path, str(client / "bin")]
    return {"PYTHONPATH": os.pathsep.join(python_path), "PATH": os.pathsep.join(path)}
