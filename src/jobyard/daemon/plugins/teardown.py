"""Tearing a cluster down after the job that asked for it (``tp job push --teardown``).

A job submitted with ``teardown_cluster`` releases its cluster once it is over (after
its last attempt, whatever the outcome), through the same CLUSTER_RELEASE operation a user would
make, so the cluster's rules (e.g. deletion protection) apply and the release is visible.
"""

from __future__ import annotations

import asyncio
import logging

from jobyard.core.clusters import ClusterService
from jobyard.core.models import Job, Principal
from jobyard.daemon.hooks import AttemptHook
from jobyard.errors import JobyardError

log = logging.getLogger(__name__)


class ClusterTeardown(AttemptHook):
    def __init__(self, clusters: ClusterService):
        self.clusters = clusters

    async def ended(self, job: Job) -> None:
        if not (job.is_terminal and job.cluster_id and job.teardown_cluster):
            return
        owner = Principal(user_id=job.user_id, org_id=job.org_id, username=f"job {job.uid}")
        try:
            req, _ = await asyncio.to_thread(self.clusters.release, owner, job.cluster_id)
        except JobyardError as exc:
            log.warning("job %s: cluster %s not torn down: %s", job.uid, job.cluster_id,
                        exc.message)
            return
        log.info("job %s ended: cluster %s is being released (%s)", job.uid, job.cluster_id,
                 req.uid)
