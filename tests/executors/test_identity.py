"""Tenants' OS identities: numbering, the checks at start, and what a job is given."""

from __future__ import annotations

import os
import stat

import pytest

from jobyard.executors import identity
from jobyard.executors.identity import Identity

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners and uids needs root")


def test_orgs_or_users_get_their_own_uid_and_the_orgs_gid():
    org = identity.for_tenant("org", 1000, 1999, org_id=7, user_id=42, homes="/h")
    assert org == Identity(1007, 1007, "/h/1007")
    user = identity.for_tenant("user", 1000, 1999, org_id=7, user_id=42, homes="/h")
    assert user == Identity(1042, 1007, "/h/1042")
    with pytest.raises(ValueError, match="no uid left"):
        identity.for_tenant("user", 1000, 1040, org_id=7, user_id=42, homes="/h")


def test_not_as_root_jobs_run_as_the_server(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert identity.active("org") == "none"
    assert identity.of_job("org", (2000, 2999), 1, 1, "/data") is None
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert identity.active("user") == "user" and identity.active("none") == "none"
    assert identity.of_job("org", (2000, 2999), 3, 5, "/data") == Identity(2003, 2003,
                                                                           "/data/homes/2003")


def test_a_range_must_hold_no_account_and_not_the_server():
    assert "positive" in identity.range_problem(0, 10)
    assert "existing account" in identity.range_problem(1, 100_000)  # daemon, bin, nobody, ...
    assert identity.range_problem(1_000_000, 1_999_999) is None


def test_a_closed_parent_is_named(tmp_path):
    closed = tmp_path / "closed"
    (closed / "data").mkdir(parents=True)
    closed.chmod(0o700)
    assert identity.closed_parent(str(closed / "data")) == str(closed)
    closed.chmod(0o711)  # tmp_path and its parents are passable (tests/conftest.py)
    assert identity.closed_parent(str(closed / "data")) is None


@as_root
def test_give_changes_links_never_what_they_point_at(tmp_path):
    tree = tmp_path / "workspace"
    (tree / "project").mkdir(parents=True)
    (tree / "project" / "train.py").write_text("print(1)")
    outside = tmp_path / "server-secret"
    outside.write_text("secret")
    (tree / "project" / "link").symlink_to(outside)
    tenant = Identity(1_000_123, 1_000_007, str(tmp_path / "home"))
    identity.give(str(tree), tenant)
    for path in (tree, tree / "project", tree / "project" / "train.py", tree / "project" / "link"):
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (1_000_123, 1_000_007), path
    assert outside.stat().st_uid == 0  # the link was changed, not its target
    assert stat.S_IMODE(tree.stat().st_mode) == 0o700


@as_root
def test_share_gives_a_volume_to_the_orgs_group(tmp_path):
    volume = tmp_path / "vol"
    (volume / "sub").mkdir(parents=True)
    (volume / "sub" / "data.csv").write_text("a,b\n")
    identity.share(str(volume), Identity(1_000_050, 1_000_007, "/h"))
    st = volume.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 1_000_007, 0o2770)
    assert (volume / "sub" / "data.csv").stat().st_gid == 1_000_007
    assert (volume / "sub" / "data.csv").stat().st_mode & 0o060 == 0o060
    assert (volume / "sub").stat().st_mode & 0o2070 == 0o2070


@as_root
def test_become_drops_groups_and_sets_no_new_privs():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            Identity(1_000_321, 1_000_009, "/nonexistent").become()
            with open("/proc/self/status") as f:
                nnp = next(line.split()[1] for line in f if line.startswith("NoNewPrivs"))
            os.write(write, f"{os.getresuid()} {os.getresgid()} {os.getgroups()} {nnp}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        seen = f.read()
    os.waitpid(pid, 0)
    assert seen == ("(1000321, 1000321, 1000321) (1000009, 1000009, 1000009) [] 1")
