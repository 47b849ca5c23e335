"""A job's view in its own namespaces: what it sees of hidden folders and files, and its /proc.

As root here (the server's own case is tests/security/test_unprivileged_server.py): the
mechanics are the same, only root keeps its capabilities in the namespace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from jobyard.executors.sandbox import View, enter, probe

WHY_NOT = probe()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


def in_view(view: View, look: Callable[[], dict]) -> dict:
    """Run ``look`` in a forked child inside ``view`` (as pid 1's child would: its own PID
    namespace with its /proc); returns what it returned."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            enter(view)
            first = os.fork()
            if first == 0:
                from jobyard.executors.sandbox import MS_NODEV, MS_NOEXEC, MS_NOSUID, _mount

                _mount(b"proc", "/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                os.write(w, json.dumps(look()).encode())
                os._exit(0)
            os._exit(os.waitstatus_to_exitcode(os.waitpid(first, 0)[1]))
        except BaseException as exc:  # the test sees it as a missing answer
            os.write(w, json.dumps({"error": repr(exc)}).encode())
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = json.loads(f.read() or b"{}")
    os.waitpid(pid, 0)
    return answer


def test_a_view_shows_only_its_own_folders_of_what_it_hides(tmp_path: Path):
    data = tmp_path / "data"
    mine = data / "runs" / "a.1" / "work"
    theirs = data / "runs" / "b.1" / "work"
    for folder in (mine, theirs):
        folder.mkdir(parents=True)
        (folder / "file").write_text(folder.parent.name)
    (data / "jobyard.db").write_text("secret")
    store = tmp_path / "elsewhere.db"
    store.write_text("secret too")

    def look() -> dict:
        def attempt(fn):
            try:
                return fn()
            except OSError as exc:
                return exc.strerror

        return {
            "data": sorted(os.listdir(data)),
            "runs": sorted(os.listdir(data / "runs")),
            "mine": (mine / "file").read_text(),
            "theirs": attempt(lambda: (theirs / "file").read_text()),
            "store": store.read_text(),
            "write-mine": attempt(lambda: (mine / "new").write_text("x")),
            "write-data": attempt(lambda: (data / "new").write_text("x")),
            "pid": os.getpid(),
            "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        }

    seen = in_view(View((str(data), str(store), str(tmp_path / "missing")), (str(mine),)), look)
    assert seen["data"] == ["runs"] and seen["runs"] == ["a.1"], seen
    assert seen["mine"] == "a.1" and seen["write-mine"] == 1
    assert seen["theirs"] == "No such file or directory"
    assert seen["store"] == ""  # a hidden file reads as empty
    assert seen["write-data"] == "Read-only file system"
    assert seen["pid"] == 1 and seen["processes"] == [1]
    # Nothing of it reached the machine: what the view wrote is in the real folder.
    assert (mine / "new").read_text() == "x" and not (data / "new").exists()
    assert store.read_text() == "secret too" and sorted(os.listdir(data)) == ["jobyard.db", "runs"]


def test_a_shown_folder_inside_another_shown_one_is_bound_once(tmp_path: Path):
    data = tmp_path / "data"
    (data / "ws" / "project").mkdir(parents=True)
    (data / "ws" / "project" / "f").write_text("p")
    seen = in_view(View((str(data),), (str(data / "ws" / "project"), str(data / "ws"))),
                   lambda: {"ws": os.listdir(data / "ws"),
                            "f": (data / "ws" / "project" / "f").read_text()})
    assert seen == {"ws": ["project"], "f": "p"}


def test_a_view_round_trips_through_a_launch_request():
    view = View(("/var/lib/jobyard", "/etc/jobyard.toml"), ("/var/lib/jobyard/runs/x.1/work",))
    assert View.from_dict(json.loads(json.dumps(view.to_dict()))) == view
