"""Volumes inside jobs: what a job on a cluster sees of the volumes attached to it.

For each attached volume the job gets ``JOBYARD_VOLUME_<NAME>=<path>`` (the name upper-cased,
anything not a letter or digit as ``_``), and, when it runs in its run's working directory (no
``workdir`` of its own), a symlink ``mnt/<name>`` there. Both point at the volume's own
directory (``data_dir/volumes/<id>/``), so what a job writes survives the job and the cluster.
When such a job ends its volumes are measured (``measure``, given by its constructor:
``operations.volumes.VolumeHandlers.measure``; over-size volumes become read-only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from jobyard.core.models import Job
from jobyard.core.ports import Store
from jobyard.core.volumes import Volume, env_name
from jobyard.daemon.hooks import AttemptHook
from jobyard.store.files import volume_dir, work_dir

log = logging.getLogger(__name__)
Measure = Callable[[list[str]], Awaitable[None]]  # record these volumes' usage


class VolumeMounts(AttemptHook):
    def __init__(self, store: Store, data_dir: Path, measure: Measure):
        self.store = store
        self.data_dir = data_dir
        self.measure = measure

    def _attached(self, job: Job) -> list[Volume]:
        cluster = self.store.clusters.get_cluster(job.cluster_id) if job.cluster_id else None
        if cluster is None:
            return []
        found = (self.store.volumes.get_volume(uid) for uid in cluster.attachments)
        return [v for v in found if v is not None]

    def env(self, job: Job, run_dir: Path) -> dict[str, str]:
        env: dict[str, str] = {}
        for vol in self._attached(job):  # a read only for jobs on a cluster
            path = volume_dir(self.data_dir, vol.uid)
            env[env_name(vol.name)] = str(path)
            if job.workdir is None:
                link = work_dir(run_dir) / "mnt" / vol.name
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.is_symlink():
                    link.symlink_to(path, target_is_directory=True)
        return env

    def shared_dirs(self, job: Job) -> list[str]:
        return [str(volume_dir(self.data_dir, vol.uid)) for vol in self._attached(job)]

    async def ended(self, job: Job) -> None:
        if job.cluster_id is None:
            return
        cluster = await asyncio.to_thread(self.store.clusters.get_cluster, job.cluster_id)
        if cluster is not None and cluster.attachments:
            await self.measure(list(cluster.attachments))
