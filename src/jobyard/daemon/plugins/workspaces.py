"""Workspaces made on another replica: fetched before the job launches on this one.

A pushed TensorPool project or a TensorOne run's input lands in a workspace of the replica that
took the request (``Job.workspace_replica``); the leader may run on another machine. Before
such a job's attempt launches here, its workspace is fetched from that replica
(``GET /internal/workspaces/{token}``, a link signed with the secret the replicas share) and
unpacked at the same path, so the job's working directory and the paths in its environment
hold. That needs the same ``data_dir`` on every machine; on one machine the workspace is
already there and nothing is fetched. A replica that cannot be reached fails the attempt's
launch, with its address (it is retried as the job's policy says).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import httpx

from jobyard.config import Config
from jobyard.core.files import WORKSPACE_LINK
from jobyard.core.models import Job
from jobyard.core.tokens import Signer
from jobyard.daemon.hooks import AttemptHook
from jobyard.errors import LaunchError
from jobyard.store.files import unpack, workspaces_dir

LINK_TTL_S = 300.0
TIMEOUT = httpx.Timeout(30.0, read=300.0)


class WorkspaceFetch(AttemptHook):
    def __init__(self, config: Config, signer: Signer):
        self.config = config
        self.signer = signer

    async def prepare(self, job: Job) -> None:
        origin = job.workspace_replica
        if not origin or origin == self.config.replica or not job.workdir:
            return
        home = Path(job.workdir).parent
        if home.exists():  # the same machine, or fetched for an earlier attempt
            return
        mine = workspaces_dir(self.config.data_dir)
        if home.parent != mine:
            raise LaunchError(f"its project lies in {home} on replica {origin}, outside this "
                              f"replica's workspaces ({mine}): replicas on several machines "
                              "need the same data_dir")
        mine.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=mine, prefix=".fetch-", suffix=".tar.gz")
        try:
            with os.fdopen(fd, "wb") as archive:
                await self._fetch(origin, home.name, archive)
            await asyncio.to_thread(unpack, Path(name), home,
                                    self.config.tensorpool_max_upload_bytes)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, home, True)  # a retry fetches it again
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    async def _fetch(self, origin: str, workspace: str, archive: BinaryIO) -> None:
        token = self.signer.link(WORKSPACE_LINK, (workspace,), LINK_TTL_S)
        try:
            async with httpx.AsyncClient(base_url=origin, timeout=TIMEOUT) as client, \
                    client.stream("GET", f"/internal/workspaces/{token}") as answer:
                if answer.status_code != 200:
                    raise LaunchError(f"replica {origin} does not give its project "
                                      f"(HTTP {answer.status_code})")
                async for chunk in answer.aiter_bytes():
                    archive.write(chunk)
        except httpx.HTTPError as exc:
            raise LaunchError(f"its project is on replica {origin}, which cannot be reached "
                              f"({type(exc).__name__})") from None
