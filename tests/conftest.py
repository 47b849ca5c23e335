"""Shared fixtures: a real server per test module, on SQLite and on PostgreSQL.

``JOBYARD_TEST_BACKENDS`` (default ``sqlite,postgresql``) picks the databases;
``JOBYARD_TEST_PG`` is the PostgreSQL server to create throw-away databases on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard import ids
from jobyard.store import migrate
from jobyard.store.engine import Engines, make_engines
from jobyard.store.sql import SqlStore
from jobyard.testing import ServerProcess, free_port, passable, wait_until

PG_ADMIN_URL = os.environ.get("JOBYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = os.environ.get("JOBYARD_TEST_BACKENDS", "sqlite,postgresql").split(",")


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """pytest's, passable (as root, the test servers run jobs as tenants' own uids)."""
    passable(tmp_path)
    return tmp_path



def pg_database() -> tuple[str, sa.Engine, str]:
    """Create an empty PostgreSQL database; returns (url, admin engine, name)."""
    from jobyard.store.engine import normalize_url

    admin = sa.create_engine(normalize_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = "jy_" + ids.random_token(10)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    return url, admin, name


def drop_pg_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "jobyard.db"
        yield f"sqlite:///{path}"
        return
    url, admin, name = pg_database()
    yield url
    drop_pg_database(admin, name)


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=database_url)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: ServerProcess):
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def raw(server: ServerProcess):
    """A client of the module's server whose bodies (``content=``) are sent as JSON."""
    with server.client() as client:
        client.headers["Content-Type"] = "application/json"
        yield client


@pytest.fixture(params=BACKENDS)
def engines(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engines]:
    if request.param == "sqlite":
        engines = make_engines(f"sqlite:///{tmp_path / 'store.db'}")
        yield engines
        engines.dispose()
        return
    url, admin, name = pg_database()
    engines = make_engines(url)
    yield engines
    engines.dispose()
    drop_pg_database(admin, name)


@pytest.fixture
def store(engines: Engines) -> SqlStore:
    """A migrated store on ``engines``; ``store.changed`` collects the job ids it notified."""
    migrate.upgrade(engines.write)
    changed: list[int] = []
    s = SqlStore(engines, on_change=changed.extend)
    s.changed = changed  # type: ignore[attr-defined]
    return s


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``256k``, ``64m``) mounted at ``path`` while in the block; the
    test is skipped where mounting one is refused (not root)."""
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs",
                            str(path)], capture_output=True, text=True)
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip() or mount.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB disk to fill up."""
    with tmpfs(tmp_path / "disk", "256k") as path:
        yield path


def fill_disk(directory: Path) -> Path:
    """Write a file in ``directory`` until its filesystem is full; returns the file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throw-away Redis (nothing kept on disk) for the shared rate limits; skipped where
    the machine has no ``redis-server`` (``.ci/run`` installs it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server on this machine (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)

    def answers() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        return False

    wait_until(answers, timeout=10, interval=0.02)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


CHROMIUM = "/usr/bin/chromium"  # Debian's (.ci/run installs it): Playwright cannot download
ARTIFACTS = Path(os.environ.get("JOBYARD_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright, for a module's real-browser tests; skipped
    where the machine has no Chromium (``apt-get install chromium``)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox"])  # as root, as in CI
        yield chromium
        chromium.close()


def screenshot(page: Any, name: str) -> Path:
    """Save what ``page`` shows under the test artifacts (to look at, in CI too)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
