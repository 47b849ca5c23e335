"""SIGKILL the server while a request is PROCESSING: after a restart it completes, and the
volume is consistent."""

from __future__ import annotations

from jobyard.testing import ServerProcess, wait_until
from tests.api.test_storage import wait_request


def test_a_request_cut_by_a_crash_is_resumed(database_url, tmp_path):
    srv = ServerProcess(tmp_path / "srv", database_url=database_url,
                        env={"JOBYARD_REQUEST_PROCESSING_DELAY_S": "60"})
    srv.start()
    try:
        api = srv.client()
        r = api.post("/v1/storage", json={"name": "survivor", "size_gb": 3})
        assert r.status_code == 202, r.text
        rid, sid = r.json()["request_id"], r.json()["storage_id"]
        wait_until(lambda: api.get(f"/v1/requests/{rid}").json()["status"] == "PROCESSING")
        native = api.get(f"/v1/requests/{rid}")
        info = api.get(f"/request/info/{rid}")
        assert int(native.headers["retry-after"]) >= 1
        assert int(info.headers["retry-after"]) >= 1 and info.json()["status"] == "PROCESSING"
        assert api.get(f"/v1/storage/{sid}").json()["state"] == "creating"

        srv.kill()
        srv.extra_env["JOBYARD_REQUEST_PROCESSING_DELAY_S"] = "0"
        srv.start()
        api = srv.client()
        done = wait_request(api, rid)
        assert done["status"] == "COMPLETED" and done["attempts"] == 2
        vol = api.get(f"/v1/storage/{sid}").json()
        assert vol["state"] == "ready" and vol["size_gb"] == 3
        assert (srv.data_dir / "volumes" / sid).is_dir()
        assert "retry-after" not in api.get(f"/request/info/{rid}").headers
    finally:
        srv.stop()
