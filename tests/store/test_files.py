import io
import tarfile

import pytest

from jobyard.errors import ValidationFailed
from jobyard.store.files import new_workspace, unpack


def archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_a_project_is_unpacked_into_a_fresh_workspace(tmp_path):
    ws = new_workspace(tmp_path)
    src = archive(tmp_path / "a.tgz", [("main.py", b"print(1)", "file"),
                                       ("pkg/mod.py", b"x = 1", "file")])
    assert unpack(src, ws / "project", max_bytes=100) == 2
    assert (ws / "project" / "pkg" / "mod.py").read_text() == "x = 1"
    assert new_workspace(tmp_path) != ws


@pytest.mark.parametrize("members", [
    [("../escape.txt", b"x", "file")],
    [("link", "/etc/passwd", "link")],
    [("link", "../../outside", "link")],
])
def test_members_that_would_land_outside_are_refused(tmp_path, members):
    dest = new_workspace(tmp_path) / "project"
    with pytest.raises(ValidationFailed, match="could not be unpacked"):
        unpack(archive(tmp_path / "bad.tgz", members), dest, max_bytes=100)
    assert not (tmp_path / "escape.txt").exists()


def test_absolute_names_land_inside(tmp_path):
    dest = new_workspace(tmp_path) / "project"
    unpack(archive(tmp_path / "abs.tgz", [("/etc/evil", b"x", "file")]), dest, max_bytes=100)
    assert (dest / "etc" / "evil").read_text() == "x"


def test_too_large_or_broken_archives_are_refused_before_writing(tmp_path):
    dest = new_workspace(tmp_path) / "project"
    with pytest.raises(ValidationFailed, match="too large"):
        unpack(archive(tmp_path / "big.tgz", [("a", b"x" * 50, "file"),
                                               ("b", b"y" * 51, "file")]), dest, max_bytes=100)
    assert list(dest.iterdir()) == []
    (tmp_path / "junk.tgz").write_bytes(b"not a tar")
    with pytest.raises(ValidationFailed):
        unpack(tmp_path / "junk.tgz", dest, max_bytes=100)
