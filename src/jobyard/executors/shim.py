"""The launcher ("zygote") and the per-job supervisor ("shim") behind LocalExecutor.

``python -m jobyard.executors.shim launcher`` is started once per server. It reads one JSON
launch request per line on stdin and forks a shim for each; the shim reports back through a
pipe and the launcher relays that answer, tagged with the request's ``id``, on stdout. Forking
this small, already-initialised interpreter is far cheaper than starting Python per job. The
launcher exits on EOF (its server went away); shims live on in their own sessions.

A shim is a child subreaper, so setsid'd and double-forked descendants of its job stay in its
subtree. It runs the job, writes ``log`` (``<ts>\\t<o|e|x>\\t<text>`` lines), ``supervisor.json``
(the handle) and finally ``exit.json``. SIGTERM to the shim stops the job: SIGTERM to every
descendant, a grace period (``stop.json`` may override it), then SIGKILL until none is left.

Only light stdlib modules are imported: every one is in each forked shim's address space, and
``threading`` (pulled in by ``subprocess`` and ``psutil``) alone doubles the cost of a fork
through its at-fork hook. Hence ``os.posix_spawnp`` and a small /proc walk instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import select
import signal
import sys
import time
from typing import Any, NoReturn

PR_SET_CHILD_SUBREAPER = 36
READ_CHUNK = 65536
MAX_LINE = 65536  # longer lines are split
CLEANUP_GRACE_S = 1.0  # for processes a finished main process left behind
DRAIN_TIMEOUT_S = 2.0  # a pipe still open after every process is gone: fd passed elsewhere
TERM_RESCAN_S = 1.0  # during the grace, SIGTERM processes forked since the last scan
KILL_RESCAN_S = 0.05  # after it, SIGKILL whatever is left (a scan walks /proc)

# Reset for the job: Python ignores SIGPIPE and SIGXFSZ, and e.g. nohup leaves SIGHUP ignored.
_DEFAULT_SIGNALS = tuple(
    getattr(signal, f"SIG{name}")
    for name in "PIPE XFSZ HUP INT QUIT TERM USR1 USR2 ALRM CHLD TSTP TTIN TTOU".split()  # noqa: SIM905
)
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_boot_time: float | None = None
_libc = ctypes.CDLL(None, use_errno=True)


def _stat(pid: int | str) -> list[bytes] | None:
    """Fields of /proc/<pid>/stat from the state on (index 0: state, 1: ppid, 19: start)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()


def boot_time() -> float:
    """System boot time in epoch seconds (/proc/stat ``btime``, as psutil reads it); cached,
    as /proc/stat is costly to generate."""
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat", "rb") as f:
            _boot_time = float(next(x for x in f if x.startswith(b"btime")).split()[1])
    return _boot_time


def proc_ident(pid: int) -> tuple[float, str] | None:
    """``(start time in epoch seconds, state letter)`` of ``pid`` as psutil computes the start
    time, or None if there is no such process. Zombies ("Z") are reported, not hidden."""
    fields = _stat(pid)
    if fields is None:
        return None
    return int(fields[19]) / _CLK_TCK + boot_time(), fields[0].decode()


def descendants(root: int) -> dict[int, bytes]:
    """Start time (raw /proc field) of every live descendant of ``root``, by pid."""
    children: dict[bytes, list[bytes]] = {}
    starts: dict[bytes, bytes] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat(name)) and fields[0] != b"Z":
            children.setdefault(fields[1], []).append(name.encode())
            starts[name.encode()] = fields[19]
    found: dict[int, bytes] = {}
    todo = [str(root).encode()]
    while todo:
        for child in children.get(todo.pop(), ()):
            found[int(child)] = starts[child]
            todo.append(child)
    return found


def signal_if_same(pid: int, start: bytes, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the live process that started at ``start``."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        fields = _stat(pid)  # checked after opening the pidfd, so the pid cannot be recycled
        if not fields or fields[19] != start or fields[0] == b"Z":
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` so readers see either the old file or the whole new one."""
    publish_json(open_tmp(path), path, data)


def open_tmp(path: str) -> tuple[int, str]:
    """Create the temporary file :func:`publish_json` turns into ``path``."""
    tmp = f"{path}.{os.getpid()}.tmp"
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644), tmp


def publish_json(tmp: tuple[int, str], path: str, data: dict[str, Any]) -> None:
    fd, tmp_path = tmp
    try:
        _write_all(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp_path, path)


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LogWriter:
    """Writes output as ``<ts>\\t<stream>\\t<text>`` lines; drops output past ``cap`` bytes."""

    def __init__(self, path: str, cap: int) -> None:
        self._path = path
        self._fd: int | None = None  # created on the first output: file creation is not cheap
        self._cap = cap
        self._written = 0
        self._full = False
        self._partial = {"o": b"", "e": b""}

    def feed(self, stream: str, data: bytes) -> None:
        if self._full:
            return
        *lines, rest = (self._partial[stream] + data).split(b"\n")
        while len(rest) > MAX_LINE:
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial[stream] = rest
        if lines:
            self._write(stream, lines)

    def eof(self, stream: str) -> None:
        """Write what is left of ``stream``'s last, unterminated line."""
        if self._partial[stream] and not self._full:
            self._write(stream, [self._partial[stream]])
        self._partial[stream] = b""

    def close(self) -> None:
        for stream in self._partial:
            self.eof(stream)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)

    def _write(self, stream: str, lines: list[bytes]) -> None:
        prefix = f"{time.time():.6f}\t{stream}\t"
        texts = []
        for line in lines:
            for i in range(0, max(len(line), 1), MAX_LINE):
                texts.append(f"{prefix}{line[i : i + MAX_LINE].decode('utf-8', 'replace')}\n")
        chunk = "".join(texts).encode()
        if self._written + len(chunk) > self._cap:
            room, keep = self._cap - self._written, []
            for text in texts:
                encoded = text.encode()
                if len(encoded) > room:
                    break
                keep.append(encoded)
                room -= len(encoded)
            note = f"{time.time():.6f}\tx\t[jobyard: log truncated at {self._cap} bytes]\n"
            chunk = b"".join(keep) + note.encode()
            self._full = True
        try:
            if self._fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                self._fd = os.open(self._path, flags, 0o644)
            _write_all(self._fd, chunk)
        except OSError:  # disk full or similar: keep the job running, stop logging
            self._full = True
        self._written += len(chunk)


def _noop(signum: int, frame: Any) -> None:
    pass


class Shim:
    """Supervises one job: spawn, log, reap, stop, and record how it ended."""

    def __init__(self, req: dict[str, Any], report_fd: int) -> None:
        self.req = req
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

    def main(self) -> None:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, _noop)
        signal.signal(signal.SIGTERM, _noop)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        sup = None
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            for stale in ("exit.json", "stop.json", "log"):  # in case a run_dir is reused
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(stale))
            self.log = LogWriter(self._path("log"), int(self.req["log_cap_bytes"]))
            sup = open_tmp(self._path("supervisor.json"))  # proves the run dir is writable
            streams = self._spawn()
        except Exception as exc:
            error = _describe(exc, self.req)
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

    def _spawn(self) -> dict[int, str]:
        argv, env, cwd = self.req["argv"], self.req["env"], self.req["cwd"]
        if not argv:
            raise ValueError("empty command")
        if cwd is not None:
            os.chdir(cwd)  # our own cwd becomes the job's
        os.environ["PATH"] = env.get("PATH", os.defpath)  # posix_spawnp searches our PATH
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.pid = os.posix_spawnp(
                argv[0],
                argv,
                env,
                file_actions=[(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)],
                setsid=True,  # its own session and process group
                setsigdef=_DEFAULT_SIGNALS,
                setsigmask=(),
            )
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
            _write_all(self.report_fd, json.dumps(msg).encode())
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
                    self.log.eof(streams.pop(fd))
                    poller.unregister(fd)
            self._reap()
            if self._step() and drain_until == math.inf:
                drain_until = time.monotonic() + DRAIN_TIMEOUT_S
        self._finish()

    def _timeout_ms(self, drain_until: float) -> int | None:
        if self.phase == "running":
            return None
        if self.phase == "draining":
            until = drain_until
        elif self.phase == "terminating":
            until = min(self.deadline, self.next_scan)
        else:
            until = self.next_scan
        return max(0, math.ceil((until - time.monotonic()) * 1000))

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
                self.main_status = status

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
        """Signal every descendant (all of the job: we are a subreaper) and the job's group."""
        killing = sig == signal.SIGKILL
        for pid, start in descendants(os.getpid()).items():
            if (killing or pid not in self.signaled) and signal_if_same(pid, start, sig):
                self.signaled.add(pid)
                if killing:
                    self.killed.add(pid)
        if self.main_status is None:  # while unreaped, the main process pins the group id
            with contextlib.suppress(OSError):
                os.killpg(self.pid, sig)  # also reaches group members forked since the scan

    def _finish(self) -> None:
        self.log.close()
        code = None if self.main_status is None else os.waitstatus_to_exitcode(self.main_status)
        exit_info = {
            "reason": self.reason,
            "exit_code": code if code is not None and code >= 0 else None,
            "signal": -code if code is not None and code < 0 else None,
            "ended_at": time.time(),
            "receipt": self.receipt,
        }
        write_json_atomic(self._path("exit.json"), exit_info)


def _describe(exc: Exception, req: dict[str, Any]) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        if exc.filename == req["cwd"]:
            return f"cannot use working directory {req['cwd']!r}: {exc.strerror}"
        if req["argv"] and exc.filename == req["argv"][0]:
            return f"cannot execute {req['argv'][0]!r}: {exc.strerror}"
    return f"cannot start job: {exc}"


def _shim_process(req: dict[str, Any], report_fd: int) -> NoReturn:
    """Body of a freshly forked shim; never returns."""
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
        Shim(req, report_fd).main()
    except BaseException:
        code = 70
        with contextlib.suppress(Exception), open(f"{req['run_dir']}/shim.err", "a") as f:
            import traceback

            traceback.print_exc(file=f)
    os._exit(code)


class Launcher:
    """Serves launch requests on stdin until EOF, forking one shim per request."""

    def __init__(self) -> None:
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, _noop)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.poller = select.poll()
        self.poller.register(0, select.POLLIN)
        self.poller.register(self.wake_r, select.POLLIN)
        self.pending: dict[int, tuple[int, bytearray]] = {}  # report pipe -> (id, answer)

    def serve(self) -> None:
        buf = b""
        boot_time()  # read once here rather than once per shim
        gc.freeze()  # keep the collector from touching (and so copying) shared pages in shims
        self._reply({"id": 0, "ok": True})
        while True:
            for fd, _ in self.poller.poll():
                if fd == 0:
                    if not (data := os.read(0, READ_CHUNK)):
                        return  # the server is gone; shims carry on
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
                    died = {"ok": False, "error": "the job's supervisor died (see shim.err)"}
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
            _shim_process(req, report_w)
        os.close(report_w)
        self.pending[report_r] = (req["id"], bytearray())
        self.poller.register(report_r, select.POLLIN)

    @staticmethod
    def _reply(msg: dict[str, Any]) -> None:
        _write_all(1, json.dumps(msg).encode() + b"\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["launcher"]:
        sys.exit("usage: python -m jobyard.executors.shim launcher")
    Launcher().serve()
