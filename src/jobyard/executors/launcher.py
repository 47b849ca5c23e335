"""The launcher ("zygote") and the per-job supervisor behind LocalExecutor.

``python -m jobyard.executors.launcher launcher`` is started once per server. It reads one JSON
launch request per line on stdin and forks a supervisor for each; the supervisor reports back
through a pipe and the launcher relays that answer, tagged with the request's ``id``, on stdout.
Forking this small, already-initialised interpreter is far cheaper than starting Python per job. The
launcher exits on EOF (its server went away); supervisors live on in their own sessions.

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

from jobyard.executors.procs import boot_time
from jobyard.executors.runfiles import write_all
from jobyard.executors.supervisor import READ_CHUNK, Supervisor, noop_handler


def _supervisor_process(req: dict[str, Any], report_fd: int) -> NoReturn:
    """Body of a freshly forked supervisor; never returns."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)  # the launcher's; about to be closed
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        # Drop everything inherited from the launcher (its control pipe above all: holding it
        # would hide the launcher's death from the server).
        os.closerange(3, report_fd)
        os.closerange(report_fd + 1, os.sysconf("SC_OPEN_MAX"))
        Supervisor(req, report_fd).main()
    except BaseException:
        code = 70
        with contextlib.suppress(Exception), open(f"{req['run_dir']}/supervisor.err", "a") as f:
            import traceback

            traceback.print_exc(file=f)
    os._exit(code)


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


if __name__ == "__main__":
    if sys.argv[1:] != ["launcher"]:
        sys.exit("usage: python -m jobyard.executors.launcher launcher")
    Launcher().serve()
