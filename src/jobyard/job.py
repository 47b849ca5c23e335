"""Talk back from inside a Jobyard job: progress, a current step, metadata, outputs, metrics.

>>> import jobyard.job
>>> jobyard.job.progress(45, step="processing_images", metadata={"imagesProcessed": 450})
>>> jobyard.job.output("predictions.csv", "out/predictions.csv", records=1000)
>>> jobyard.job.metric("loss", 0.12)

Calls never block the job for more than a lock and never raise: they record the latest state,
and a background thread sends it at most every :data:`SEND_INTERVAL_S` (latest wins; metadata
and metrics merge; outputs accumulate), retries while the server is briefly away, and flushes
at exit (bounded by :data:`EXIT_FLUSH_S`). Outside a job (no ``JOBYARD_JOB_TOKEN``) the first call
warns and every call does nothing. Stdlib only, so importing it costs the job next to nothing; the
shell's ``jobyard report`` sends through :mod:`jobyard.telemetry.sender` too.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from jobyard.telemetry.sender import REQUEST_TIMEOUT_S, Sender, job_env, next_seq

__all__ = ["flush", "metric", "output", "progress", "substate"]

SEND_INTERVAL_S = 0.25
EXIT_FLUSH_S = 2.0
MAX_BACKOFF_S = 5.0
SUBSTATES = ("processing", "finalizing", "uploading")
_LATEST_WINS = ("seq", "progress", "step", "throughput", "items_done", "items_total", "substate")


def _never_raises(fn: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # a report is never worth the job's life
            _warn(f"{fn.__name__}() ignored: {type(exc).__name__}: {exc}")

    return call


@_never_raises
def progress(
    percent: float | None = None,
    step: str | None = None,
    metadata: dict[str, Any] | None = None,
    throughput: float | tuple[float, str] | None = None,
    *,
    items_done: float | None = None,
    items_total: float | None = None,
) -> None:
    """Report progress (0 to 100), the current step, metadata (merged; None deletes a key),
    throughput (a number, or ``(value, unit)``) and items done/total. Any may be left out."""
    report: dict[str, Any] = {}
    if percent is not None and math.isfinite(percent := float(percent)):
        report["progress"] = min(100.0, max(0.0, percent))
    if step is not None:
        report["step"] = str(step)[:200]
    if metadata:
        report["metadata"] = dict(metadata)
    if isinstance(throughput, tuple):
        report["throughput"] = {"value": float(throughput[0]), "unit": str(throughput[1])}
    elif throughput is not None:
        report["throughput"] = float(throughput)
    for key, value in (("items_done", items_done), ("items_total", items_total)):
        if value is not None:
            report[key] = value if isinstance(value, int) else float(value)
    if report:
        _submit(report)


@_never_raises
def output(name: str, path: str | os.PathLike[str], records: int | None = None) -> None:
    """Declare an output: ``name`` in the job's outputs, read from ``path`` when the job ends."""
    item = {"name": str(name), "path": os.path.abspath(os.fspath(path)),
            "records": None if records is None else int(records)}
    _submit({"outputs": [item]})


@_never_raises
def metric(name: str, value: float) -> None:
    """Record a named number (the latest value per name is kept)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    _submit({"metrics": {str(name): float(value)}})


@_never_raises
def substate(name: str) -> None:
    """Say what the job is doing: ``processing``, ``finalizing`` or ``uploading``."""
    if name not in SUBSTATES:
        _warn(f"unknown substate {name!r}; expected one of {', '.join(SUBSTATES)}")
        return
    _submit({"substate": name})


def flush(timeout: float = EXIT_FLUSH_S) -> bool:
    """Send what is pending now; True once the server has it (False on timeout)."""
    reporter = _reporter(stacklevel=3)
    return True if reporter is None else reporter.flush(timeout)


class Reporter:
    """Coalesces reports and sends them from a daemon thread (see the module docs)."""

    def __init__(self, url: str, job_id: str, token: str,
                 interval: float = SEND_INTERVAL_S) -> None:
        self._sender = Sender(url, job_id, token, REQUEST_TIMEOUT_S)
        self._interval = interval
        self._cond = threading.Condition()
        self._pending: dict[str, Any] | None = None
        self._busy = False  # a request is in flight
        self._flushing = 0
        self._not_before = 0.0
        self._failures = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, report: dict[str, Any]) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending = _merge(self._pending, {**report, "seq": next_seq()})
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jobyard-reporter",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._pending is not None or self._busy:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        break
                    self._cond.wait(left)
                return self._pending is None and not self._busy
            finally:
                self._flushing -= 1

    def _run(self) -> None:
        while True:
            try:
                if not self._send_next():
                    return
            except Exception as exc:  # keep the thread alive; drop what broke it
                _warn(f"report dropped: {type(exc).__name__}: {exc}")
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send_next(self) -> bool:
        """Wait for something to send, send it; False once reports are closed."""
        with self._cond:
            while not self._closed and (self._pending is None or self._wait_s() > 0):
                self._cond.wait(None if self._pending is None else self._wait_s())
            if self._closed:
                return False
            batch, self._pending, self._busy = self._pending, None, True
        assert batch is not None
        status, answer = self._sender.post(batch)
        with self._cond:
            self._busy = False
            self._after(batch, status, answer)
            self._cond.notify_all()
        return True

    def _wait_s(self) -> float:
        """How long to hold the pending report: the send interval, or a retry's back-off."""
        wait = self._not_before - time.monotonic()
        if self._flushing:  # no interval; a back-off of at most 0.2 s
            return min(wait, 0.2) if self._failures else 0.0
        return wait

    def _after(self, batch: dict[str, Any], status: int | None, answer: str) -> None:
        now = time.monotonic()
        if status is None or status >= 500 or status == 429:  # away, or busy: try again
            self._pending = _merge(batch, self._pending)
            self._failures += 1
            self._not_before = now + min(MAX_BACKOFF_S, 0.25 * 2**self._failures)
            if self._failures == 3:
                _warn(f"the server is not answering reports ({answer}); retrying")
            return
        self._failures, self._not_before = 0, now + self._interval
        if status in (401, 403, 404, 409):  # the job ended, or this token is not (any more) valid
            self._closed, self._pending = True, None
            _warn(f"reports refused ({status}): {answer}; no more reports are sent")
        elif status >= 400:
            _warn(f"a report was refused ({status}): {answer}")


def _merge(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """``new`` over ``old``: latest wins, metadata and metrics merge, outputs accumulate."""
    if old is None or new is None:
        return new if old is None else old
    merged = {**old, **{k: new[k] for k in _LATEST_WINS if k in new}}
    for key in ("metadata", "metrics"):
        if key in old or key in new:
            merged[key] = {**old.get(key, {}), **new.get(key, {})}
    if "outputs" in old or "outputs" in new:
        named = {o["name"]: o for o in (*old.get("outputs", ()), *new.get("outputs", ()))}
        merged["outputs"] = list(named.values())
    return merged


_state: dict[str, Any] = {"reporter": None, "warned": set()}
_state_lock = threading.Lock()


def _reporter(stacklevel: int = 5) -> Reporter | None:
    reporter = _state["reporter"]
    if reporter is not None or _state["reporter"] is False:
        return reporter or None
    with _state_lock:
        if _state["reporter"] is None:
            env = job_env()
            if env is None:
                _state["reporter"] = False
                warnings.warn("jobyard.job: not running inside a Jobyard job "
                              "(JOBYARD_JOB_TOKEN is not set); reports are ignored",
                              RuntimeWarning, stacklevel=stacklevel)
            else:
                _state["reporter"] = Reporter(*env)
    return _state["reporter"] or None


def _submit(report: dict[str, Any]) -> None:
    try:
        reporter = _reporter()
        if reporter is not None:
            reporter.submit(report)
    except Exception as exc:  # never into the job
        _warn(f"report dropped: {type(exc).__name__}: {exc}")


def _warn(message: str) -> None:
    if message[:40] not in _state["warned"]:
        _state["warned"].add(message[:40])
        print(f"jobyard.job: {message}", file=sys.stderr, flush=True)


def _at_exit() -> None:
    reporter = _state["reporter"]
    if reporter:
        reporter.flush(EXIT_FLUSH_S)


def _after_fork() -> None:  # the child has no sender thread: it makes its own on first use
    global _state_lock
    _state_lock = threading.Lock()
    if _state["reporter"]:
        _state["reporter"] = None


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork)
