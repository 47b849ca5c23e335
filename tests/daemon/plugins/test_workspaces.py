"""Fetching a workspace another replica made, as a leader on another machine does: the origin is
a real server; this replica's data dir is a folder of its own at which the job's workdir
points (as it would with the same ``data_dir`` path on two machines)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.config import load_config
from jobyard.core.models import Job, Resources, RetryPolicy
from jobyard.core.states import JobState
from jobyard.core.tokens import Signer
from jobyard.daemon.plugins.workspaces import WorkspaceFetch
from jobyard.errors import LaunchError
from jobyard.runtime import server_secret
from jobyard.store.engine import make_engines
from jobyard.store.sql import SqlStore
from jobyard.testing import ServerProcess, free_port


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Iterator[tuple[ServerProcess, Signer]]:
    srv = ServerProcess(tmp_path_factory.mktemp("origin")).start()
    engines = make_engines(f"sqlite:///{srv.data_dir / 'jobyard.db'}")
    secret = server_secret(SqlStore(engines))
    engines.dispose()
    yield srv, Signer(secret)
    srv.stop()


def job_in(workdir: Path, replica: str) -> Job:
    return Job(id=1, uid="job_fetched", user_id=1, org_id=1, name="f", command="true", env={},
               workdir=str(workdir), resources=Resources(), instance_type=None, priority=0,
               time_limit_s=None, retry=RetryPolicy(), tags=[], state=JobState.LAUNCHING,
               created_at=time.time(), workspace_replica=replica)


def made_on(srv: ServerProcess, name: str) -> None:
    project = srv.data_dir / "workspaces" / name / "project"
    (project / "sub").mkdir(parents=True)
    (project / "main.py").write_text("print('hi')")
    (project / "sub" / "data.bin").write_bytes(bytes(range(256)) * 100)
    (srv.data_dir / "workspaces" / name / "input.json").write_text('{"n": 1}')


async def test_a_workspace_made_elsewhere_is_fetched_to_the_same_place(origin, tmp_path):
    srv, signer = origin
    made_on(srv, "wsfetched01")
    here = tmp_path / "here"
    fetch = WorkspaceFetch(load_config(data_dir=here, port=free_port()), signer)
    workdir = here / "workspaces" / "wsfetched01" / "project"
    await fetch.prepare(job_in(workdir, srv.url))
    assert (workdir / "main.py").read_text() == "print('hi')"
    assert (workdir / "sub" / "data.bin").read_bytes() == bytes(range(256)) * 100
    assert (workdir.parent / "input.json").read_text() == '{"n": 1}'
    assert not list((here / "workspaces").glob(".fetch-*"))  # the archive is gone
    await fetch.prepare(job_in(workdir, srv.url))  # a retry: already here, kept as it is


async def test_what_cannot_be_fetched_fails_the_launch_with_why(origin, tmp_path):
    srv, signer = origin
    here = tmp_path / "here"
    fetch = WorkspaceFetch(load_config(data_dir=here, port=free_port()), signer)
    with pytest.raises(LaunchError, match=r"does not give its project \(HTTP 404"):
        await fetch.prepare(job_in(here / "workspaces" / "wsnosuch0001" / "project", srv.url))
    forged = WorkspaceFetch(load_config(data_dir=here, port=free_port()), Signer(b"other"))
    made_on(srv, "wsforged0001")
    with pytest.raises(LaunchError, match="HTTP 403"):
        await forged.prepare(job_in(here / "workspaces" / "wsforged0001" / "project", srv.url))
    gone = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LaunchError, match="cannot be reached"):
        await fetch.prepare(job_in(here / "workspaces" / "wsgone000001" / "project", gone))
    with pytest.raises(LaunchError, match="need the same data_dir"):
        await fetch.prepare(job_in(tmp_path / "elsewhere" / "wsx" / "project", srv.url))
    assert not (here / "workspaces" / "wsnosuch0001").exists()
