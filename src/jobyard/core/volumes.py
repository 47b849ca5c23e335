"""Storage volumes: the model, and the rules checked when an operation on one is made.

A volume is a directory ``<data_dir>/volumes/<id>/``. Sizes are whole decimal gigabytes
(1 GB = 10**9 bytes) on the API, bytes in the store. Usage is the sum of the apparent sizes
of the files in the directory, measured on a schedule (``storage_usage_interval_s``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jobyard.core.inputs import CreateVolume, EditVolume
from jobyard.core.models import Principal
from jobyard.core.operations import Operation, OperationType
from jobyard.core.ports import VolumeStore
from jobyard.core.rules import check_name, invalid, refuse_if_protected, set_protection
from jobyard.errors import Conflict, NotFound

GB = 10**9
MAX_SIZE_GB = 1_000_000


class VolumeState(StrEnum):
    CREATING = "creating"  # its STORAGE_CREATE operation has not completed yet
    READY = "ready"
    DESTROYING = "destroying"  # a STORAGE_DESTROY operation is under way


@dataclass(slots=True)
class Volume:
    id: int
    uid: str
    org_id: int
    user_id: int
    name: str
    size_bytes: int
    state: VolumeState
    created_at: float
    updated_at: float
    used_bytes: int | None = None
    used_checked_at: float | None = None
    attachments: tuple[str, ...] = ()  # cluster ids (clusters come with their own operations)
    deletion_protection: bool = False  # while on, the volume cannot be destroyed

    @property
    def size_gb(self) -> int:
        return self.size_bytes // GB

    @property
    def over_quota(self) -> bool:
        return self.used_bytes is not None and self.used_bytes > self.size_bytes


def check_size_gb(size_gb: int) -> int:
    if not 1 <= size_gb <= MAX_SIZE_GB:
        raise invalid(("body", "size_gb"), f"size_gb must be between 1 and {MAX_SIZE_GB}")
    return size_gb * GB


def env_name(volume_name: str) -> str:
    """The environment variable a job on a cluster finds an attached volume's path in."""
    return "JOBYARD_VOLUME_" + re.sub(r"[^A-Za-z0-9]", "_", volume_name).upper()


# Volumes whose deletion protection may change (a destroying one is on its way out).
PROTECTABLE = (str(VolumeState.CREATING), str(VolumeState.READY))


class VolumeService:
    """Volumes as the API sees them: visibility, and the rules checked when an operation is
    made (the operation processor does the work). ``on_intent`` wakes the processor."""

    def __init__(self, volumes: VolumeStore, on_intent: Callable[[], None] = lambda: None):
        self._volumes = volumes
        self.on_intent = on_intent

    # volumes ---------------------------------------------------------------------------------
    def get_volume(self, who: Principal, uid: str) -> Volume:
        vol = self._volumes.get_volume(uid)
        if vol is None or not who.sees(vol.org_id):
            raise NotFound(f"storage volume {uid} not found")
        return vol

    def list_volumes(self, who: Principal, mine: bool = False) -> list[Volume]:
        """The org's volumes; with ``mine``, only those the caller created."""
        vols = self._volumes.list_volumes(who.org_id)
        return [v for v in vols if v.user_id == who.user_id] if mine else vols

    def create(self, who: Principal, new: CreateVolume) -> tuple[Operation, Volume]:
        req, vol = self._volumes.create_volume(who, check_name(new.name),
                                               check_size_gb(new.size_gb))
        if new.deletion_protection:  # before anyone was told its id
            self._volumes.set_protection(vol.uid, True, PROTECTABLE)
            vol.deletion_protection = True
        self.on_intent()
        return req, vol

    def protect(self, who: Principal, uid: str, on: bool) -> Volume:
        """Turn deletion protection on or off, at once (no operation)."""
        vol = self.get_volume(who, uid)
        set_protection(self._volumes, vol.uid, on, "storage volume", PROTECTABLE)
        return self.get_volume(who, uid)

    def edit(self, who: Principal, uid: str, change: EditVolume
             ) -> tuple[Operation | None, Volume]:
        """Rename and/or grow (an operation; shrinking is refused (422) now, not when it is
        processed), and/or set deletion protection (at once, with the operation if there is
        one; alone, no operation)."""
        vol = self.get_volume(who, uid)
        protect = change.deletion_protection
        if change.name is None and change.size_gb is None:
            if protect is None:
                raise invalid(("body",), "nothing to change: give name, size_gb and/or "
                              "deletion_protection")
            return None, self.protect(who, uid, protect)
        new_size = check_size_gb(change.size_gb) if change.size_gb is not None else None
        params: dict[str, Any] = {
            "name": check_name(change.name) if change.name is not None else vol.name}

        def check(fresh: Volume) -> dict[str, Any] | None:
            _ready(fresh, "edited")
            if new_size is not None and new_size < fresh.size_bytes:
                raise invalid(("body", "size_gb"), f"volumes only grow: {fresh.size_gb} GB "
                              f"now, {change.size_gb} GB asked")
            return None if protect is None else {"deletion_protection": protect}

        if new_size is not None:
            params["size_bytes"] = new_size
        req = self._volumes.volume_operation(who, vol, OperationType.STORAGE_EDIT, params,
                                             check, "Storage volume edit queued")
        self.on_intent()
        if protect is not None:
            vol.deletion_protection = protect
        return req, vol

    def destroy(self, who: Principal, uid: str) -> tuple[Operation, Volume]:
        """Refused (409) while the volume is attached to a cluster."""
        vol = self.get_volume(who, uid)

        def check(fresh: Volume) -> dict[str, Any]:
            _ready(fresh, "destroyed")
            refuse_if_protected("storage volume", uid, fresh.deletion_protection)
            if fresh.attachments:
                raise Conflict(
                    f"storage volume {uid} is attached to {', '.join(fresh.attachments)}; "
                    "detach it first", {"clusters": list(fresh.attachments)})
            return {"state": str(VolumeState.DESTROYING)}

        req = self._volumes.volume_operation(who, vol, OperationType.STORAGE_DESTROY, {},
                                             check, "Storage volume destruction queued")
        self.on_intent()
        return req, vol


def _ready(vol: Volume, what: str) -> None:
    if vol.state is not VolumeState.READY:
        raise Conflict(f"storage volume {vol.uid} is {vol.state}; it cannot be {what} now")
