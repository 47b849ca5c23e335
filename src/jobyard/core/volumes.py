"""Storage volumes: the model, and the rules checked when a request is made.

A volume is a directory ``<data_dir>/volumes/<id>/``. Sizes are whole decimal gigabytes
(1 GB = 10**9 bytes) on the API, bytes in the store. Usage is the sum of the apparent sizes
of the files in the directory, measured on a schedule (``storage_usage_interval_s``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GB = 10**9
MAX_SIZE_GB = 1_000_000


class VolumeState(StrEnum):
    CREATING = "creating"  # its STORAGE_CREATE request has not completed yet
    READY = "ready"
    DESTROYING = "destroying"  # a STORAGE_DESTROY request is under way


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
    attachments: tuple[str, ...] = ()  # cluster ids (clusters come with their own requests)
    deletion_protection: bool = False  # while on, the volume cannot be destroyed

    @property
    def size_gb(self) -> int:
        return self.size_bytes // GB

    @property
    def over_quota(self) -> bool:
        return self.used_bytes is not None and self.used_bytes > self.size_bytes
