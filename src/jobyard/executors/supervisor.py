"""The per-job supervisor: :class:`Supervisor` runs one job to its end.

A supervisor is a child subreaper, so setsid'd and double-forked descendants of its job stay in
its subtree. It runs the job, writes ``log``, ``supervisor.json`` (the handle) and finally
``exit.json`` (see :mod:`jobyard.executors.runfiles`). SIGTERM to the supervisor stops the job:
SIGTERM to every descendant, a grace period (``stop.json`` may override it), then SIGKILL until
none is left. A tqdm bar in the job's output is kept in ``progress.json`` (at most every 0.2 s,
and once more when the output ends) for the daemon's progress watcher. The launcher that forks
supervisors is in :mod:`jobyard.executors.launcher`; like it, this module imports light stdlib
modules only.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import resource
import select
import signal
import time
from typing import Any, NoReturn

from jobyard.executors.cgroups import Cgroup
from jobyard.executors.identity import Identity, give, share
from jobyard.executors.procs import descendants, proc_ident, signal_if_same
from jobyard.executors.runfiles import (
    LogWriter,
    ProgressFile,
    open_tmp,
    publish_json,
    read_json,
    write_all,
    write_json_atomic,
)
from jobyard.executors.sandbox import View, enter, init

PR_SET_CHILD_SUBREAPER = 36
READ_CHUNK = 65536
CLEANUP_GRACE_S = 1.0  # for processes a finished main process left behind
JOB_UMASK = 0o022
DRAIN_TIMEOUT_S = 2.0  # a pipe still open after every process is gone: fd passed elsewhere
TERM_RESCAN_S = 1.0  # during the grace, SIGTERM processes forked since the last scan
KILL_RESCAN_S = 0.05  # after it, SIGKILL whatever is left (a scan walks /proc)

# Reset for the job: Python ignores SIGPIPE and SIGXFSZ, and e.g. nohup leaves SIGHUP ignored.
_DEFAULT_SIGNALS = tuple(
    getattr(signal, f"SIG{name}")
    for name in "PIPE XFSZ HUP INT QUIT TERM USR1 USR2 ALRM CHLD TSTP TTIN TTOU".split()  # noqa: SIM905
)
_libc = ctypes.CDLL(None, use_errno=True)


def noop_handler(signum: int, frame: Any) -> None:
    """Does nothing: installed so the signal is seen through the wakeup fd."""
    pass


class Supervisor:
    """Supervises one job: spawn, log, reap, stop, and record how it ended."""

    def __init__(self, req: dict[str, Any], report_fd: int, parked: Parked | None = None) -> None:
        self.req = req
        self.parked = parked  # a spare process for the job (see Parked), if one was made
        if parked is not None and (not req.get("cgroup") or req.get("view")):
            parked.discard()
            self.parked = None
        self.run_dir: str = req["run_dir"]
        self.grace_s = float(req["grace_s"])
        self.report_fd = report_fd
        self.pid = 0
        self.main_status: int | None = None
        self.no_children = False
        self.phase = "running"  # -> terminating -> killing -> draining
        self.reason = "exited"
        self.receipt: dict[str, Any] | None = None
        self.signals: list[str] = []
        self.signaled: set[int] = set()
        self.killed: set[int] = set()
        self.t0 = self.deadline = self.next_scan = 0.0
        self.cgroup = Cgroup.from_dict(req["cgroup"]) if req.get("cgroup") else None
        self.identity = Identity.from_dict(req["identity"]) if req.get("identity") else None
        self.view = View.from_dict(req["view"]) if req.get("view") else None
        self.status_r: int | None = None  # in namespaces: how the job (not its pid 1) ended

    def main(self) -> None:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, noop_handler)
        signal.signal(signal.SIGTERM, noop_handler)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        sup = None
        os.umask(0o077)  # what we write is the server's; the job gets 022 (see _spawn)
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            os.chmod(self.run_dir, 0o711)  # passable to the job's own work and outputs dirs
            self._prepare_dirs()
            for stale in ("exit.json", "stop.json", "log", "progress.json"):  # a reused run_dir
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(stale))
            self.log = LogWriter(self._path("log"), int(self.req["log_cap_bytes"]))
            self.progress = ProgressFile(self._path("progress.json"))
            sup = open_tmp(self._path("supervisor.json"))  # proves the run dir is writable
            if self.cgroup is not None:
                self._create_cgroup()
            streams = self._spawn()
        except Exception as exc:
            error = _describe(exc, self.req)
            if self.parked is not None:  # never asked to become the job
                self.parked.discard()
            if self.cgroup is not None:
                self.cgroup.remove()
            with contextlib.suppress(OSError):
                if sup is not None:
                    os.close(sup[0])
                    os.unlink(sup[1])
                exit_info = {"reason": "launch_failed", "message": error, "ended_at": time.time()}
                write_json_atomic(self._path("exit.json"), exit_info)
            self._report({"ok": False, "error": error})
            return
        me = os.getpid()
        handle = {
            "run_dir": self.run_dir,
            "pid": self.pid,
            "pid_ctime": (proc_ident(self.pid) or (0.0,))[0],  # a zombie at worst: not reaped
            "supervisor_pid": me,
            "supervisor_ctime": (proc_ident(me) or (0.0,))[0],
            "marker": self.req["marker"],
            "extra": {
                "pgid": self.pid,
                "job_uid": self.req["job_uid"],
                "attempt": self.req["attempt"],
                **({"cgroup": self.cgroup.to_dict()} if self.cgroup else {}),
                **({"namespaces": True} if self.view else {}),  # pid: the job's pid 1
            },
        }
        try:
            publish_json(sup, self._path("supervisor.json"), handle)
            reply = {"ok": True, **handle}
        except OSError as exc:
            reply = {"ok": False, "error": f"cannot record the job in its run dir: {exc}"}
        if not self._report(reply) or not reply["ok"]:
            self._begin_stop("stopped", 0.0)  # nobody knows this job exists: don't let it run
        self._supervise(streams)

    def _path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)

    def _prepare_dirs(self) -> None:
        """Create the job's directories; with an identity, give them (and its home) to it."""
        for path in self.req.get("dirs") or ():
            if self.identity is None:
                os.makedirs(path, exist_ok=True)
            else:
                give(path, self.identity)
        if self.identity is not None:
            give(self.identity.home, self.identity)
            for path in self.req.get("shared_dirs") or ():
                share(path, self.identity)

    def _create_cgroup(self) -> None:
        assert self.cgroup is not None
        try:
            if self.parked is not None and self.parked.fits(self.cgroup):
                self.cgroup = self.parked.cgroup  # the attempt's now (its handle says where)
            elif self.parked is not None:
                self.parked.discard()
                self.parked = None
            self.cgroup.create(self.req.get("limits") or {})
        except OSError as exc:
            raise CgroupError(f"cannot set up the job's cgroup: {exc}") from None

    def _spawn(self) -> dict[int, str]:
        argv, env, cwd = self.req["argv"], self.req["env"], self.req["cwd"]
        if not argv:
            raise ValueError("empty command")
        if self.parked is not None:
            parked, self.parked = self.parked, None
            self.pid = parked.go(argv, env, cwd, self.identity)
            return {parked.out_r: "o", parked.err_r: "e"}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            if self.cgroup is None and self.identity is None and self.view is None:
                self.pid = _posix_spawn(argv, env, cwd, out_w, err_w)
            elif self.view is None:
                self.pid = _fork_exec(argv, env, cwd, out_w, err_w, self.cgroup, self.identity)
            else:
                self.pid, self.status_r = _fork_exec_in(self.view, argv, env, cwd, out_w, err_w,
                                                        self.cgroup, min(self.grace_s,
                                                                         CLEANUP_GRACE_S))
        except Exception:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        return {out_r: "o", err_r: "e"}

    def _report(self, msg: dict[str, Any]) -> bool:
        try:
            write_all(self.report_fd, json.dumps(msg).encode())
            return True
        except OSError:
            return False
        finally:
            os.close(self.report_fd)

    def _supervise(self, streams: dict[int, str]) -> None:
        poller = select.poll()
        for fd in (*streams, self.wake_r):
            poller.register(fd, select.POLLIN)
        drain_until = math.inf
        while self.phase != "draining" or (streams and time.monotonic() < drain_until):
            for fd, _ in poller.poll(self._timeout_ms(drain_until)):
                if fd == self.wake_r:
                    self._on_signals(os.read(fd, 512))
                elif data := os.read(fd, READ_CHUNK):
                    self.log.feed(streams[fd], data)
                else:
                    self.progress.update(self.log, time.monotonic(), final=True)
                    self.log.eof(streams.pop(fd))
                    poller.unregister(fd)
            self.progress.update(self.log, time.monotonic())
            self._reap()
            if self._step() and drain_until == math.inf:
                drain_until = time.monotonic() + DRAIN_TIMEOUT_S
        self._finish()

    def _timeout_ms(self, drain_until: float) -> int | None:
        bar_due = self.progress.next_at if self.log.bars_changed else math.inf
        if self.phase == "running":
            until = bar_due
        elif self.phase == "draining":
            until = drain_until
        elif self.phase == "terminating":
            until = min(self.deadline, self.next_scan)
        else:
            until = self.next_scan
        if until == math.inf:
            return None
        return max(0, math.ceil((min(until, bar_due) - time.monotonic()) * 1000))

    def _on_signals(self, signums: bytes) -> None:
        if signal.SIGTERM not in signums:
            return
        try:
            grace = float((read_json(self._path("stop.json")) or {}).get("grace_s", self.grace_s))
        except (TypeError, ValueError):
            grace = self.grace_s
        if self.phase == "running":
            self._begin_stop("stopped", grace)
        elif self.phase == "terminating":  # a second stop may shorten the grace
            self.deadline = min(self.deadline, time.monotonic() + grace)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                # A subreaper with no children has no descendants left at all.
                self.no_children = True
                return
            if pid == 0:
                return
            if pid == self.pid:
                self.main_status = self._job_status(status)

    def _job_status(self, status: int) -> int:
        """The main process's wait status: in namespaces, the job's as its pid 1 wrote it
        (unless pid 1 was killed before the job ended)."""
        if self.status_r is None:
            return status
        with os.fdopen(self.status_r, "rb") as f:
            written = f.read()
        self.status_r = None
        return int(written) if written else status

    def _step(self) -> bool:
        """Advance the stop/cleanup state machine; True once every process is gone."""
        now = time.monotonic()
        if self.phase == "running":
            if self.main_status is None:
                return False
            if not self.no_children:  # the main process left others behind
                self._begin_stop("exited", min(self.grace_s, CLEANUP_GRACE_S))
                return False
        elif self.phase in ("terminating", "killing") and not self.no_children:
            if self.phase == "terminating" and now >= self.deadline:
                self.phase, self.next_scan = "killing", now
                self.signals.append("SIGKILL")
            if now >= self.next_scan:
                killing = self.phase == "killing"
                self._signal_all(signal.SIGKILL if killing else signal.SIGTERM)
                self.next_scan = now + (KILL_RESCAN_S if killing else TERM_RESCAN_S)
            return False
        elif self.phase in ("terminating", "killing"):
            self.receipt = {
                "signals": self.signals,
                "sigterm_obeyed": self.phase == "terminating",
                "time_to_stop_s": round(now - self.t0, 4),
                "processes_killed": sorted(self.killed),
                "processes_signaled": len(self.signaled),
            }
        self.phase = "draining"
        return True

    def _begin_stop(self, reason: str, grace: float) -> None:
        self.reason, self.phase, self.signals = reason, "terminating", ["SIGTERM"]
        self.t0 = time.monotonic()
        self.deadline = self.t0 + grace
        self._signal_all(signal.SIGTERM)
        self.next_scan = self.t0 + TERM_RESCAN_S

    def _signal_all(self, sig: int) -> None:
        """Signal every process of the job: its cgroup's (SIGKILL kills the cgroup at once), or
        every descendant (all of the job: we are a subreaper) and the job's group."""
        killing = sig == signal.SIGKILL
        if self.cgroup is not None:
            if killing:
                reached = self.cgroup.kill()
                self.killed.update(reached)
            else:
                reached = self.cgroup.signal(sig, skip=self.signaled)
            self.signaled.update(reached)
            return
        for pid, start in descendants(os.getpid()).items():
            if (killing or pid not in self.signaled) and signal_if_same(pid, start, sig):
                self.signaled.add(pid)
                if killing:
                    self.killed.add(pid)
        if self.main_status is None:  # while unreaped, the main process pins the group id
            with contextlib.suppress(OSError):
                os.killpg(self.pid, sig)  # also reaches group members forked since the scan

    def _finish(self) -> None:
        self.progress.update(self.log, time.monotonic(), final=True)
        self.log.close()
        code = None if self.main_status is None else os.waitstatus_to_exitcode(self.main_status)
        # Every process of the job was reaped here (a subreaper reaps the orphans too), so the
        # children's rusage is the CPU time the whole job used, to its last instruction.
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        exit_info = {
            "reason": self.reason,
            "exit_code": code if code is not None and code >= 0 else None,
            "signal": -code if code is not None and code < 0 else None,
            "ended_at": time.time(),
            "receipt": self.receipt,
            "cpu_seconds": round(used.ru_utime + used.ru_stime, 6),
        }
        if self.cgroup is not None:
            stats = self.cgroup.stats()
            for key in ("memory_peak_bytes", "memory_limit_bytes", "oom_kills"):
                exit_info[key] = stats.get(key)
            self.cgroup.remove()  # empty now; if it is not, the server's sweep removes it
        write_json_atomic(self._path("exit.json"), exit_info)


class CgroupError(Exception):
    """The job's cgroup could not be made or limited: the job is not started."""


def _posix_spawn(argv: list[str], env: dict[str, str], cwd: str | None, out_w: int,
                 err_w: int) -> int:
    if cwd is not None:
        os.chdir(cwd)  # our own cwd becomes the job's
    os.environ["PATH"] = env.get("PATH", os.defpath)  # posix_spawnp searches our PATH
    mask = os.umask(JOB_UMASK)  # inherited: posix_spawn cannot set it
    try:
        return os.posix_spawnp(
            argv[0],
            argv,
            env,
            file_actions=[(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)],
            setsid=True,  # its own session and process group
            setsigdef=_DEFAULT_SIGNALS,
            setsigmask=(),
        )
    finally:
        os.umask(mask)


def _fork_exec(argv: list[str], env: dict[str, str], cwd: str | None, out_w: int, err_w: int,
               cgroup: Cgroup | None, identity: Identity | None) -> int:
    """posix_spawnp's job, plus what it cannot do: enter ``cgroup`` and become ``identity``
    before ``exec``, so not one instruction of the job runs outside them. A failure in the
    child comes back through a pipe that ``exec`` closes, raised here as the OSError it was."""
    fail_r, fail_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(fail_r)
        try:
            if cgroup is not None:
                cgroup.join(os.getpid())
        except BaseException as exc:
            _fail(fail_w, exc)
        _become_job(argv, env, cwd, out_w, err_w, identity, fail_w)
    os.close(fail_w)
    return _exec_outcome(pid, fail_r)


def _fork_exec_in(view: View, argv: list[str], env: dict[str, str], cwd: str | None,
                  out_w: int, err_w: int, cgroup: Cgroup | None,
                  grace_s: float) -> tuple[int, int]:
    """As :func:`_fork_exec`, in the job's own namespaces (:mod:`jobyard.executors.sandbox`):
    the forked child enters them and forks their pid 1, which runs the job. Returns pid 1's
    pid (this supervisor's child once the forked one exits) and the pipe it writes the job's
    wait status to."""
    fail_r, fail_w = os.pipe()
    pid_r, pid_w = os.pipe()
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        for fd in (fail_r, pid_r, status_r):
            os.close(fd)
        try:
            if cgroup is not None:
                cgroup.join(os.getpid())
            enter(view)
            first = os.fork()
            if first:
                write_all(pid_w, str(first).encode())  # as this namespace numbers it
                os._exit(0)
            os.close(pid_w)
            init(lambda: _become_job(argv, env, cwd, out_w, err_w, None, fail_w), status_w,
                 grace_s)
        except BaseException as exc:
            _fail(fail_w, exc)
    for fd in (fail_w, pid_w, status_w):
        os.close(fd)
    with os.fdopen(pid_r, "rb") as f:
        told = f.read()
    if not told:  # the forked child failed before its pid 1 existed
        os.close(status_r)
        _exec_outcome(pid, fail_r)
        raise RuntimeError("cannot start the job's namespaces")
    os.waitpid(pid, 0)  # it exits at once: its pid 1 is ours now (we are a subreaper)
    try:
        return _exec_outcome(int(told), fail_r), status_r
    except BaseException:
        os.close(status_r)
        raise


class Parked:
    """A job's process forked before its launch request, waiting in a spare cgroup.

    Entering a cgroup v1 waits for an RCU grace period (10-20 ms on a busy machine), the larger
    part of a launch. So the launcher keeps a spare supervisor with such a process ready
    (:mod:`jobyard.executors.launcher`): the spare cgroup becomes the attempt's (its handle
    says where: renaming cgroups costs milliseconds too), the request's limits are set on it,
    and the process, in it from its first instruction, becomes the job.
    """

    def __init__(self, cgroup: Cgroup) -> None:
        self.cgroup = cgroup
        cgroup.create({})
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        go_r, self.go_w = os.pipe()
        self.fail_r, fail_w = os.pipe()
        self.ready_r, ready_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            for fd in (self.go_w, self.fail_r, self.out_r, self.err_r, self.ready_r):
                os.close(fd)
            try:
                cgroup.join(os.getpid())
                os.write(ready_w, b"1")
                os.close(ready_w)
                with os.fdopen(go_r, "rb") as f:
                    data = f.read()
                if not data:
                    os._exit(0)  # discarded
                job = json.loads(data)
                who = Identity.from_dict(job["identity"]) if job["identity"] else None
            except BaseException as exc:
                _fail(fail_w, exc)
            _become_job(job["argv"], job["env"], job["cwd"], out_w, err_w, who, fail_w)
        for fd in (out_w, err_w, go_r, fail_w, ready_w):
            os.close(fd)

    def fits(self, cgroup: Cgroup) -> bool:
        """Whether the spare can become ``cgroup`` (same controllers, same parents), once its
        process is in it (a request that comes sooner waits for that, as it would anyway)."""
        with os.fdopen(self.ready_r, "rb") as f:
            joined = f.read(1) == b"1"
        return joined and cgroup.version == self.cgroup.version and cgroup.dirs.keys() == \
            self.cgroup.dirs.keys() and all(os.path.dirname(cgroup.dirs[k]) ==
                                            os.path.dirname(p) for k, p in self.cgroup.dirs.items())

    def go(self, argv: list[str], env: dict[str, str], cwd: str | None,
           identity: Identity | None) -> int:
        """Make the parked process the job; returns its pid once it has exec'ed."""
        job = {"argv": argv, "env": env, "cwd": cwd,
               "identity": identity.to_dict() if identity else None}
        try:
            write_all(self.go_w, json.dumps(job).encode())
        finally:
            os.close(self.go_w)
        return _exec_outcome(self.pid, self.fail_r)

    def discard(self) -> None:
        """End the parked process (it was not needed) and remove its cgroup."""
        with contextlib.suppress(OSError):
            os.close(self.go_w)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        for fd in (self.out_r, self.err_r, self.fail_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.cgroup.remove()


def _become_job(argv: list[str], env: dict[str, str], cwd: str | None, out_w: int, err_w: int,
                identity: Identity | None, fail_w: int) -> NoReturn:
    """In a forked child (already in the job's cgroup): set up the job's process and exec it.
    A failure is written to ``fail_w`` (closed by a successful exec)."""
    try:
        signal.set_wakeup_fd(-1)
        os.setsid()
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for signum in _DEFAULT_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.umask(JOB_UMASK)
        if identity is not None:
            identity.become()
        if cwd is not None:  # as the job: a directory it may not enter is refused
            os.chdir(cwd)
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as exc:
            exc.filename = argv[0]  # not the last PATH entry tried: as posix_spawnp says
            raise
    except BaseException as exc:
        _fail(fail_w, exc)


def _fail(fail_w: int, exc: BaseException) -> NoReturn:
    why = {"errno": getattr(exc, "errno", None), "message": str(exc),
           "strerror": getattr(exc, "strerror", None), "filename": getattr(exc, "filename", None)}
    with contextlib.suppress(BaseException):
        write_all(fail_w, json.dumps(why).encode())
    os._exit(127)


def _exec_outcome(pid: int, fail_r: int) -> int:
    """``pid`` once it has exec'ed, or the OSError its failure pipe tells."""
    try:
        with os.fdopen(fail_r, "rb") as f:
            failure = f.read()
    except BaseException:
        os.waitpid(pid, 0)
        raise
    if not failure:
        return pid
    os.waitpid(pid, 0)
    info = json.loads(failure)
    if info["errno"] is None:
        raise RuntimeError(info["message"])
    raise OSError(info["errno"], info["strerror"], info["filename"])


def _describe(exc: Exception, req: dict[str, Any]) -> str:
    if isinstance(exc, CgroupError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        if exc.filename == req["cwd"]:
            return f"cannot use working directory {req['cwd']!r}: {exc.strerror}"
        if req["argv"] and exc.filename == req["argv"][0]:
            return f"cannot execute {req['argv'][0]!r}: {exc.strerror}"
    return f"cannot start job: {exc}"
