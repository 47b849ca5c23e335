"""Resources enforced through the whole service: what a job asks for is what it gets."""

from __future__ import annotations

import os
import stat

import pytest

from jobyard.executors.cgroups import detect
from tests.api.helpers import submit, wait_state

CGROUPS, WHY = detect()


def test_healthz_says_how_jobs_are_confined(api):
    health = api.get("/healthz").json()
    assert health["cgroups"] == (f"v{CGROUPS.version}" if CGROUPS else "none")
    assert health["cgroups_detail"]
    assert health["isolation"] == ("org" if os.geteuid() == 0 else "none")


@pytest.mark.skipif(CGROUPS is None, reason=f"no writable cgroups: {WHY}")
def test_a_job_over_its_memory_ends_failed_out_of_memory(api):
    hog = ["python3", "-c", "b = b'x' * (500 * 2**20); print('survived')"]
    job = submit(api, hog, resources={"memory_mb": 50})
    done = wait_state(api, job["id"])
    assert done["state"] == "failed"
    assert done["error"]["code"] == "OUT_OF_MEMORY"
    assert "memory limit of 50 MiB (peak " in done["error"]["message"]
    assert done["error"]["details"]["memory_limit_bytes"] == 50 * 2**20
    assert done["error"]["details"]["memory_peak_bytes"] >= 45 * 2**20
    fits = submit(api, hog, resources={"memory_mb": 1024})
    assert wait_state(api, fits["id"])["state"] == "completed"


def test_the_data_dir_is_the_servers_alone(server):
    """Closed to other users; with tenants' identities, passable to their own folders."""
    assert stat.S_IMODE(os.stat(server.data_dir).st_mode) == (0o711 if os.geteuid() == 0
                                                               else 0o700)
