"""Unpacking a pushed project: files and directories inside the destination, nothing else.

Each refused archive leaves its destination empty, writes nothing outside it (a sentinel beside
the workspace stays as it was), and says why without a path of the server.
"""

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from jobyard.errors import StorageFull, ValidationFailed
from jobyard.store.files import new_workspace, unpack

SENTINEL = b"sentinel"


def member(tar, name, kind="file", data=b"", target="", mode=None):
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
                 "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
                 "fifo": tarfile.FIFOTYPE}[kind]
    info.linkname = target
    if mode is not None:
        info.mode = mode
    elif kind == "dir":
        info.mode = 0o777
    if kind == "file":
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if kind == "file" else None)


def archive(path, members):
    """``members``: (name, data) for files, or (name, kind, target)."""
    with tarfile.open(path, "w:gz") as tar:
        for item in members:
            if len(item) == 2:
                member(tar, item[0], data=item[1])
            else:
                member(tar, item[0], item[1], target=item[2])
    return path


@pytest.fixture
def place(tmp_path):
    """A workspace's project directory, with a sentinel file beside the workspace."""
    (tmp_path / "flag").write_bytes(SENTINEL)
    return new_workspace(tmp_path / "data") / "project"


def untouched(tmp_path: Path, dest: Path) -> None:
    assert (tmp_path / "flag").read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tgz", "data", "flag"]
    assert list(dest.iterdir()) == []


def test_a_project_is_unpacked_into_a_fresh_workspace(tmp_path):
    ws = new_workspace(tmp_path)
    with tarfile.open(tmp_path / "a.tgz", "w:gz") as tar:
        member(tar, "main.py", data=b"print(1)", mode=0o6777)  # setuid, setgid, o+w
        member(tar, "pkg", "dir")
        member(tar, "pkg/mod.py", data=b"x = 1", mode=0o400)
        member(tar, "./run.sh", data=b"#!/bin/sh", mode=0o755)
    assert unpack(tmp_path / "a.tgz", ws / "project", max_bytes=100) == 3
    assert (ws / "project" / "pkg" / "mod.py").read_text() == "x = 1"
    assert stat.S_IMODE((ws / "project" / "main.py").stat().st_mode) == 0o755
    assert stat.S_IMODE((ws / "project" / "pkg" / "mod.py").stat().st_mode) == 0o600
    assert stat.S_IMODE((ws / "project" / "run.sh").stat().st_mode) == 0o755
    assert new_workspace(tmp_path) != ws


@pytest.mark.parametrize(("members", "why"), [
    ([("../flag", b"x")], "leads out of the project"),
    ([("ok.txt", b"1"), ("a/../../../flag", b"x")], "leads out of the project"),
    ([("/etc/evil", b"x")], "absolute path"),
    ([("link", "sym", "/etc/passwd")], "symbolic link"),
    ([("link", "sym", "../../../flag")], "symbolic link"),
    ([("ok.txt", b"1"), ("inside", "sym", "ok.txt")], "symbolic link"),  # even inside
    ([("hard", "hard", "../../../flag")], "hard link"),
    ([("ok.txt", b"1"), ("hard", "hard", "ok.txt")], "hard link"),
    ([("tty", "chr", "")], "character device"),
    ([("disk", "blk", "")], "block device"),
    ([("pipe", "fifo", "")], "FIFO"),
    ([("x" * 2000, b"x")], "too long"),
    ([("d" * 300 + "/f", b"x")], "longer than 255 bytes"),
])
def test_links_devices_and_escaping_names_are_refused(tmp_path, place, members, why):
    bad = archive(tmp_path / "bad.tgz", members)
    with pytest.raises(ValidationFailed, match=why) as refused:
        unpack(bad, place, max_bytes=100)
    assert str(tmp_path) not in refused.value.message
    assert refused.value.details["loc"] == ["project"]
    untouched(tmp_path, place)


def realpath_limit_archive(path: Path, dest: Path, ups: int) -> Path:
    """CVE-2025-4517: directories and symlinks whose expanded path exceeds PATH_MAX, so that a
    non-strict realpath stops expanding and judges what follows lexically (inside), while the
    kernel follows every link. A last symlink goes back up to ``dest``; ``escape`` goes ``ups``
    levels above it; a hard link through it reaches ``flag`` there, a file written through it
    overwrites that, and a new file lands beside it."""
    steps = "abcdefghijklmnop"
    room = os.pathconf(dest.parent, "PC_PATH_MAX") - len(str(dest)) - 1
    component = "d" * (room // (len(steps) + 1))
    with tarfile.open(path, "w") as tar:
        nested = ""
        for step in steps:
            member(tar, os.path.join(nested, component), "dir")
            member(tar, os.path.join(nested, step), "sym", target=component)
            nested = os.path.join(nested, component)
        top = os.path.join(*steps, "l" * 254)
        member(tar, top, "sym", target=os.path.join(*[".."] * len(steps)))
        member(tar, "escape", "sym", target=os.path.join(top, *[".."] * ups))
        member(tar, "flaglink", "hard", target="escape/flag")
        member(tar, "flaglink", data=b"overwritten")
        member(tar, "escape/newfile", data=b"new")
    return path


def test_the_realpath_limit_attack_writes_nothing_outside(tmp_path, place):
    # The archive is a real attack: where tarfile's data filter lacks the fix (3.11.7 here),
    # the filter passes it and files are written two levels above the destination.
    trial = tmp_path / "trial"
    (trial / "ws" / "project").mkdir(parents=True)
    (trial / "flag").write_bytes(SENTINEL)
    attack = realpath_limit_archive(tmp_path / "cve.tar", trial / "ws" / "project", ups=2)
    try:
        with tarfile.open(attack) as tar:
            tar.extractall(trial / "ws" / "project", filter="data")
    except (OSError, KeyError, tarfile.TarError):
        pass  # a fixed tarfile refuses it
    else:
        assert (trial / "flag").read_bytes() == b"overwritten"
        assert (trial / "newfile").read_bytes() == b"new"

    attack = realpath_limit_archive(tmp_path / "bad.tgz", place, ups=2)
    with pytest.raises(ValidationFailed, match="symbolic link") as refused:
        unpack(attack, place, max_bytes=10_000)
    assert str(tmp_path) not in refused.value.message
    (tmp_path / "cve.tar").unlink()
    shutil.rmtree(trial)
    untouched(tmp_path, place)


def test_no_tarfile_extraction_is_used(tmp_path, monkeypatch):
    """The checks are ours on every Python: unpack never hands a member to tarfile's own
    extraction (whose filter a Python without the CVE-2025-4517 fix lets through)."""
    def forbidden(*args, **kwargs):
        raise AssertionError("tarfile's extraction was called")

    for name in ("extractall", "extract", "_extract_member", "_extract_one"):
        monkeypatch.setattr(tarfile.TarFile, name, forbidden, raising=False)
    dest = new_workspace(tmp_path) / "project"
    src = archive(tmp_path / "a.tgz", [("a/b/c.txt", b"c"), ("d.txt", b"d")])
    assert unpack(src, dest, max_bytes=100) == 2
    assert (dest / "a" / "b" / "c.txt").read_bytes() == b"c"


def test_a_link_already_in_the_destination_is_not_followed(tmp_path):
    dest = new_workspace(tmp_path / "data") / "project"
    outside = tmp_path / "outside"
    outside.mkdir()
    for members in ([("sub/x", b"x")], [("file", b"x")]):
        os.symlink(outside, dest / "sub")
        os.symlink(tmp_path / "victim", dest / "file")
        with pytest.raises(ValidationFailed, match=r"could not be unpacked|through a link"):
            unpack(archive(tmp_path / "t.tgz", members), dest, max_bytes=100)
        assert list(outside.iterdir()) == [] and not (tmp_path / "victim").exists()
        assert list(dest.iterdir()) == []  # what the refusal found there went too


def test_a_failure_midway_leaves_the_destination_empty(tmp_path):
    dest = new_workspace(tmp_path) / "project"
    src = archive(tmp_path / "t.tgz", [("a", b"file"), ("b/c", b"c"), ("a/x", b"x")])
    with pytest.raises(ValidationFailed, match="'a/x': Not a directory") as refused:
        unpack(src, dest, max_bytes=100)
    assert str(tmp_path) not in refused.value.message
    assert list(dest.iterdir()) == []


def test_too_large_or_broken_archives_are_refused_before_writing(tmp_path):
    dest = new_workspace(tmp_path) / "project"
    with pytest.raises(ValidationFailed, match="too large"):
        unpack(archive(tmp_path / "big.tgz", [("a", b"x" * 50), ("b", b"y" * 51)]), dest,
               max_bytes=100)
    with pytest.raises(ValidationFailed, match="more than 2 files"):
        unpack(archive(tmp_path / "many.tgz", [("a", b""), ("b", b""), ("c", b"")]), dest,
               max_bytes=100, max_files=2)
    assert list(dest.iterdir()) == []
    (tmp_path / "junk.tgz").write_bytes(b"not a tar")
    for broken in (tmp_path / "junk.tgz", tmp_path / "missing.tgz"):
        with pytest.raises(ValidationFailed, match="could not be read") as refused:
            unpack(broken, dest, max_bytes=100)
        assert str(tmp_path) not in refused.value.message
    truncated = archive(tmp_path / "cut.tgz", [("a", os.urandom(5000))]).read_bytes()[:-600]
    (tmp_path / "cut.tgz").write_bytes(truncated)
    with pytest.raises(ValidationFailed) as refused:
        unpack(tmp_path / "cut.tgz", dest, max_bytes=10_000)
    assert str(tmp_path) not in refused.value.message
    assert list(dest.iterdir()) == []


def test_a_full_disk_is_storage_full_not_a_bad_archive(tmp_path, tiny_disk):
    src = archive(tmp_path / "big.tgz", [("a.txt", b"x" * 100_000), ("b.bin", os.urandom(400_000))])
    dest = tiny_disk / "project"
    with pytest.raises(StorageFull) as caught:
        unpack(src, dest, max_bytes=10**9)
    assert caught.value.retry_after and str(tiny_disk) not in caught.value.message
    assert list(dest.iterdir()) == []  # what got in is removed: the space is back


def test_a_data_dir_made_for_tenants_leaves_its_new_parents_passable(tmp_path):
    from jobyard.store.files import make_dirs

    old = os.umask(0o077)
    try:
        make_dirs(tmp_path / "srv" / "jobyard" / "data", passable=True)
    finally:
        os.umask(old)
    for folder in ("srv", "srv/jobyard", "srv/jobyard/data"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o711, folder
