"""Retention: finished jobs, their logs, outputs and workspaces are deleted ``retention_days``
after they ended, in batches of ``retention_batch`` (each its own transaction), at most
``MAX_BATCHES`` per sweep so one sweep never holds the leader for long. Webhook deliveries that
are done (delivered or failed for good) go after the same time, and workspaces no job owns
after an hour."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time

from jobyard.config import Config
from jobyard.core.ports import Store
from jobyard.store.files import remove_job_files, workspaces_dir

log = logging.getLogger(__name__)
MAX_BATCHES = 20
ORPHAN_AGE_S = 3600.0


class Retention:
    def __init__(self, config: Config, store: Store):
        self.config = config
        self.store = store

    async def sweep(self) -> int:
        """Delete what is past retention; returns how many jobs went."""
        days = self.config.retention_days
        if days is None:
            return 0
        cutoff = self.store.clock() - days * 86400
        deleted = 0
        for _ in range(MAX_BATCHES):
            batch = await asyncio.to_thread(self.store.jobs.ended_before, cutoff,
                                            self.config.retention_batch)
            if not batch:
                break
            gone = set(await asyncio.to_thread(self.store.jobs.delete_jobs, [j.id for j in batch]))
            for job in batch:
                if job.id in gone:
                    await asyncio.to_thread(remove_job_files, self.config.data_dir, job)
            deleted += len(gone)
            if len(batch) < self.config.retention_batch:
                break
        await asyncio.to_thread(self.store.webhooks.purge_deliveries, cutoff)
        await asyncio.to_thread(self._orphan_workspaces)
        if deleted:
            log.info("retention: deleted %d jobs that ended more than %g days ago", deleted, days)
        return deleted

    def _orphan_workspaces(self) -> None:
        """Workspaces no job owns (a push cut short by a crash between unpacking and queueing
        its job) are removed once they are an hour old."""
        spaces = workspaces_dir(self.config.data_dir)
        try:
            homes = [p for p in spaces.iterdir() if p.is_dir()
                     and p.stat().st_mtime < time.time() - ORPHAN_AGE_S]
        except FileNotFoundError:
            return
        for chunk in range(0, len(homes), 500):
            part = homes[chunk:chunk + 500]
            used = self.store.jobs.workdirs_in_use([str(h / "project") for h in part])
            for home in part:
                if str(home / "project") not in used:
                    shutil.rmtree(home, ignore_errors=True)
