"""Tenants as OS identities: the unprivileged uid and gid a job runs as.

When the server runs as root, each org's jobs run as that org's own uid (``job_identity =
"org"``) or each user's (``"user"``), numbered ``first + id`` from the configured range, with
the org's gid either way (so an org's volumes are shared by group), no supplementary groups
and ``no_new_privs``; each identity has a home under the data dir. A job then cannot read,
signal or trace another tenant's processes or files, nor anything of the server's. Not as
root, jobs run as the server's user: :func:`active` says which. Stdlib only: a supervisor
applies the identity between ``fork`` and ``exec`` (see :mod:`jobyard.executors.supervisor`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
from dataclasses import asdict, dataclass

PR_SET_NO_NEW_PRIVS = 38
MODES = ("org", "user", "none")


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    gid: int
    home: str

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int | str]) -> Identity:
        return cls(int(data["uid"]), int(data["gid"]), str(data["home"]))

    def become(self) -> None:
        """Drop to this identity for good (in a forked child, before ``exec``)."""
        os.setgroups([])
        os.setresgid(self.gid, self.gid, self.gid)
        os.setresuid(self.uid, self.uid, self.uid)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot set no_new_privs")


def active(mode: str) -> str:
    """The identity jobs run as: ``mode`` (``org``/``user``) when this process is root, else
    ``"none"`` (the server's own user)."""
    return mode if mode != "none" and os.geteuid() == 0 else "none"


def of_job(configured: str, uid_range: tuple[int, int], org_id: int, user_id: int,
           data_dir: str) -> Identity | None:
    """The identity a job of ``org_id``/``user_id`` runs as, given the configured
    ``job_identity`` and ``job_uid_range`` (None: the server's own user). ValueError when the
    range has no uid for it."""
    mode = active(configured)
    if mode == "none":
        return None
    return for_tenant(mode, *uid_range, org_id, user_id, os.path.join(data_dir, "homes"))


def for_tenant(mode: str, first: int, last: int, org_id: int, user_id: int,
               homes: str) -> Identity:
    """The identity of a job of ``org_id``/``user_id`` (``mode`` is ``org`` or ``user``)."""
    uid = first + (user_id if mode == "user" else org_id)
    gid = first + org_id
    if max(uid, gid) > last:
        raise ValueError(f"no uid left in job_uid_range [{first}, {last}] for "
                         f"{mode} {user_id if mode == 'user' else org_id}")
    return Identity(uid, gid, os.path.join(homes, str(uid)))


def range_problem(first: int, last: int) -> str | None:
    """Why ``[first, last]`` cannot hold tenants' uids (None: it can)."""
    if not 0 < first <= last:
        return f"job_uid_range [{first}, {last}] is not a range of positive ids"
    if first <= os.geteuid() <= last:
        return f"job_uid_range [{first}, {last}] holds the server's own uid"
    for entry in pwd.getpwall():
        if first <= entry.pw_uid <= last:
            return (f"job_uid_range [{first}, {last}] holds the uid of the existing account "
                    f"{entry.pw_name!r} ({entry.pw_uid})")
    return None


def closed_parent(path: str) -> str | None:
    """The first folder above ``path`` that other users may not pass (no ``o+x``), if any:
    tenants' uids could not reach their folders in a data dir below it."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(parent).st_mode & 0o001:
            return parent
        if parent == os.path.dirname(parent):
            return None
        parent = os.path.dirname(parent)


def give(path: str, identity: Identity, mode: int = 0o700) -> None:
    """Make ``path`` (created if missing) and, the first time, everything under it the
    identity's. Symlinks are changed, never followed: a tenant's link to a file of someone
    else's stays a link."""
    os.makedirs(path, exist_ok=True)
    top = os.lstat(path)
    if (top.st_uid, top.st_gid) == (identity.uid, identity.gid):
        return
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), identity.uid, identity.gid)
    os.lchown(path, identity.uid, identity.gid)
    os.chmod(path, mode)


def share(path: str, identity: Identity) -> None:
    """Make ``path`` (a volume) writable by the identity's group (the org), the first time
    everything under it; new files in it keep the group (setgid)."""
    os.makedirs(path, exist_ok=True)
    if os.lstat(path).st_gid == identity.gid:
        return
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            with contextlib.suppress(FileNotFoundError):
                os.lchown(full, -1, identity.gid)
                st = os.lstat(full)
                if not os.path.islink(full):
                    os.chmod(full, st.st_mode | (0o2070 if name in dirs else 0o060))
    os.chown(path, 0, identity.gid)
    os.chmod(path, 0o2770)
