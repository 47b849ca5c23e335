"""GET /v1/jobs/{id}/metrics and budgets, through a real server (SQLite and PostgreSQL)."""

import time

import pytest

from jobyard import ids
from jobyard.testing import ServerProcess, marked_processes, wait_until
from tests.api.helpers import submit, wait_state

CPU_HOUR = 36.0  # a one-CPU job costs 0.01 a second
ENV = {"JOBYARD_METRICS_INTERVAL_S": "0.1", "JOBYARD_PRICE_CPU_HOUR": str(CPU_HOUR),
       "JOBYARD_PRICE_GPU_HOUR": "72", "JOBYARD_CURRENCY": "EUR", "JOBYARD_KILL_GRACE_S": "1"}


@pytest.fixture(scope="module")
def srv(database_url, tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=database_url, env=ENV)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(srv):
    with srv.client() as client:
        yield client


def metrics(api, ref: str) -> dict:
    r = api.get(f"/v1/jobs/{ref}/metrics")
    assert r.status_code == 200, r.text
    return r.json()


def alive(marker: str) -> list[int]:
    return [p.pid for p in marked_processes(marker)]


def test_metrics_show_the_jobs_cpu_and_memory(api, tmp_path):
    go = tmp_path / "go"
    burn = (f"import os\nx = b'x' * (64 << 20)\nprint('ready', flush=True)\n"
            f"while not os.path.exists({str(go)!r}): pass")
    job = submit(api, ["python3", "-c", burn])

    def busy_and_big():
        m = metrics(api, job["id"])
        peaks = m["peaks"] or {}
        return (peaks.get("cpu_percent") or 0) > 30 and (peaks.get("rss_bytes") or 0) >= 64 << 20

    wait_until(busy_and_big, timeout=30, interval=0.05)
    go.touch()
    assert wait_state(api, job["id"])["state"] == "completed"
    m = metrics(api, job["id"])
    assert m["series"] and m["interval_s"] == 0.1 and m["samples"] >= len(m["series"])
    point = m["series"][-1]
    assert set(point) == {"ts", "cpu_percent", "rss_bytes", "processes"}  # no GPU: no GPU fields
    assert max(p["rss_bytes"] for p in m["series"]) >= 64 << 20
    eff = m["efficiency"]
    assert eff["memory"]["peak_rss_bytes"] >= 64 << 20 and eff["cpu"]["peak_percent"] > 30
    assert eff["gpu_hours"] == 0 and "gpus" not in eff
    assert m["cold_start"]["phases"]["setup_s"] is not None  # ended by its first output


def test_cost_grows_while_running_then_is_frozen(api, tmp_path):
    go = tmp_path / "go"
    job = submit(api, f"while [ ! -e {go} ]; do sleep 0.02; done")
    wait_state(api, job["id"], "running")
    first = wait_until(lambda: metrics(api, job["id"])["cost"]["accrued"], timeout=10)
    grown = wait_until(lambda: (c := metrics(api, job["id"])["cost"])["accrued"] > first and c)
    assert grown["total"] is None and grown["rate_per_hour"] == CPU_HOUR
    assert grown["currency"] == "EUR"
    go.touch()
    done = wait_state(api, job["id"])
    cost = metrics(api, job["id"])["cost"]
    run_time = _epoch(done["finished_at"]) - _epoch(done["started_at"])
    # Charged up to the process's exit; finished_at is when that was recorded, which on a
    # loaded machine can come later: the bill never exceeds the recorded run time.
    assert cost["total"] == cost["accrued"]
    assert grown["accrued"] < cost["total"] <= CPU_HOUR * run_time / 3600 + 5e-4
    later = time.time() + 0.3
    wait_until(lambda: time.time() > later)
    assert metrics(api, job["id"])["cost"] == cost  # frozen
    assert metrics(api, job["id"])["efficiency"]["cost"]["total"] == cost["total"]


def test_a_job_that_would_exceed_its_users_budget_is_stopped(srv, api):
    user, key = _user_with_key(api)
    r = api.put(f"/v1/users/{user}/budget", json={"budget": 0.02})
    assert r.status_code == 200 and r.json()["budget"] == 0.02 and r.json()["spent"] == 0
    with srv.client(key) as mine:
        job = submit(mine, "sleep 60")
        done = wait_state(mine, job["id"], timeout=30)
        assert done["state"] == "failed", done
        assert done["error"]["code"] == "BUDGET_EXCEEDED"
        assert done["error"]["details"]["scope"] == "user"
        assert not alive(f"{job['id']}.1")
        cost = metrics(mine, job["id"])["cost"]
        assert 0 < cost["total"] <= 0.05  # stopped in time (sleep 60 would cost 0.6)
        spent = mine.get(f"/v1/users/{user}/budget").json()
        assert spent["spent"] == pytest.approx(cost["total"]) and spent["currency"] == "EUR"
        assert spent["remaining"] == pytest.approx(0.02 - cost["total"])


def test_an_org_over_its_budget_has_new_jobs_stopped(srv, api):
    user, key = _user_with_key(api)
    assert api.get(f"/v1/users/{user}/budget").json()["budget"] is None
    org_name = f"org-{user}"
    assert api.put(f"/v1/orgs/{org_name}/budget", json={"budget": 0.0}).status_code == 200
    with srv.client(key) as mine:
        job = submit(mine, "sleep 60")
        done = wait_state(mine, job["id"], timeout=30)
        assert done["state"] == "failed" and done["error"]["code"] == "BUDGET_EXCEEDED"
        assert done["error"]["details"]["scope"] == "org"
        assert mine.get(f"/v1/orgs/{org_name}/budget").json()["budget"] == 0.0
    cleared = api.put(f"/v1/orgs/{org_name}/budget", json={"budget": None}).json()
    assert cleared["budget"] is None and cleared["remaining"] is None


def test_budgets_are_for_admins_to_set_and_owners_to_read(srv, api):
    user, key = _user_with_key(api)
    other, _ = _user_with_key(api)
    with srv.client(key) as mine:
        assert mine.put(f"/v1/users/{user}/budget", json={"budget": 5}).status_code == 403
        assert mine.get(f"/v1/users/{user}/budget").status_code == 200
        assert mine.get(f"/v1/users/{other}/budget").status_code == 404
        assert mine.get(f"/v1/orgs/org-{other}/budget").status_code == 404
        theirs = submit(api, "true")  # the admin's job, in another org
        assert mine.get(f"/v1/jobs/{theirs['id']}/metrics").status_code == 404
    assert api.put("/v1/users/nobody-here/budget", json={"budget": 1}).status_code == 404
    assert api.put(f"/v1/users/{user}/budget", json={"budget": -1}).status_code == 422
    assert api.put(f"/v1/users/{user}/budget", json={}).status_code == 422


def test_a_job_that_never_ran_has_no_samples_and_costs_nothing(api):
    hog = submit(api, "sleep 60", resources={"gpus": 4})
    wait_state(api, hog["id"], "running")
    queued = submit(api, "true", resources={"gpus": 1})
    m = metrics(api, queued["id"])
    assert m["state"] == "queued" and m["series"] == [] and m["latest"] is None
    assert m["cold_start"] is None and m["efficiency"] is None
    assert m["cost"] == {"currency": "EUR", "rate_per_hour": 72 + CPU_HOUR, "accrued": 0,
                         "total": None}
    assert api.post(f"/v1/jobs/{queued['id']}/cancel").status_code == 202
    assert metrics(api, queued["id"])["cost"]["total"] == 0
    assert api.post(f"/v1/jobs/{hog['id']}/cancel").status_code == 202
    assert wait_state(api, hog["id"])["state"] == "canceled"
    assert metrics(api, hog["id"])["cost"]["total"] > 0


def _user_with_key(api) -> tuple[str, str]:
    name = "u" + ids.random_token(8).lower()
    assert api.post("/v1/orgs", json={"name": f"org-{name}"}).status_code == 201
    r = api.post("/v1/users", json={"username": name, "org": f"org-{name}"})
    assert r.status_code == 201, r.text
    key = api.post("/v1/keys", json={"name": "k", "username": name}).json()["key"]
    return name, key


def _epoch(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
