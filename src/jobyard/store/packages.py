"""The SQL store's packages and schedules (``core/packages.py``), and the few reads the
Integrate.io dialect needs beyond the core's (pages with offsets and totals, integer cluster
ids, facts for many jobs or clusters at once). Mixed into SqlStore."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

import sqlalchemy as sa

from jobyard.core.clusters import Cluster
from jobyard.core.models import Job, Resources
from jobyard.core.packages import ENABLED, Package, Schedule
from jobyard.core.states import ACTIVE, TERMINAL, JobState
from jobyard.errors import Conflict, NotFound
from jobyard.store import tables as t
from jobyard.store.rows import job_from_row

_P = t.packages
_S = t.schedules
_J = t.jobs
_C = t.clusters
_R = t.operations
_LIVE = [str(JobState.QUEUED), *(str(s) for s in ACTIVE)]
_ENDED = [str(s) for s in TERMINAL]


def _package(r: Any) -> Package:
    res = r.resources or {}
    return Package(r.id, r.org_id, r.user_id, r.name, r.description, r.command,
                   dict(r.variables or {}),
                   Resources(int(res.get("gpus", 0)), float(res.get("cpus", 1.0)),
                             int(res.get("memory_mb", 0))),
                   r.created_at, r.updated_at)


def _schedule(r: Any) -> Schedule:
    m = dict(r._mapping)
    package_name = m.pop("package_name", None)
    m["variables"] = dict(m["variables"] or {})
    return Schedule(**m, extra={"package_name": package_name})


_SCHEDULE_COLUMNS = (_S, _P.c.name.label("package_name"))


class PackageStore:
    engines: Any
    clock: Callable[[], float]
    get_cluster: Callable[[str], Cluster | None]

    # packages --------------------------------------------------------------------------------
    def create_package(self, p: Package) -> Package:
        """Insert ``p`` (its id is assigned); 409 when the org has a package of that name."""
        row = {"org_id": p.org_id, "user_id": p.user_id, "name": p.name,
               "description": p.description, "command": p.command, "variables": p.variables,
               "resources": {"gpus": p.resources.gpus, "cpus": p.resources.cpus,
                             "memory_mb": p.resources.memory_mb},
               "created_at": p.created_at, "updated_at": p.updated_at}

        def insert(conn: sa.Connection) -> int:
            if conn.execute(sa.select(_P.c.id).where(_P.c.org_id == p.org_id,
                                                     _P.c.name == p.name)).first():
                raise Conflict(f"a package named '{p.name}' already exists", {"name": p.name})
            return conn.execute(sa.insert(_P), row).inserted_primary_key[0]

        try:
            p.id = self.engines.write_tx(insert)
        except sa.exc.IntegrityError as exc:  # the same name, created meanwhile
            raise Conflict(f"a package named '{p.name}' already exists",
                           {"name": p.name}) from exc
        return p

    def get_package(self, package_id: int) -> Package | None:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(_P).where(_P.c.id == package_id)).first()
        return _package(row) if row else None

    def package_by_name(self, org_id: int, name: str) -> Package | None:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(_P).where(_P.c.org_id == org_id,
                                                   _P.c.name == name)).first()
        return _package(row) if row else None

    def list_packages(self, org_id: int, offset: int, limit: int) -> tuple[list[Package], int]:
        """A page of the org's packages, newest first, and how many it has."""
        where = _P.c.org_id == org_id
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(_P).where(where).order_by(_P.c.id.desc())
                                .offset(offset).limit(limit))
            items = [_package(r) for r in rows]
            total = conn.execute(sa.select(sa.func.count()).select_from(_P).where(where))
            return items, int(total.scalar_one())

    def delete_package(self, package_id: int) -> None:
        """409 while a schedule runs it."""
        def delete(conn: sa.Connection) -> None:
            used = [r.id for r in conn.execute(
                sa.select(_S.c.id).where(_S.c.package_id == package_id).order_by(_S.c.id))]
            if used:
                raise Conflict(f"package {package_id} is run by schedule(s) "
                               f"{', '.join(map(str, used))}; delete them first",
                               {"schedules": used})
            if not conn.execute(sa.delete(_P).where(_P.c.id == package_id)).rowcount:
                raise NotFound(f"package {package_id} not found")

        self.engines.write_tx(delete)

    # schedules -------------------------------------------------------------------------------
    def create_schedule(self, s: Schedule) -> Schedule:
        row = {"org_id": s.org_id, "user_id": s.user_id, "package_id": s.package_id,
               "name": s.name, "description": s.description, "variables": s.variables,
               "status": s.status, "interval_amount": s.interval_amount,
               "interval_unit": s.interval_unit, "start_at": s.start_at,
               "next_run_at": s.next_run_at, "last_run_at": None, "last_run_status": None,
               "last_job_id": None, "execution_count": 0, "created_at": s.created_at,
               "updated_at": s.updated_at}

        def insert(conn: sa.Connection) -> int:
            # Lock the package: a delete of it cannot slip in between the check and the insert.
            if conn.execute(sa.select(_P.c.id).where(_P.c.id == s.package_id)
                            .with_for_update()).first() is None:
                raise NotFound(f"package {s.package_id} not found")
            return conn.execute(sa.insert(_S), row).inserted_primary_key[0]

        new_id = self.engines.write_tx(insert)
        created = self.get_schedule(new_id)
        assert created is not None
        return created

    def get_schedule(self, schedule_id: int) -> Schedule | None:
        stmt = (sa.select(*_SCHEDULE_COLUMNS).join(_P, _P.c.id == _S.c.package_id)
                .where(_S.c.id == schedule_id))
        with self.engines.read.connect() as conn:
            row = conn.execute(stmt).first()
        return _schedule(row) if row else None

    def list_schedules(self, org_id: int, offset: int, limit: int
                       ) -> tuple[list[Schedule], int]:
        """A page of the org's schedules, newest first, and how many it has."""
        where = _S.c.org_id == org_id
        stmt = (sa.select(*_SCHEDULE_COLUMNS).join(_P, _P.c.id == _S.c.package_id)
                .where(where).order_by(_S.c.id.desc()).offset(offset).limit(limit))
        with self.engines.read.connect() as conn:
            items = [_schedule(r) for r in conn.execute(stmt)]
            total = conn.execute(sa.select(sa.func.count()).select_from(_S).where(where))
            return items, int(total.scalar_one())

    def delete_schedule(self, schedule_id: int) -> bool:
        return bool(self.engines.write_tx(
            lambda conn: conn.execute(sa.delete(_S).where(_S.c.id == schedule_id)).rowcount))

    def set_schedule_status(self, schedule_id: int, status: str, next_run_at: float | None
                            ) -> None:
        self.engines.write_tx(lambda conn: conn.execute(
            sa.update(_S).where(_S.c.id == schedule_id).values(
                status=status, next_run_at=next_run_at, updated_at=self.clock())))

    def due_schedules(self, now: float, limit: int = 100) -> list[tuple[Schedule, str]]:
        """Enabled schedules whose next run is due, oldest due first, with the owner's
        username."""
        stmt = (sa.select(*_SCHEDULE_COLUMNS, t.users.c.username)
                .join(_P, _P.c.id == _S.c.package_id)
                .join(t.users, t.users.c.id == _S.c.user_id)
                .where(_S.c.status == ENABLED, _S.c.next_run_at <= now)
                .order_by(_S.c.next_run_at, _S.c.id).limit(limit))
        with self.engines.read.connect() as conn:
            out = []
            for row in conn.execute(stmt):
                m = dict(row._mapping)
                username = m.pop("username")
                out.append((_schedule(_Row(m)), username))
            return out

    def advance_schedule(self, schedule_id: int, due: float, next_run_at: float,
                         job: Job | None, now: float) -> bool:
        """Move a schedule past its run due at ``due`` (a compare-and-set on next_run_at: False
        when someone moved it already); with ``job``, record it as the last run."""
        values: dict[str, Any] = {"next_run_at": next_run_at, "updated_at": now}
        if job is not None:
            values |= {"last_run_at": now, "last_job_id": job.id,
                       "last_run_status": str(job.state),
                       "execution_count": _S.c.execution_count + 1}
        return bool(self.engines.write_tx(lambda conn: conn.execute(
            sa.update(_S).where(_S.c.id == schedule_id, _S.c.next_run_at == due)
            .values(**values)).rowcount))

    def refresh_schedule_runs(self) -> int:
        """Bring ``last_run_status`` of schedules whose last run had not ended up to date with
        their job (a job deleted meanwhile keeps the last status known). Returns how many
        changed."""
        stmt = (sa.select(_S.c.id, _J.c.state).join(_J, _J.c.id == _S.c.last_job_id)
                .where(_S.c.last_run_status.in_(_LIVE), _J.c.state != _S.c.last_run_status))
        with self.engines.read.connect() as conn:
            changes = conn.execute(stmt).all()
        if not changes:
            return 0

        def update(conn: sa.Connection) -> None:
            for schedule_id, state in changes:
                conn.execute(sa.update(_S).where(_S.c.id == schedule_id)
                             .values(last_run_status=state))

        self.engines.write_tx(update)
        return len(changes)

    def job_is_live(self, job_id: int | None) -> bool:
        """Whether job ``job_id`` exists and is queued or active (a schedule's last run)."""
        if job_id is None:
            return False
        with self.engines.read.connect() as conn:
            state = conn.execute(sa.select(_J.c.state).where(_J.c.id == job_id)).scalar()
        return state in _LIVE

    # Integrate.io reads ----------------------------------------------------------------------
    def org_by_ref(self, ref: str) -> tuple[int, str] | None:
        """An org by its name, or by its numeric id: ``(id, name)``."""
        cond = _org_cond(ref)
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(t.orgs.c.id, t.orgs.c.name).where(cond).order_by(
                sa.case((t.orgs.c.name == ref, 0), else_=1))).first()  # a name wins
        return (row.id, row.name) if row else None

    def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.users.c.id, t.users.c.username)
                                .where(t.users.c.id.in_(ids)))
            return {r.id: r.username for r in rows}

    def cluster_by_number(self, cluster_id: int) -> Cluster | None:
        """A cluster by its integer id (what Integrate.io clients use)."""
        with self.engines.read.connect() as conn:
            uid = conn.execute(sa.select(_C.c.uid).where(_C.c.id == cluster_id)).scalar()
        return self.get_cluster(uid) if uid else None

    def cluster_page(self, org_id: int, offset: int, limit: int,
                     states: Collection[str] | None = None) -> tuple[list[Cluster], int]:
        """A page of the org's clusters (in ``states``), newest first, and how many match."""
        where = [_C.c.org_id == org_id]
        if states is not None:
            where.append(_C.c.state.in_(list(states)))
        with self.engines.read.connect() as conn:
            uids = [r.uid for r in conn.execute(
                sa.select(_C.c.uid).where(*where).order_by(_C.c.id.desc())
                .offset(offset).limit(limit))]
            total = int(conn.execute(sa.select(sa.func.count()).select_from(_C)
                                     .where(*where)).scalar_one())
        clusters = [self.get_cluster(uid) for uid in uids]
        return [c for c in clusters if c is not None], total

    def cluster_facts(self, uids: Collection[str]) -> dict[str, dict[str, Any]]:
        """Per cluster uid: ``open`` (the status of its open request, or None), ``claimed_at``
        and ``released_at`` (when its claim / release completed), ``live_jobs`` (queued or
        active jobs on it) and ``last_job_end`` (when its last job ended)."""
        uids = sorted(set(uids))
        facts: dict[str, dict[str, Any]] = {
            uid: {"open": None, "claimed_at": None, "released_at": None, "live_jobs": 0,
                  "last_job_end": None} for uid in uids}
        if not uids:
            return facts
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(_R.c.object_id, _R.c.type, _R.c.status,
                                          _R.c.finished_at)
                                .where(_R.c.object_id.in_(uids)).order_by(_R.c.id))
            for r in rows:
                f = facts[r.object_id]
                if r.status in ("PENDING", "PROCESSING", "RETRYING"):
                    f["open"] = r.status
                elif r.status == "COMPLETED" and r.type == "CLUSTER_CLAIM":
                    f["claimed_at"] = r.finished_at
                elif r.status == "COMPLETED" and r.type == "CLUSTER_RELEASE":
                    f["released_at"] = r.finished_at
            live = conn.execute(sa.select(_J.c.cluster_id, sa.func.count())
                                .where(_J.c.cluster_id.in_(uids), _J.c.state.in_(_LIVE))
                                .group_by(_J.c.cluster_id))
            for uid, n in live:
                facts[uid]["live_jobs"] = int(n)
            ended = conn.execute(sa.select(_J.c.cluster_id, sa.func.max(_J.c.finished_at))
                                 .where(_J.c.cluster_id.in_(uids), _J.c.state.in_(_ENDED))
                                 .group_by(_J.c.cluster_id))
            for uid, last in ended:
                facts[uid]["last_job_end"] = last
        return facts

    def job_page(self, org_id: int, offset: int, limit: int,
                 states: Collection[str] | None = None) -> tuple[list[Job], int]:
        """A page of the org's jobs (in ``states``), newest first, and how many match."""
        where = [_J.c.org_id == org_id]
        if states is not None:
            where.append(_J.c.state.in_(list(states)))
        with self.engines.read.connect() as conn:
            jobs = [job_from_row(r) for r in conn.execute(
                sa.select(_J).where(*where).order_by(_J.c.id.desc()).offset(offset)
                .limit(limit))]
            total = int(conn.execute(sa.select(sa.func.count()).select_from(_J)
                                     .where(*where)).scalar_one())
        return jobs, total

    def job_facts(self, jobs: Collection[Job]) -> dict[str, Any]:
        """What rendering ``jobs`` needs besides the rows: ``outputs`` (per job id, its current
        attempt's collected files with their row ids), ``clusters`` (per cluster uid: integer
        id and name) and ``users`` (per user id: username)."""
        outputs: dict[int, list[dict[str, Any]]] = {j.id: [] for j in jobs}
        clusters: dict[str, dict[str, Any]] = {}
        if not jobs:
            return {"outputs": outputs, "clusters": clusters, "users": {}}
        o = t.job_outputs.c
        attempts = {j.id: j.attempt for j in jobs}
        uids = sorted({j.cluster_id for j in jobs if j.cluster_id})
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.job_outputs).where(o.job_id.in_(list(attempts)))
                                .order_by(o.job_id, o.name))
            for r in rows:
                if r.attempt == attempts[r.job_id]:
                    outputs[r.job_id].append(
                        {"id": r.id, "name": r.name, "size": r.size, "records": r.records,
                         "partial": bool(r.partial), "created_at": r.created_at})
            if uids:
                for r in conn.execute(sa.select(_C.c.uid, _C.c.id, _C.c.name)
                                      .where(_C.c.uid.in_(uids))):
                    clusters[r.uid] = {"id": r.id, "name": r.name}
        users = self.usernames(j.user_id for j in jobs)
        return {"outputs": outputs, "clusters": clusters, "users": users}

    def kv_many(self, keys: Collection[str]) -> dict[str, Any]:
        """Several ``kv`` values at once (absent keys are left out)."""
        if not keys:
            return {}
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.kv.c.key, t.kv.c.value)
                                .where(t.kv.c.key.in_(sorted(set(keys)))))
            return {r.key: r.value for r in rows}

    def kv_prefixed(self, prefix: str) -> dict[str, Any]:
        """Every ``kv`` value whose key starts with ``prefix``."""
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.kv.c.key, t.kv.c.value)
                                .where(t.kv.c.key.startswith(prefix, autoescape=True)))
            return {r.key: r.value for r in rows}


def _org_cond(ref: str) -> Any:
    if ref.isdigit() and len(ref) < 12:
        return sa.or_(t.orgs.c.id == int(ref), t.orgs.c.name == ref)
    return t.orgs.c.name == ref


class _Row:
    def __init__(self, values: dict[str, Any]):
        self._mapping = values
