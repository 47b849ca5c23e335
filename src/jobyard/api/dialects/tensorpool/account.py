"""TensorPool's account routes: the health/auth/version gate the CLI calls before every
command, ``tp me`` and its SSH keys, and clear refusals for what this server does not offer
(object storage, SSH into instances).

``POST /health`` authenticates like every route (401 with ``message`` for a bad key) and
refuses CLIs older than ``Config.tensorpool_min_cli_version`` with 426; the CLI prints the
``message`` of any non-200 answer and exits 1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.auth import principal, read, runtime
from jobyard.api.dialects.native.render import iso
from jobyard.api.dialects.tensorpool.shapes import (
    TensorPoolRoute,
    when,
    yes_no,
)
from jobyard.api.dialects.tensorpool.tables import key_value_table, tsv_table
from jobyard.api.responses import JSON
from jobyard.core.models import Principal
from jobyard.errors import BadRequest, Forbidden, NotFound, NotSupported

router = APIRouter(tags=["tensorpool"], route_class=TensorPoolRoute)

# OpenSSH public key types a user may register (DSA keys are no longer accepted by OpenSSH).
KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
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
    minimum = runtime(request).config.tensorpool_min_cli_version
    have, need = version_tuple(body and body.package_version), version_tuple(minimum)
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
    rt = runtime(request)
    summary = await read(rt, rt.store.accounts.account_summary, who.user_id)
    key = await read(rt, rt.store.accounts.api_key_info, who.key_id) if who.key_id else None
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
    info = {**summary, "created_at": iso(summary["created_at"]), "api_key": key}
    return JSON({"message": key_value_table(pairs), "user_info": info})


# SSH keys ------------------------------------------------------------------------------------
class SshKeyIn(BaseModel):
    public_key: str = Field(max_length=MAX_KEY_CHARS)
    name: str | None = Field(None, max_length=100)


def parse_public_key(text: str) -> tuple[str, str, str, str]:
    """An OpenSSH one-line public key → (type, normalised key, comment, SHA256 fingerprint as
    ``ssh-keygen -l`` prints it); 400 with what is wrong otherwise."""
    text = text.strip()
    if "PRIVATE KEY" in text:
        raise BadRequest("this is a private key: give the public key (the .pub file)")
    if "\n" in text or "\r" in text:
        raise BadRequest("give exactly one public key (one line, as in a .pub file)")
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise BadRequest("not an OpenSSH public key: expected '<type> <base64> [comment]' "
                         f"with a type among {', '.join(sorted(KEY_TYPES))}")
    kind, data = parts[0], parts[1]
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("not an OpenSSH public key: its key data is not base64") from None
    n = int.from_bytes(blob[:4], "big")
    if len(blob) <= 4 + n or blob[4:4 + n] != kind.encode():
        raise BadRequest(f"not an OpenSSH public key: its key data is not a {kind} key")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    comment = parts[2].strip() if len(parts) > 2 else ""
    return kind, f"{kind} {data}" + (f" {comment}" if comment else ""), comment, \
        f"SHA256:{digest}"


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


@router.post("/user/ssh-key/add", summary="Add an SSH public key (TensorPool)")
def add_ssh_key(body: SshKeyIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    kind, key, comment, fingerprint = parse_public_key(body.public_key)
    name = _printable(body.name or comment)[:100] or kind
    row = runtime(request).store.accounts.add_ssh_key(who.user_id, who.org_id, name, kind, key,
                                             fingerprint)
    return JSON({"message": f"SSH key {row['uid']} ('{name}', {kind} {fingerprint}) added. "
                            "Note: this server offers no SSH access to clusters.",
                 "key_id": row["uid"], "fingerprint": fingerprint})


@router.get("/user/ssh-key/list", summary="List SSH keys (TensorPool)")
async def list_ssh_keys(request: Request, include_org: bool = Query(False),
                        who: Principal = Depends(principal)) -> JSON:
    rt = runtime(request)
    keys = await read(rt, rt.store.accounts.list_ssh_keys, who.org_id,
                      None if include_org else who.user_id)
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
    store = runtime(request).store
    key = store.accounts.get_ssh_key(key_id)
    if key is None or not (who.is_admin or key["org_id"] == who.org_id):
        raise NotFound(f"SSH key {key_id} not found")
    if key["user_id"] != who.user_id and not who.is_admin:
        raise Forbidden(f"SSH key {key_id} belongs to another user; only they can remove it")
    if not store.accounts.delete_ssh_key(key_id):
        raise NotFound(f"SSH key {key_id} not found")
    return JSON({"message": f"SSH key {key_id} ('{key['name']}') removed", "key_id": key_id})


# not offered here ----------------------------------------------------------------------------
def _no_object_storage(_: Principal = Depends(principal)) -> JSON:
    raise NotSupported(NO_OBJECT_STORAGE)


for method, path in (("POST", "/object-storage/enable"), ("DELETE", "/object-storage/disable"),
                     ("GET", "/object-storage/credentials"),
                     ("GET", "/object-storage/configure/rclone"),
                     ("GET", "/object-storage/configure/aws"),
                     ("GET", "/object-storage/bucket/list"),
                     ("PUT", "/object-storage/bucket/create/{bucket_name}"),
                     ("DELETE", "/object-storage/bucket/delete/{bucket_name}")):
    router.add_api_route(path, _no_object_storage, methods=[method], status_code=501,
                         summary="Object storage: not offered by this server (TensorPool)")


@router.get("/ssh/{instance_id}", status_code=501,
            summary="SSH into an instance: not offered by this server (TensorPool)")
def ssh(instance_id: Annotated[str, Path(max_length=100)],
        _: Principal = Depends(principal)) -> JSON:
    raise NotSupported(NO_SSH)
