"""The launcher ("zygote") and the per-job supervisor behind LocalExecutor.

``python -m jobyard.executors.launcher launcher`` is started once per server. It reads one JSON
launch request per line on stdin and forks a supervisor for each; the supervisor reports back
through a pipe and the launcher relays that answer, tagged with the request's ``id``, on stdout.
Forking this small, already-initialised interpreter is far cheaper than starting Python per job. The
launcher exits on EOF (its server went away); supervisors live on in their own sessions. With
cgroups it also keeps one spare supervisor whose job process already waits in a spare cgroup
(:class:`~jobyard.executors.supervisor.Parked`): entering a cgroup v1 costs an RCU grace period,
paid ahead of the next request instead of in it.

What a supervisor does once forked is in :mod:`jobyard.executors.supervisor` (:class:`Supervisor`),
with its helpers in :mod:`jobyard.executors.procs` (/proc walks, pidfd signalling) and
:mod:`jobyard.executors.runfiles` (the log and JSON files in the run directory).

Only light stdlib modules are imported, here and in those modules: every one is in each forked
supervisor's address space, and ``threading`` (pulled in by ``subprocess`` and ``psutil``) alone
doubles the cost of a fork through its at-fork hook. Hence ``os.posix_spawnp`` and a small
/proc walk instead.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import sys
from typing import Any, NoReturn

from jobyard.executors.cgroups import Cgroup
from jobyard.executors.procs import boot_time
from jobyard.executors.runfiles import write_all
from jobyard.executors.supervisor import READ_CHUNK, Parked, Supervisor, noop_handler


def _detach(*keep: int) -> None:
    """A forked supervisor's start: its own session, /dev/null for stdio, and none of the
    launcher's descriptors but ``keep`` (its control pipe above all: holding it would hide the
    launcher's death from the server)."""
    signal.set_wakeup_fd(-1)  # the launcher's; about to be closed
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _supervisor_process(req: dict[str, Any], report_fd: int) -> NoReturn:
    """Body of a freshly forked supervisor; never returns."""
    code = 0
    try:
        _detach(report_fd)
        Supervisor(req, report_fd).main()
    except BaseException:
        code = 70
        _record_crash(req)
    os._exit(code)


def _spare_process(template: dict[str, Any], control_fd: int, report_fd: int) -> NoReturn:
    """Body of a spare supervisor: park a job process in a spare cgroup (``template``), then
    wait for the request it is for (a line on ``control_fd``); EOF: not needed after all."""
    code = 0
    req: dict[str, Any] = {}
    parked = None
    try:
        _detach(control_fd, report_fd)
        with contextlib.suppress(OSError):
            parked = Parked(Cgroup.from_dict(template))
        with os.fdopen(control_fd, "rb") as control:
            line = control.readline()
        if not line:
            if parked is not None:
                parked.discard()
            os._exit(0)
        req = json.loads(line)
        Supervisor(req, report_fd, parked).main()
    except BaseException:
        code = 70
        _record_crash(req)
    os._exit(code)


def _record_crash(req: dict[str, Any]) -> None:
    if "run_dir" not in req:
        return
    with contextlib.suppress(Exception), open(f"{req['run_dir']}/supervisor.err", "a") as f:
        import traceback

        traceback.print_exc(file=f)


class Launcher:
    """Serves launch requests on stdin until EOF, forking one supervisor per request."""

    def __init__(self) -> None:
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, noop_handler)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.poller = select.poll()
        self.poller.register(0, select.POLLIN)
        self.poller.register(self.wake_r, select.POLLIN)
        self.pending: dict[int, tuple[int, bytearray]] = {}  # report pipe -> (id, answer)
        # A spare supervisor with a job process parked in a spare cgroup (see Parked):
        # (its control pipe, its report pipe, the parents of its cgroup).
        self.spare: tuple[int, int, str] | None = None
        self.spares = 0

    def serve(self) -> None:
        buf = b""
        boot_time()  # read once here rather than once per supervisor
        gc.freeze()  # keep the collector from touching (and so copying) shared pages in supervisors
        self._reply({"id": 0, "ok": True})
        while True:
            for fd, _ in self.poller.poll():
                if fd == 0:
                    if not (data := os.read(0, READ_CHUNK)):
                        return  # the server is gone; supervisors carry on
                    *lines, buf = (buf + data).split(b"\n")
                    for line in lines:
                        self._fork(json.loads(line))
                elif fd == self.wake_r:
                    os.read(self.wake_r, 512)
                    with contextlib.suppress(ChildProcessError):
                        while os.waitpid(-1, os.WNOHANG)[0]:
                            pass
                elif chunk := os.read(fd, READ_CHUNK):
                    self.pending[fd][1].extend(chunk)
                else:
                    req_id, answer = self.pending.pop(fd)
                    self.poller.unregister(fd)
                    os.close(fd)
                    died = {"ok": False, "error": "the job's supervisor died (see supervisor.err)"}
                    self._reply({"id": req_id, **(json.loads(answer) if answer else died)})

    def _fork(self, req: dict[str, Any]) -> None:
        if req.get("cgroup"):
            if not self._hand_to_spare(req):
                self._fork_supervisor(req)
            self._make_spare(req["cgroup"])
        else:
            self._fork_supervisor(req)

    def _hand_to_spare(self, req: dict[str, Any]) -> bool:
        """Give ``req`` to the spare supervisor, if there is one for its kind of cgroup."""
        spare, self.spare = self.spare, None
        if spare is None:
            return False
        control_w, report_r, parents = spare
        try:
            if parents != _parents(req["cgroup"]):
                return False
            write_all(control_w, json.dumps(req).encode() + b"\n")
        except OSError:  # it died: the launch goes the usual way
            os.close(report_r)
            return False
        finally:
            os.close(control_w)  # a spare not handed this request ends on EOF
        self.pending[report_r] = (req["id"], bytearray())
        self.poller.register(report_r, select.POLLIN)
        return True

    def _make_spare(self, cgroup: dict[str, Any]) -> None:
        self.spares += 1
        name = f"spare-{os.getpid()}-{self.spares}"
        template = {"version": cgroup["version"],
                    "dirs": {k: os.path.join(os.path.dirname(p), name)
                             for k, p in cgroup["dirs"].items()}}
        control_r, control_w = os.pipe()
        report_r, report_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (control_r, control_w, report_r, report_w):
                os.close(fd)
            return
        if pid == 0:
            os.close(control_w)
            os.close(report_r)
            _spare_process(template, control_r, report_w)
        os.close(control_r)
        os.close(report_w)
        self.spare = (control_w, report_r, _parents(cgroup))

    def _fork_supervisor(self, req: dict[str, Any]) -> None:
        report_r, report_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(report_r)
            os.close(report_w)
            self._reply({"id": req["id"], "ok": False, "error": f"cannot fork: {exc}"})
            return
        if pid == 0:
            os.close(report_r)
            _supervisor_process(req, report_w)
        os.close(report_w)
        self.pending[report_r] = (req["id"], bytearray())
        self.poller.register(report_r, select.POLLIN)

    @staticmethod
    def _reply(msg: dict[str, Any]) -> None:
        write_all(1, json.dumps(msg).encode() + b"\n")


def _parents(cgroup: dict[str, Any]) -> str:
    """What a spare must share with an attempt's cgroup: its version and parent folders."""
    dirs = cgroup["dirs"]
    return json.dumps([cgroup["version"], sorted((k, os.path.dirname(p)) for k, p in dirs.items())])


if __name__ == "__main__":
    if sys.argv[1:] != ["launcher"]:
        sys.exit("usage: python -m jobyard.executors.launcher launcher")
    Launcher().serve()
