"""Fixtures for the Integrate.io dialect: an httpx client speaking its wire format (Basic
auth with the key as the username, the version ``Accept`` header), and the published
``xplenty`` SDK in its own virtual environment, driven in a subprocess (``sdk_driver.py``).

The environment is built once per machine under ``.venv/compat/`` and reused while
``xplenty-sdk.txt`` is unchanged (``jobyard.testing.client_venv``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobyard.testing import ServerProcess, client_venv, wait_until
from tests.conftest import BACKENDS, drop_pg_database, pg_database

HERE = Path(__file__).parent
ROOT = Path(__file__).resolve().parents[4]
ACCEPT = "application/vnd.xplenty+json; version=2"
ACCOUNT = "default"  # the org of the bootstrap admin: the account id is the org's name (or id)

Sdk = Callable[..., Any]


@pytest.fixture(scope="package", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[ServerProcess]:
    """One server per database for this whole folder (each costs seconds to start); tests
    keep to objects of their own (own names, own clusters, which they terminate)."""
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'jobyard.db'}"
    else:
        url, admin, name = pg_database()
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=url)
    srv.start()
    yield srv
    srv.stop()
    if admin is not None:
        drop_pg_database(admin, name)


def basic(key: str, colon: bool = True) -> str:
    return "Basic " + base64.b64encode((key + (":" if colon else "")).encode()).decode()


def xclient(server: ServerProcess, key: str | None = None,
            account: str = ACCOUNT) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/{account}/api", timeout=10, headers={
        "Accept": ACCEPT, "Authorization": basic(key or server.admin_key)})


@pytest.fixture
def xapi(server: ServerProcess) -> Iterator[httpx.Client]:
    with xclient(server) as client:
        yield client


def make_package(api: httpx.Client, name: str, command: Any, **body: Any) -> dict[str, Any]:
    r = api.post("/v1/packages", json={"name": name, "command": command, **body})
    assert r.status_code == 201, r.text
    return r.json()


def available_cluster(x: httpx.Client, nodes: int = 1, **body: Any) -> dict[str, Any]:
    r = x.post("/clusters", json={"type": "production", "nodes": nodes, **body})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]

    def ready() -> dict[str, Any] | None:
        c = x.get(f"/clusters/{cid}").json()
        assert c["status"] in ("pending", "creating", "available"), c
        return c if c["status"] == "available" else None

    return wait_until(ready, timeout=20, interval=0.05)


def terminate(x: httpx.Client, cluster_id: int) -> None:
    """Terminate a cluster and wait until its resources are back (the next test's claim
    needs them on a small machine)."""
    r = x.delete(f"/clusters/{cluster_id}")
    assert r.status_code == 200 and r.json()["status"] in (
        "pending_terminate", "terminating", "terminated")
    wait_until(lambda: x.get(f"/clusters/{cluster_id}").json()["status"] == "terminated",
               timeout=20, interval=0.05)


def wait_job(x: httpx.Client, job_id: int, statuses: set[str] | str,
             timeout: float = 20) -> dict[str, Any]:
    wanted = {statuses} if isinstance(statuses, str) else statuses

    def reached() -> dict[str, Any] | None:
        r = x.get(f"/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json() if r.json()["status"] in wanted else None

    return wait_until(reached, timeout=timeout, interval=0.03)


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    return client_venv(HERE / "xplenty-sdk.txt", ROOT) / "bin" / "python"


def sdk_runner(python: Path, server: ServerProcess, key: str | None = None,
               account: str = ACCOUNT) -> Sdk:
    """``sdk(action, **args)``: one call of the real SDK against ``server``; its JSON."""

    def run(action: str, timeout: float = 60, **args: Any) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
        env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        done = subprocess.run(
            [str(python), str(HERE / "sdk_driver.py"), server.url, account,
             key or server.admin_key, action, json.dumps(args)],
            env=env, timeout=timeout, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


@pytest.fixture
def sdk(sdk_python: Path, server: ServerProcess) -> Sdk:
    return sdk_runner(sdk_python, server)

