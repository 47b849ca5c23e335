"""Storage volumes and async requests as the API sees them: visibility and the rules checked
when a request is made. The work itself is done later by the request processor."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from jobyard.core.models import Principal
from jobyard.core.requests import Request, RequestType
from jobyard.core.volumes import GB, MAX_SIZE_GB, Volume, VolumeState
from jobyard.errors import Conflict, DeletionProtected, NotFound, ValidationFailed

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_LIST = 500


def refuse_if_protected(what: str, uid: str, protected: bool) -> None:
    """The one deletion-protection rule: a protected cluster or volume is never released or
    destroyed (409 DELETION_PROTECTED); checked on its locked row, when the request is made."""
    if protected:
        raise DeletionProtected(
            f"{what} {uid} has deletion protection enabled; turn it off before destroying it",
            {"deletion_protection": True})


def _invalid(loc: tuple[str, ...], msg: str) -> None:
    raise ValidationFailed(msg, {"loc": list(loc), "type": "value_error"})


def check_name(name: str) -> str:
    if not NAME.match(name):
        _invalid(("body", "name"), "name: 1-100 of letters, digits, '_', '.', '-'; starts with a"
                 " letter or digit")
    return name


def check_size_gb(size_gb: int) -> int:
    if not 1 <= size_gb <= MAX_SIZE_GB:
        _invalid(("body", "size_gb"), f"size_gb must be between 1 and {MAX_SIZE_GB}")
    return size_gb * GB


# Volumes whose deletion protection may change (a destroying one is on its way out).
PROTECTABLE = (str(VolumeState.CREATING), str(VolumeState.READY))


def set_protection(store: Any, table: str, uid: str, on: bool, noun: str,
                   allowed: Sequence[str]) -> None:
    """Set deletion protection of a cluster or volume (``table``) in one of the ``allowed``
    states; 404 if it is gone, 409 if it is on its way out."""
    state = store.set_protection(table, uid, on, allowed)
    if state is None:
        raise NotFound(f"{noun} {uid} not found")
    if state not in allowed:
        raise Conflict(f"{noun} {uid} is {state}; its deletion protection cannot change now")


class StorageService:
    """``store`` is the SQL store's RequestStore part; ``on_intent`` wakes the processor."""

    def __init__(self, store: Any, on_intent: Callable[[], None] = lambda: None):
        self.store = store
        self.on_intent = on_intent

    @staticmethod
    def can_see(who: Principal, org_id: int) -> bool:
        return who.is_admin or org_id == who.org_id

    # requests --------------------------------------------------------------------------------
    def get_request(self, who: Principal, uid: str) -> Request:
        req = self.store.get_request(uid)
        if req is None or not self.can_see(who, req.org_id):
            raise NotFound(f"request {uid} not found")
        return req

    def list_requests(self, who: Principal, limit: int) -> list[Request]:
        return self.store.list_requests(who.org_id, min(limit, MAX_LIST))

    # volumes ---------------------------------------------------------------------------------
    def get_volume(self, who: Principal, uid: str) -> Volume:
        vol = self.store.get_volume(uid)
        if vol is None or not self.can_see(who, vol.org_id):
            raise NotFound(f"storage volume {uid} not found")
        return vol

    def list_volumes(self, who: Principal, mine: bool = False) -> list[Volume]:
        """The org's volumes; with ``mine``, only those the caller created."""
        vols = self.store.list_volumes(who.org_id)
        return [v for v in vols if v.user_id == who.user_id] if mine else vols

    def create(self, who: Principal, name: str, size_gb: int,
               deletion_protection: bool = False) -> tuple[Request, Volume]:
        req, vol = self.store.create_volume(who, check_name(name), check_size_gb(size_gb))
        if deletion_protection:  # before anyone was told its id
            self.store.set_protection("volumes", vol.uid, True, PROTECTABLE)
            vol.deletion_protection = True
        self.on_intent()
        return req, vol

    def protect(self, who: Principal, uid: str, on: bool) -> Volume:
        """Turn deletion protection on or off, at once (no request)."""
        vol = self.get_volume(who, uid)
        set_protection(self.store, "volumes", vol.uid, on, "storage volume", PROTECTABLE)
        return self.get_volume(who, uid)

    def edit(
        self, who: Principal, uid: str, name: str | None, size_gb: int | None,
        deletion_protection: bool | None = None,
    ) -> tuple[Request | None, Volume]:
        """Rename and/or grow (a request; shrinking is refused (422) now, not when processed),
        and/or set deletion protection (at once, with the request if there is one)."""
        vol = self.get_volume(who, uid)
        if name is None and size_gb is None:
            if deletion_protection is None:
                _invalid(("body",), "nothing to change: give name, size_gb and/or "
                         "deletion_protection")
            return None, self.protect(who, uid, bool(deletion_protection))
        new_size = check_size_gb(size_gb) if size_gb is not None else None
        params: dict[str, Any] = {"name": check_name(name) if name is not None else vol.name}

        def check(fresh: Volume) -> dict[str, Any] | None:
            _ready(fresh, "edited")
            if new_size is not None and new_size < fresh.size_bytes:
                _invalid(("body", "size_gb"), f"volumes only grow: {fresh.size_gb} GB now, "
                         f"{size_gb} GB asked")
            if deletion_protection is None:
                return None
            return {"deletion_protection": deletion_protection}

        if new_size is not None:
            params["size_bytes"] = new_size
        req = self.store.request_on_volume(who, vol, RequestType.STORAGE_EDIT, params, check,
                                           "Storage volume edit queued")
        self.on_intent()
        if deletion_protection is not None:
            vol.deletion_protection = deletion_protection
        return req, vol

    def destroy(self, who: Principal, uid: str) -> tuple[Request, Volume]:
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

        req = self.store.request_on_volume(who, vol, RequestType.STORAGE_DESTROY, {}, check,
                                           "Storage volume destruction queued")
        self.on_intent()
        return req, vol


def _ready(vol: Volume, what: str) -> None:
    if vol.state is not VolumeState.READY:
        raise Conflict(f"storage volume {vol.uid} is {vol.state}; it cannot be {what} now")
