"""Deleting finished jobs for good: rows (``delete_jobs``), files (``remove_job_files``).

Used by job deletion through the API and by retention. Only terminal jobs are deleted, checked
again inside the transaction, so a job that came back to life (a retry) is left alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jobyard.core.models import Job
from jobyard.core.states import TERMINAL
from jobyard.store import tables as t
from jobyard.store.logfiles import run_dir
from jobyard.store.rows import job_from_row

# Tables whose rows belong to one job (all reference jobs.id).
_CHILDREN = (t.job_tags, t.job_events, t.job_metrics, t.job_outputs, t.idempotency_keys)


class PurgeStore:
    engines: Any

    def ended_before(self, cutoff: float, limit: int) -> list[Job]:
        """Terminal jobs that ended before ``cutoff``, oldest first."""
        c = t.jobs.c
        stmt = (sa.select(t.jobs).where(c.finished_at < cutoff,
                                        c.state.in_([str(s) for s in TERMINAL]))
                .order_by(c.finished_at).limit(limit))
        with self.engines.read.connect() as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    def workdirs_in_use(self, paths: list[str]) -> set[str]:
        """Those of ``paths`` that some job has as its working directory."""
        if not paths:
            return set()
        with self.engines.read.connect() as conn:
            return set(conn.execute(sa.select(t.jobs.c.workdir).where(
                t.jobs.c.workdir.in_(paths))).scalars())

    def purge_deliveries(self, cutoff: float) -> int:
        """Delete webhook deliveries that are done and were made before ``cutoff``."""
        d = t.webhook_deliveries.c

        def write(conn: sa.Connection) -> int:
            return conn.execute(sa.delete(t.webhook_deliveries).where(
                d.status.in_(("delivered", "failed")), d.created_at < cutoff)).rowcount

        return self.engines.write_tx(write)

    def delete_jobs(self, job_ids: list[int]) -> list[int]:
        """Delete these jobs if they are terminal; returns the ids deleted. Webhook deliveries
        still in the outbox keep their payload and lose only the link to the job."""
        if not job_ids:
            return []
        terminal = [str(s) for s in TERMINAL]

        def write(conn: sa.Connection) -> list[int]:
            ids = list(conn.execute(sa.select(t.jobs.c.id).where(
                t.jobs.c.id.in_(job_ids), t.jobs.c.state.in_(terminal))).scalars())
            if not ids:
                return []
            for table in _CHILDREN:
                conn.execute(sa.delete(table).where(table.c.job_id.in_(ids)))
            conn.execute(sa.update(t.webhook_deliveries)
                         .where(t.webhook_deliveries.c.job_id.in_(ids)).values(job_id=None))
            conn.execute(sa.delete(t.jobs).where(t.jobs.c.id.in_(ids)))
            return ids

        return self.engines.write_tx(write)


def remove_job_files(data_dir: Path, job: Job, workspaces: Path | None = None) -> None:
    """Remove every attempt's run directory (log, outputs) and, when the job's working
    directory is a workspace the server made (under ``workspaces``), that too."""
    for attempt in range(1, job.attempt + 1):
        shutil.rmtree(run_dir(data_dir, job.uid, attempt), ignore_errors=True)
    if workspaces is not None and job.workdir:
        base, workdir = workspaces.resolve(), Path(job.workdir).resolve()
        if base in workdir.parents:  # the whole workspace: project, venv, ...
            shutil.rmtree(base / workdir.relative_to(base).parts[0], ignore_errors=True)
