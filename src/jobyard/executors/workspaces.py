"""Workspaces: directories the server makes for a job's files (e.g. a pushed project).

``<data_dir>/workspaces/<id>/project`` holds the files and is the job's working directory;
siblings such as ``venv`` belong to the same workspace and go with it
(:func:`jobyard.store.purge.remove_job_files`).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from jobyard import ids
from jobyard.errors import ValidationFailed


def workspaces_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "workspaces"


def new_workspace(data_dir: Path) -> Path:
    """A fresh, empty workspace; returns its directory (the project goes in ``project``)."""
    home = workspaces_dir(data_dir) / ids.random_token(16)
    (home / "project").mkdir(parents=True)
    return home


def unpack(archive: Path, dest: Path, max_bytes: int, max_files: int = 200_000) -> int:
    """Extract a tar(.gz) archive into ``dest``; returns the number of files.

    Refused before anything is written when its files add up to more than ``max_bytes`` or
    ``max_files``. The standard library's ``data`` filter refuses members that would land
    outside ``dest`` (``..``, links pointing out) and devices, and strips leading slashes.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            files = [m for m in members if m.isfile()]
            total = sum(m.size for m in files)
            if total > max_bytes or len(members) > max_files:
                raise ValidationFailed(
                    f"the project is too large: {len(files)} files, {total} bytes "
                    f"(limit {max_bytes} bytes, {max_files} files)",
                    {"loc": ["project"], "type": "value_error"})
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValidationFailed(f"the project archive could not be unpacked: {exc}",
                               {"loc": ["project"], "type": "value_error"}) from exc
    return len(files)
