"""TensorPool's account routes: the health/auth/version gate the CLI calls before every
command, ``tp me`` and its SSH keys, and clear refusals for what this server does not offer
(object storage, SSH into instances).

``POST /health`` authenticates like every route (401 with ``message`` for a bad key) and
refuses CLIs older than ``Config.tensorpool_min_cli_version`` with 426; the CLI prints the
``message`` of any non-200 answer and exits 1.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.auth import principal
from jobyard.api.deps import read, services
from jobyard.api.dialects.tensorpool.shapes import (
    TensorPoolRoute,
    when,
    yes_no,
)
from jobyard.api.dialects.tensorpool.tables import key_value_table, tsv_table
from jobyard.api.responses import JSON
from jobyard.core.inputs import AddSshKey
from jobyard.core.models import Principal
from jobyard.core.times import iso
from jobyard.errors import NotSupported

router = APIRouter(tags=["tensorpool"], route_class=TensorPoolRoute)

MAX_KEY_CHARS = 16384
NO_OBJECT_STORAGE = (
    "Object storage is not offered by this server (Jobyard, a self-hosted TensorPool-compatible "
    "service). Use storage volumes instead: `tp storage create <size_gb> --name <name>`, then "
    "`tp cluster attach <cluster_id> <storage_id>`.")
NO_SSH = (
    "SSH access is not offered by this server (Jobyard, a self-hosted TensorPool-compatible "
    "service): its clusters are reservations on the server's own machine, not remote "
    "instances. Run your commands as jobs (`tp job push <config> <cluster_id>`) and follow "
    "them with `tp job listen <job_id>`.")


# health ------------------------------------------------------------------------------------
class HealthIn(BaseModel):
    """What the CLI reports about itself; only ``package_version`` is read."""

    model_config = ConfigDict(extra="allow")
    package_version: str | float | None = None


def version_tuple(text: str | float | None) -> tuple[int, ...] | None:
    """``"0.0.9"`` → ``(0, 0, 9)``; None when it does not start with a version number."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text or "")[:100])
    if not m:
        return None
    parts = [int(p) for p in m[1].split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@router.post("/health", summary="Authenticate and check the CLI version (TensorPool)")
def health(request: Request, body: HealthIn | None = None,
           _: Principal = Depends(principal)) -> JSON:
    minimum = services(request).config.tensorpool_min_cli_version
    have = version_tuple(body.package_version if body else None)
    need = version_tuple(minimum)
    if have is not None and need is not None and have < need:
        assert body is not None
        return JSON({"message": f"This server needs tensorpool {minimum} or later; you have "
                                f"{body.package_version}. Please upgrade: "
                                f"pip install -U 'tensorpool>={minimum}'",
                     "error": "UPGRADE_REQUIRED", "min_version": minimum}, status_code=426)
    return JSON({"message": "", "status": "ok"})


# tp me ---------------------------------------------------------------------------------------
@router.get("/user/info", summary="The caller's account (TensorPool)")
async def user_info(request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    summary = await read(svc, svc.accounts.summary, who)
    key = summary["api_key"]
    jobs = summary["jobs"]
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(jobs.items()))
    pairs: list[tuple[str, Any]] = [
        ("User", summary["username"]), ("User ID", summary["user_id"]),
        ("Organization", summary["org"]), ("Admin", yes_no(summary["is_admin"])),
        ("Member since", when(summary["created_at"])),
        ("API key", f"{key['name']} ({key['prefix']}...)" if key else None),
        ("Jobs", f"{sum(jobs.values())}" + (f" ({by_state})" if by_state else "")),
        ("Active clusters", summary["clusters"]), ("Storage volumes", summary["volumes"]),
        ("SSH keys", summary["ssh_keys"]),
    ]
    if summary["budget"] is not None:
        pairs.append(("Budget", f"{summary['budget']:g}"))
    if summary["org_budget"] is not None:
        pairs.append(("Organization budget", f"{summary['org_budget']:g}"))
    info = {**summary, "created_at": iso(summary["created_at"])}
    return JSON({"message": key_value_table(pairs), "user_info": info})


# SSH keys ------------------------------------------------------------------------------------
class SshKeyIn(BaseModel):
    public_key: str = Field(max_length=MAX_KEY_CHARS)
    name: str | None = Field(None, max_length=100)


@router.post("/user/ssh-key/add", summary="Add an SSH public key (TensorPool)")
def add_ssh_key(body: SshKeyIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    key = services(request).accounts.add_ssh_key(who, AddSshKey(body.public_key, body.name))
    return JSON({"message": f"SSH key {key.uid} ('{key.name}', {key.key_type} "
                            f"{key.fingerprint}) added. Note: this server offers no SSH access "
                            "to clusters.",
                 "key_id": key.uid, "fingerprint": key.fingerprint})


@router.get("/user/ssh-key/list", summary="List SSH keys (TensorPool)")
async def list_ssh_keys(request: Request, include_org: bool = Query(False),
                        who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    keys = await read(svc, svc.accounts.ssh_keys, who, include_org)
    if not keys:
        message = "No SSH keys. Add one with `tp me sshkey add <path to .pub file>`."
    else:
        heads = ("KEY ID", "NAME", "TYPE", "FINGERPRINT", *(("USER",) if include_org else ()),
                 "ADDED")
        message = tsv_table(heads, [
            (k["uid"], k["name"], k["key_type"], k["fingerprint"],
             *((k["username"],) if include_org else ()), when(k["created_at"])) for k in keys])
    items = [{**{f: k[f] for f in ("name", "key_type", "fingerprint", "public_key",
                                    "username")},
              "key_id": k["uid"], "created_at": iso(k["created_at"])} for k in keys]
    return JSON({"message": message, "ssh_keys": items})


@router.delete("/user/ssh-key/remove/{key_id}", summary="Remove an SSH key (TensorPool)")
def remove_ssh_key(request: Request,
                   key_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")],
                   who: Principal = Depends(principal)) -> JSON:
    key = services(request).accounts.remove_ssh_key(who, key_id)
    return JSON({"message": f"SSH key {key_id} ('{key['name']}') removed", "key_id": key_id})


# not offered here ----------------------------------------------------------------------------
def _no_object_storage(_: Principal = Depends(principal)) -> JSON:
    raise NotSupported(NO_OBJECT_STORAGE)


def _no_bucket(bucket_name: Annotated[str, Path(max_length=100, description="the bucket")],
               _: Principal = Depends(principal)) -> JSON:
    raise NotSupported(NO_OBJECT_STORAGE)


for method, path in (("POST", "/object-storage/enable"), ("DELETE", "/object-storage/disable"),
                     ("GET", "/object-storage/credentials"),
                     ("GET", "/object-storage/configure/rclone"),
                     ("GET", "/object-storage/configure/aws"),
                     ("GET", "/object-storage/bucket/list"),
                     ("PUT", "/object-storage/bucket/create/{bucket_name}"),
                     ("DELETE", "/object-storage/bucket/delete/{bucket_name}")):
    # A path with a {bucket_name} documents it (its OpenAPI names the path parameter).
    router.add_api_route(path, _no_bucket if "{bucket_name}" in path else _no_object_storage,
                         methods=[method], status_code=501,
                         summary="Object storage: not offered by this server (TensorPool)")


@router.get("/ssh/{instance_id}", status_code=501,
            summary="SSH into an instance: not offered by this server (TensorPool)")
def ssh(instance_id: Annotated[str, Path(max_length=100)],
        _: Principal = Depends(principal)) -> JSON:
    raise NotSupported(NO_SSH)
