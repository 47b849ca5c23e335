"""Run a command (the test suite) with a PostgreSQL to test on: ``make test`` calls this.

``python tests/pg_throwaway.py CMD...`` runs CMD unchanged when the tests need no PostgreSQL
(``JOBYARD_TEST_BACKENDS`` without ``postgresql``) or one answers at ``JOBYARD_TEST_PG``
(default ``postgresql://postgres@127.0.0.1:5432/test``). Otherwise it makes a throw-away
server: it finds the server binaries (``/usr/lib/postgresql/*/bin``, ``pg_config``, ``PATH``;
as root on Debian/Ubuntu it installs the ``postgresql`` package if there are none), initdbs a
cluster in a temporary directory (trust auth, 127.0.0.1 on a free port, its socket in that
directory; as an unprivileged user when run as root, since PostgreSQL refuses root), creates
the ``test`` database, runs CMD with ``JOBYARD_TEST_PG`` pointing at it, then stops the
server and deletes the directory, also when CMD fails or on Ctrl-C. Exits with CMD's status.
Python stdlib and psycopg (in the dev extras) only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"  # as in tests/conftest.py
APT_INSTALL = ("apt-get update -q && "
               "DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql")


def say(message: str) -> None:
    print(f"pg_throwaway: {message}", file=sys.stderr, flush=True)


def shown(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg://`` spelling as libpq reads it."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


def answers(url: str) -> bool:
    """Whether a PostgreSQL server answers at ``url``. One that answers but refuses (no such
    database, a password) still counts: the tests then fail with its error, as before."""
    try:
        psycopg.connect(libpq_url(url), connect_timeout=5).close()
        return True
    except psycopg.OperationalError as exc:
        parts = urlsplit(libpq_url(url))
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432),
                                     timeout=5).close()
        except OSError:
            return False
        say(f"PostgreSQL at {shown(url)} answers but refuses ({str(exc).strip()}); "
            "running on it all the same")
        return True


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, newest version first."""
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    candidates += sorted(glob.glob("/usr/pgsql-*/bin"), key=version, reverse=True)  # RPM
    if shutil.which("pg_config"):
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True,
                                             text=True, check=True).stdout.strip())
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb") or "").parent))
    for directory in map(Path, candidates):
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


def install_or_explain(url: str) -> Path:
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"no PostgreSQL server binaries found; installing them: {APT_INSTALL}")
        subprocess.run(APT_INSTALL, shell=True, check=True)
        if bindir := find_bindir():
            return bindir
    sys.exit(
        f"pg_throwaway: no PostgreSQL answers at {shown(url)} (JOBYARD_TEST_PG) and no\n"
        "PostgreSQL server binaries (initdb, postgres) were found to start a throw-away one.\n"
        "Either install PostgreSQL's server package (Debian/Ubuntu: "
        "`sudo apt-get install postgresql`;\nthen rerun, or run `make test` as root to have it "
        "installed), point JOBYARD_TEST_PG at a\nrunning server, or skip PostgreSQL: "
        "`JOBYARD_TEST_BACKENDS=sqlite make test`.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Throwaway:
    """A PostgreSQL cluster in a temporary directory; ``start()``, then always ``stop()``."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.user: pwd.struct_passwd | None = None  # whom to run as; None: ourselves
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    self.user = pwd.getpwnam(name)
                    break
            if self.user is None:
                sys.exit("pg_throwaway: running as root, and no user 'postgres' or 'nobody' "
                         "to run PostgreSQL as")
        # /tmp as root: the unprivileged user must reach the directory.
        self.dir = Path(tempfile.mkdtemp(prefix="jobyard-pg-",
                                         dir="/tmp" if self.user else None))
        if self.user:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def _as_user(self) -> dict[str, object]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": [],
                "env": {**os.environ, "HOME": str(self.dir), "USER": self.user.pw_name,
                        "LOGNAME": self.user.pw_name}}

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def start(self) -> None:
        init = subprocess.run(
            [self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **self._as_user())
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout.decode(errors='replace')}")
        for _ in range(3):  # the free port can be taken before postgres binds it
            self.port = free_port()
            if self._serve():
                break
        else:
            raise RuntimeError(f"PostgreSQL did not start; its log:\n{self._log_tail()}")
        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE test")

    def _serve(self) -> bool:
        with open(self.log, "ab") as log:
            if self.user:
                os.chown(self.log, self.user.pw_uid, self.user.pw_gid)
            # Its own session: a Ctrl-C in the terminal stops the tests, not their database.
            self.proc = subprocess.Popen(
                [self.bindir / "postgres", "-D", self.data, "-h", "127.0.0.1",
                 "-p", str(self.port), "-k", self.dir,
                 # A throw-away: durability is not needed, speed is.
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, **self._as_user())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres",
                                connect_timeout=2).close()
                return True
            time.sleep(0.1)
        self._kill()
        return False

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return ""

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the postmaster and its children
            self.proc.wait()

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL if it hangs; then delete the directory."""
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self._kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def run(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd`` to its end. Ctrl-C reaches it too (same process group): let it stop and
    tear down, then return. A SIGTERM to us is passed on to it."""
    child = subprocess.Popen(cmd, env=env)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    while True:
        try:
            code = child.wait()
            break
        except KeyboardInterrupt:
            continue
    signal.signal(signal.SIGTERM, _terminated)
    return code if code >= 0 else 128 - code


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # runs the cleanup in main's ``finally``


def main(argv: list[str]) -> int:
    cmd = argv[1:] if argv[:1] == ["--"] else argv
    if not cmd:
        sys.exit("usage: pg_throwaway.py [--] COMMAND [ARG...]")
    url = os.environ.get("JOBYARD_TEST_PG", DEFAULT_URL)
    backends = os.environ.get("JOBYARD_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if "postgresql" not in backends or answers(url):
        os.execvp(cmd[0], cmd)  # nothing to do: the command runs as it is

    signal.signal(signal.SIGTERM, _terminated)
    bindir = find_bindir() or install_or_explain(url)
    server = Throwaway(bindir)
    try:
        server.start()
        say(f"no PostgreSQL answers at {shown(url)}; running on a throw-away PostgreSQL "
            f"({bindir}) at {server.url}, in {server.dir} (deleted afterwards)")
        return run(cmd, {**os.environ, "JOBYARD_TEST_PG": server.url})
    except RuntimeError as exc:
        say(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # let nothing cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        server.stop()
        say("throw-away PostgreSQL stopped and deleted")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
