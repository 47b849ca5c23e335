"""Server memory (RSS) with 100,000 finished jobs in the store.

A first server start creates the schema and the admin key and runs one real job; the server is
stopped and that job's row (and its last state event) is cloned ``--n`` times straight into the
database with SQLAlchemy Core. A second server then starts on that store, is exercised (pages of
``GET /v1/jobs?limit=500``, ``GET /v1/jobs/{id}`` of random jobs, ``/metrics``) and its RSS is
sampled throughout.

Target: <= 150 MB (the server process; its launcher child is reported separately).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import common
import psutil
import sqlalchemy as sa

from jobyard import ids
from jobyard.store import tables as t
from jobyard.store.engine import make_engines

TARGET_MB = 150.0
TAG = "bench-memory"


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="finished jobs (default 100000)")
    p.add_argument("--batch", type=int, default=10_000, help="rows per executemany")
    p.add_argument("--pages", type=int, default=10, help="pages of GET /v1/jobs?limit=500")
    p.add_argument("--gets", type=int, default=500, help="GET /v1/jobs/{id} of random jobs")
    args = p.parse_args()

    print(common.machine_note())
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; {args.n} finished jobs")
    with common.workspace(args) as (data_dir, url):
        with common.server_on(data_dir, url) as srv, srv.client() as client:
            job = common.submit(client, {"command": "echo hello", "name": "bench-memory",
                                         "env": {"SEED": "1"}, "tags": [TAG]})
            common.wait_state(client, job["id"], common.TERMINAL)
        db_url = url or f"sqlite:///{data_dir / 'jobyard.db'}"
        t0 = time.perf_counter()
        populate(db_url, job["number"], args.n, args.batch)
        common.info("populated in", f"{time.perf_counter() - t0:.1f} s")

        with common.server_on(data_dir, url) as srv, srv.client() as client:
            sampler = Sampler(srv.proc.pid).start()
            time.sleep(1.0)
            idle = sampler.now()
            exercise(client, args)
            counts = common.parse_job_counts(client.get("/metrics").text)
            time.sleep(0.5)
            sampler.stop()
            after = sampler.now()

    common.info("jobs in the store (per /metrics)", str({k: v for k, v in counts.items() if v}))
    common.report("server RSS, peak while exercised", sampler.peak["server"], "MB", TARGET_MB)
    common.info("server RSS idle after start", idle["server"], "MB")
    common.info("server RSS after the exercise", after["server"], "MB")
    common.info("launcher (child) RSS, peak", sampler.peak["children"], "MB")
    common.info("server + children, peak", sampler.peak["total"], "MB")


def populate(db_url: str, template_number: int, n: int, batch: int) -> None:
    """Insert ``n`` clones of job ``template_number`` (and of its last state event)."""
    engines = make_engines(db_url)
    try:
        with engines.write.begin() as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == template_number)).one()
            event = conn.execute(
                sa.select(t.job_events)
                .where(t.job_events.c.job_id == template_number, t.job_events.c.kind == "state")
                .order_by(t.job_events.c.id.desc())
                .limit(1)
            ).one()
            next_job = conn.execute(sa.select(sa.func.max(t.jobs.c.id))).scalar_one() + 1
            next_event = conn.execute(sa.select(sa.func.max(t.job_events.c.id))).scalar_one() + 1
            tmpl = dict(row._mapping)
            ev_tmpl = dict(event._mapping)
            now = time.time()
            # Spread over the last 29 days, oldest first: inside the 30-day retention, which
            # would otherwise delete the oldest as soon as the server takes a second to start.
            span = 29 * 86400.0
            for start in range(0, n, batch):
                jobs, tags, events = [], [], []
                for i in range(start, min(start + batch, n)):
                    created = now - span + span * i / n
                    job_id, ev_id = next_job + i, next_event + i
                    jobs.append(clone_job(tmpl, job_id, created, i))
                    tags.append({"job_id": job_id, "tag": TAG})
                    events.append({**ev_tmpl, "id": ev_id, "job_id": job_id,
                                   "ts": created + 1.0})
                conn.execute(sa.insert(t.jobs), jobs)
                conn.execute(sa.insert(t.job_tags), tags)
                conn.execute(sa.insert(t.job_events), events)
            if not engines.is_sqlite:  # explicit ids: move the sequences past them
                for table in ("jobs", "job_events"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
    finally:
        engines.dispose()


def clone_job(tmpl: dict[str, Any], job_id: int, created: float, i: int) -> dict[str, Any]:
    return {
        **tmpl,
        "id": job_id,
        "uid": ids.job_uid(),
        "name": f"bench-memory-{i % 100}",
        "env": {"SEED": str(i)},
        "created_at": created,
        "started_at": created + 0.01,
        "finished_at": created + 1.0,
        "updated_at": created + 1.0,
    }


def exercise(client, args) -> None:
    cursor = None
    numbers: list[int] = []
    for _ in range(args.pages):
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params).json()
        numbers += [j["number"] for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    client.get("/v1/jobs", params={"limit": 500, "state": "completed"}).raise_for_status()
    client.get("/v1/jobs", params={"limit": 500, "tag": TAG}).raise_for_status()
    top = max(numbers) if numbers else 1
    for _ in range(args.gets):
        client.get(f"/v1/jobs/{random.randint(1, top)}").raise_for_status()
    for _ in range(5):
        client.get("/metrics").raise_for_status()


class Sampler:
    """Samples the RSS of a process and of its children every 50 ms, keeping the peaks."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = {"server": 0.0, "children": 0.0, "total": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> dict[str, float]:
        mb = 1024 * 1024
        server = self.proc.memory_info().rss / mb
        children = 0.0
        for child in self.proc.children(recursive=True):
            try:
                children += child.memory_info().rss / mb
            except psutil.Error:
                continue
        return {"server": server, "children": children, "total": server + children}

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, value in self.now().items():
                self.peak[key] = max(self.peak[key], value)
            self._stop.wait(0.05)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


if __name__ == "__main__":
    common.run(main, "server RSS")
