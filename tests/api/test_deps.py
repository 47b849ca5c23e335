"""The links a server hands out point to its configured ``public_url``, whatever ``Host`` a
client sends (behind a proxy the header is the client's to choose)."""

from __future__ import annotations

import httpx

from jobyard.testing import ServerProcess
from tests.api.helpers import submit, wait_state

PUBLIC = "https://jobs.example.test/yard"


def test_signed_links_use_public_url_not_the_host_header(tmp_path):
    env = {"JOBYARD_PUBLIC_URL": PUBLIC + "/"}
    with ServerProcess(tmp_path / "srv", env=env) as srv, srv.client() as api:
        job = submit(api, 'echo hi > "$JOBYARD_OUTPUT_DIR/a.txt"')
        assert wait_state(api, job["id"])["state"] == "completed"
        spoofed = {"Host": "attacker.test"}
        links = api.get(f"/job/pull/{job['id']}", headers=spoofed).json()["download_map"]
        url = links["a.txt"]
        assert url.startswith(PUBLIC + "/job/file/"), url
        # The link works once the proxy in front strips its prefix.
        fetched = httpx.get(srv.url + url.removeprefix(PUBLIC))
        assert fetched.status_code == 200 and fetched.text == "hi\n"


def test_without_public_url_links_follow_the_address_the_client_used(api):
    job = submit(api, 'echo hi > "$JOBYARD_OUTPUT_DIR/a.txt"')
    assert wait_state(api, job["id"])["state"] == "completed"
    links = api.get(f"/job/pull/{job['id']}").json()["download_map"]
    assert links["a.txt"].startswith(str(api.base_url).rstrip("/") + "/job/file/")
