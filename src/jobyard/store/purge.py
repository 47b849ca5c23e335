"""Deleting finished jobs for good: rows (``delete_jobs``), files (``remove_job_files``).

Used by job deletion through the API and by retention. Only terminal jobs are deleted, checked
again inside the transaction, so a job that came back to life (a retry) is left alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from jobyard.core.models import Job
from jobyard.store import tables as t
from jobyard.store.logfiles import run_dir

# Tables whose rows belong to one job (all reference jobs.id).
_CHILDREN = (t.job_tags, t.job_events, t.job_metrics, t.job_outputs, t.idempotency_keys)


def remove_job_files(data_dir: Path, job: Job, workspaces: Path | None = None) -> None:
    """Remove every attempt's run directory (log, outputs) and, when the job's working
    directory is a workspace the server made (under ``workspaces``), that too."""
    for attempt in range(1, job.attempt + 1):
        shutil.rmtree(run_dir(data_dir, job.uid, attempt), ignore_errors=True)
    if workspaces is not None and job.workdir:
        base, workdir = workspaces.resolve(), Path(job.workdir).resolve()
        if base in workdir.parents:  # the whole workspace: project, venv, ...
            shutil.rmtree(base / workdir.relative_to(base).parts[0], ignore_errors=True)
