"""Small helpers for tests that talk to a real server over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from jobyard.testing import wait_until

TERMINAL = {"completed", "error", "failed", "timeout", "canceled"}


def scratch(tmp_path: Path) -> Path:
    """A folder any job may write (as root, test servers run jobs as their org's own uid)."""
    folder = tmp_path / "scratch"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o1777)
    return folder


def submit(api: httpx.Client, command: Any, **body: Any) -> dict[str, Any]:
    r = api.post("/v1/jobs", json={"command": command, **body})
    assert r.status_code == 201, r.text
    return r.json()


def get(api: httpx.Client, ref: str | int) -> dict[str, Any]:
    r = api.get(f"/v1/jobs/{ref}")
    assert r.status_code == 200, r.text
    return r.json()


def wait_state(api: httpx.Client, ref: str, states: set[str] | str = TERMINAL,
               timeout: float = 20) -> dict[str, Any]:
    wanted = {states} if isinstance(states, str) else states

    def done() -> dict[str, Any] | None:
        job = get(api, ref)
        return job if job["state"] in wanted else None

    return wait_until(done, timeout=timeout, interval=0.02)


def log_text(api: httpx.Client, ref: str) -> list[str]:
    r = api.get(f"/v1/jobs/{ref}/logs", params={"limit": 10000})
    assert r.status_code == 200, r.text
    return [line["text"] for line in r.json()["lines"]]
