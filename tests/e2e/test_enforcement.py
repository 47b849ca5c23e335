"""Resources enforced through the whole service: what a job asks for is what it gets."""

from __future__ import annotations

import sys

import pytest

from jobyard.executors.cgroups import detect
from tests.api.helpers import submit, wait_state

CGROUPS, WHY = detect()


def test_healthz_says_how_jobs_are_confined(api):
    health = api.get("/healthz").json()
    assert health["cgroups"] == (f"v{CGROUPS.version}" if CGROUPS else "none")
    assert health["cgroups_detail"]
    assert health["isolation"] == "none"  # jobs run as the server's user (per-tenant uids: #12)


@pytest.mark.skipif(CGROUPS is None, reason=f"no writable cgroups: {WHY}")
def test_a_job_over_its_memory_ends_failed_out_of_memory(api):
    hog = [sys.executable, "-c", "b = b'x' * (500 * 2**20); print('survived')"]
    job = submit(api, hog, resources={"memory_mb": 50})
    done = wait_state(api, job["id"])
    assert done["state"] == "failed"
    assert done["error"]["code"] == "OUT_OF_MEMORY"
    assert "memory limit of 50 MiB (peak " in done["error"]["message"]
    assert done["error"]["details"]["memory_limit_bytes"] == 50 * 2**20
    assert done["error"]["details"]["memory_peak_bytes"] >= 45 * 2**20
    fits = submit(api, hog, resources={"memory_mb": 1024})
    assert wait_state(api, fits["id"])["state"] == "completed"
