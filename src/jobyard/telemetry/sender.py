"""How a job's reports reach the server: ``POST /v1/jobs/{id}/report`` with the job's token.

Used by :mod:`jobyard.job` (the Python helper, from its sender thread) and by ``jobyard report``
(the shell). Stdlib only, and ``http.client`` is imported on the first send: this module is
imported into jobs, whose start-up it must not slow down.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

REQUEST_TIMEOUT_S = 2.0
_seq_lock = threading.Lock()
_last_seq = 0


def next_seq() -> int:
    """A report sequence number: wall-clock microseconds, strictly increasing in this process
    (so reports from several processes of one job, e.g. ``jobyard report``, order by time)."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns() // 1000)
        return _last_seq


def job_env() -> tuple[str, str, str] | None:
    """``(url, job id, token)`` from the job's environment, or None outside a job."""
    url, job_id = os.environ.get("JOBYARD_URL"), os.environ.get("JOBYARD_JOB_ID")
    token = os.environ.get("JOBYARD_JOB_TOKEN")
    return (url, job_id, token) if url and job_id and token else None


def send_once(report: dict[str, Any], tries: int = 3, timeout: float = REQUEST_TIMEOUT_S,
              env: tuple[str, str, str] | None = None) -> tuple[int | None, str]:
    """Send one report now, retrying briefly while the server is away or busy.

    Returns ``(HTTP status, answer)``, or ``(None, why)`` if it never got through.
    """
    env = env or job_env()
    if env is None:
        return None, "not running inside a Jobyard job (JOBYARD_JOB_TOKEN is not set)"
    sender = Sender(*env, timeout=timeout)
    try:
        for i in range(tries):
            status, answer = sender.post(report)
            if status is not None and status < 500 and status != 429:
                break
            if i + 1 < tries:
                time.sleep(min(0.2 * 2**i, 1.0))
        return status, answer
    finally:
        sender.close()


class Sender:
    """One keep-alive HTTP connection to the server's report endpoint."""

    def __init__(self, url: str, job_id: str, token: str, timeout: float) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._netloc, self._timeout = parts.netloc, timeout
        self._path = f"{parts.path.rstrip('/')}/v1/jobs/{quote(job_id)}/report"
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._conn: Any = None  # http.client.HTTP(S)Connection, made on the first post

    def post(self, report: dict[str, Any]) -> tuple[int | None, str]:
        """``(HTTP status, answer)``, or ``(None, why)`` when the server could not be reached."""
        import http.client

        try:
            body = json.dumps(report, default=str, allow_nan=False).encode()
        except ValueError as exc:
            return 422, f"report not sendable: {exc}"
        error = ""
        for fresh in (False, True):  # a kept-alive connection may have been closed meanwhile
            try:
                if self._conn is None or fresh:
                    self.close()
                    cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                    self._conn = cls(self._netloc, timeout=self._timeout)
                self._conn.request("POST", self._path, body, self._headers)
                answer = self._conn.getresponse()
                return answer.status, answer.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                self.close()
        return None, error

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _after_fork() -> None:
    global _seq_lock
    _seq_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
