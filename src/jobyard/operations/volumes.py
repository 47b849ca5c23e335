"""Handlers of the storage operations, and the usage chore. Each is idempotent: a operation a
crashed leader left PROCESSING is simply run again.

How strict the size is: usage is measured (the sum of the apparent sizes of the volume's
files) every ``storage_usage_interval_s``, after each create/edit and when a job on a cluster
it is attached to ends; a volume above its size shows ``over_quota`` and its tree is made
read-only (write permission removed) until a measure finds it back under (grown, or files
deleted). Writes are not stopped as they happen: a job can overshoot until the next check, and
a process running as root ignores the permissions.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path

from jobyard.core.operations import Operation, OperationType
from jobyard.core.ports import Store
from jobyard.core.volumes import VolumeState
from jobyard.errors import Conflict, NotFound
from jobyard.operations.processor import Handler, OperationProcessor
from jobyard.store.files import volume_dir


def usage_bytes(path: Path) -> int:
    """Apparent size of every file under ``path`` (symlinks are not followed)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if not os.path.isdir(os.path.join(root, name)):
                total += st.st_size
    return total


def set_writable(path: Path, writable: bool) -> None:
    """Give (owner) or take (everyone) write permission on ``path``'s tree; no-op when the
    root already is that way. Symlinks are not followed."""
    if not path.is_dir() or bool(path.stat().st_mode & stat.S_IWUSR) == writable:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            try:
                st = os.lstat(name)
                if stat.S_ISLNK(st.st_mode):
                    continue
                mode = st.st_mode | stat.S_IWUSR if writable else st.st_mode & ~0o222
                os.chmod(name, stat.S_IMODE(mode))
            except FileNotFoundError:
                continue


class VolumeHandlers:
    def __init__(self, store: Store, data_dir: Path):
        self.store = store
        self.data_dir = data_dir

    def register(self, processor: OperationProcessor, usage_every_s: float) -> None:
        processor.handle(OperationType.STORAGE_CREATE, Handler(self.create, self.create_failed))
        processor.handle(OperationType.STORAGE_EDIT, Handler(self.edit))
        processor.handle(OperationType.STORAGE_DESTROY, Handler(self.destroy,
                                                              self.destroy_failed))
        processor.every(usage_every_s, self.measure_all)

    async def create(self, req: Operation) -> str:
        uid = str(req.object_id)
        if await asyncio.to_thread(self.store.volumes.get_volume, uid) is None:
            raise NotFound(f"storage volume {uid} no longer exists")
        await asyncio.to_thread(volume_dir(self.data_dir, uid).mkdir, parents=True,
                                exist_ok=True)
        await asyncio.to_thread(self.store.volumes.update_volume, uid, state=str(VolumeState.READY))
        await self.measure([uid])
        return f"Storage volume {uid} created"

    async def create_failed(self, req: Operation) -> None:
        uid = str(req.object_id)
        await asyncio.to_thread(shutil.rmtree, volume_dir(self.data_dir, uid), True)
        await asyncio.to_thread(self.store.volumes.delete_volume, uid)  # frees the name

    async def edit(self, req: Operation) -> str:
        uid = str(req.object_id)
        if await asyncio.to_thread(self.store.volumes.get_volume, uid) is None:
            raise NotFound(f"storage volume {uid} no longer exists")
        await asyncio.to_thread(self.store.volumes.rename_volume, uid, req.params["name"],
                                req.params.get("size_bytes"))
        await self.measure([uid])
        return f"Storage volume {uid} edited"

    async def destroy(self, req: Operation) -> str:
        uid = str(req.object_id)
        vol = await asyncio.to_thread(self.store.volumes.get_volume, uid)
        if vol is not None and vol.attachments:  # checked before any file is touched
            raise Conflict(f"storage volume {uid} is attached to {', '.join(vol.attachments)}")
        await asyncio.to_thread(shutil.rmtree, volume_dir(self.data_dir, uid), True)
        await asyncio.to_thread(self.store.volumes.delete_volume, uid)
        return f"Storage volume {uid} destroyed"

    async def destroy_failed(self, req: Operation) -> None:
        uid = str(req.object_id)
        if await asyncio.to_thread(self.store.volumes.get_volume, uid) is not None:
            await asyncio.to_thread(self.store.volumes.update_volume, uid,
                                    state=str(VolumeState.READY))

    async def measure_all(self) -> None:
        vols = await asyncio.to_thread(self.store.volumes.list_volumes, None)
        await self.measure([v.uid for v in vols if v.state is VolumeState.READY])

    async def measure(self, uids: list[str]) -> None:
        """Record the volumes' usage; read-only while over their size, writable once under."""
        def scan() -> dict[str, int]:
            found = {}
            for uid in uids:
                path = volume_dir(self.data_dir, uid)
                vol = self.store.volumes.get_volume(uid)
                if path.is_dir() and vol is not None:
                    found[uid] = usage_bytes(path)
                    set_writable(path, found[uid] <= vol.size_bytes)
            return found

        usage = await asyncio.to_thread(scan)
        await asyncio.to_thread(self.store.volumes.set_volume_usage, usage, self.store.clock())
