"""Shared pieces of the TensorOne tests: a server with fast metrics and known prices, endpoints
whose jobs run ``worker.py`` (a real job that does what its input says), and waits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobyard.testing import ServerProcess, wait_until
from tests.conftest import BACKENDS, drop_pg_database, pg_database

WORKER = Path(__file__).with_name("worker.py")
CPU_HOUR, GPU_HOUR = 36.0, 72.0  # an hour of one CPU / one GPU: 0.01 and 0.02 per second
ENV = {
    "JOBYARD_METRICS_INTERVAL_S": "0.2",
    "JOBYARD_PRICE_CPU_HOUR": str(CPU_HOUR),
    "JOBYARD_PRICE_GPU_HOUR": str(GPU_HOUR),
    "JOBYARD_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    "JOBYARD_WEBHOOK_POLL_INTERVAL_S": "0.2",
    "JOBYARD_WEBHOOK_RETRY_SCHEDULE_S": "[0.2, 0.4]",
    "JOBYARD_TENSORONE_RUNSYNC_MAX_S": "2",
    # Tests poll statuses; the limit itself is tested with its own server (test_limits.py).
    "JOBYARD_TENSORONE_STATUS_RATE_LIMIT": "100000/minute",
}
TERMINAL = {"completed", "failed", "cancelled", "timeout"}


def start_server(database_url: str, tmp_path_factory: pytest.TempPathFactory,
                 **kw: Any) -> ServerProcess:
    env = {**ENV, **kw.pop("env", {})}
    srv = ServerProcess(tmp_path_factory.mktemp("t1"), database_url=database_url, env=env, **kw)
    return srv.start()


# One server per backend (and test process) for the modules that need no special settings
# (test_page, test_runs, tests/clients): a server start costs seconds. Its admin key is what the
# page's Python example passes, so the example runs unchanged.
API_KEY = "your_api_key"
_SHARED: dict[str, ServerProcess] = {}


def shared_server(backend: str, tmp_path_factory: pytest.TempPathFactory,
                  config: pytest.Config) -> ServerProcess:
    """This process's shared server on ``backend`` (started on first use, stopped with the
    session, its PostgreSQL database dropped)."""
    srv = _SHARED.get(backend)
    if srv is None:
        if backend == "sqlite":
            url, drop = f"sqlite:///{tmp_path_factory.mktemp('db') / 'jobyard.db'}", None
        else:
            url, admin, name = pg_database()
            drop = (admin, name)
        srv = _SHARED[backend] = start_server(url, tmp_path_factory, admin_key=API_KEY)

        def stop() -> None:
            srv.stop()
            if drop is not None:
                drop_pg_database(*drop)

        config.add_cleanup(stop)
    return srv


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory, pytestconfig) -> ServerProcess:
    return shared_server(backend, tmp_path_factory, pytestconfig)


def create_endpoint(api: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    """An endpoint running ``worker.py`` (the one made before on this server, if any: module
    fixtures may be set up again on the shared server)."""
    r = api.post("/v1/endpoints", json={"name": name, "command": ["python3", str(WORKER)],
                                        **body})
    if r.status_code == 409:
        r = api.get(f"/v1/endpoints/ep_{name}")
        assert r.status_code == 200, r.text
        return r.json()
    assert r.status_code == 201, r.text
    return r.json()


def run(api: httpx.Client, endpoint_id: str, input: Any, **body: Any) -> str:
    r = api.post(f"/v2/endpoints/{endpoint_id}/run", json={"input": input, **body})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert set(answer) == {"jobId", "status"} and answer["status"] == "queued", answer
    return answer["jobId"]


def status(api: httpx.Client, job_id: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/v2/jobs/{job_id}/status", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def wait_status(api: httpx.Client, job_id: str,
                done: Callable[[dict[str, Any]], bool] | set[str] | str = TERMINAL,
                timeout: float = 30, **params: Any) -> dict[str, Any]:
    if isinstance(done, str):
        done = {done}
    test = done if callable(done) else (lambda s, wanted=done: s["status"] in wanted)

    def ready() -> dict[str, Any] | None:
        answer = status(api, job_id, **params)
        return answer if test(answer) else None

    return wait_until(ready, timeout=timeout, interval=0.02)


def when(text: str) -> datetime:
    """An ISO 8601 time of the page's kind (``2024-01-15T14:30:00Z``)."""
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def release(tmp_path: Path) -> Callable[[], str]:
    """A fresh path a job waits for (``"release"`` in its input); touch it to let go."""
    n = iter(range(1000))
    return lambda: str(tmp_path / f"release-{next(n)}")


def outsider_key(server: ServerProcess, org: str) -> str:
    """A new API key of a user in another org (the org and user are made on first use)."""
    with server.client() as admin:
        r = admin.post("/v1/orgs", json={"name": org})
        assert r.status_code in (201, 409), r.text
        r = admin.post("/v1/users", json={"username": f"{org}-user", "org": org})
        assert r.status_code in (201, 409), r.text
        r = admin.post("/v1/keys", json={"name": "k", "username": f"{org}-user"})
        assert r.status_code == 201, r.text
        return r.json()["key"]
