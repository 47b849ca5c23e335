"""Packages and schedules in the SQL store (``core/packages.py``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from jobyard.core.models import Job, Resources
from jobyard.core.packages import ENABLED, Package, Schedule
from jobyard.core.states import ACTIVE, JobState
from jobyard.errors import Conflict, NotFound
from jobyard.store import tables as t
from jobyard.store.db import Repository, Row, inserted_id

_P = t.packages

_S = t.schedules

_J = t.jobs

_LIVE = [str(JobState.QUEUED), *(str(s) for s in ACTIVE)]

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
    return Schedule(**m, package_name=package_name)

_SCHEDULE_COLUMNS = (_S, _P.c.name.label("package_name"))


class SqlPackages(Repository):
    """Packages of an org and the schedules that run them."""

    # packages --------------------------------------------------------------------------------
    def create_package(self, p: Package) -> Package:
        row = {"org_id": p.org_id, "user_id": p.user_id, "name": p.name,
               "description": p.description, "command": p.command, "variables": p.variables,
               "resources": {"gpus": p.resources.gpus, "cpus": p.resources.cpus,
                             "memory_mb": p.resources.memory_mb},
               "created_at": p.created_at, "updated_at": p.updated_at}

        def insert(conn: sa.Connection) -> int:
            if conn.execute(sa.select(_P.c.id).where(_P.c.org_id == p.org_id,
                                                     _P.c.name == p.name)).first():
                raise Conflict(f"a package named '{p.name}' already exists", {"name": p.name})
            return inserted_id(conn.execute(sa.insert(_P), row))

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
        where = _P.c.org_id == org_id
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(_P).where(where).order_by(_P.c.id.desc())
                                .offset(offset).limit(limit))
            items = [_package(r) for r in rows]
            total = conn.execute(sa.select(sa.func.count()).select_from(_P).where(where))
            return items, int(total.scalar_one())

    def delete_package(self, package_id: int) -> None:
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
            return inserted_id(conn.execute(sa.insert(_S), row))

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
                out.append((_schedule(Row(m)), username))
            return out

    def advance_schedule(self, schedule_id: int, due: float, next_run_at: float,
                         job: Job | None, now: float) -> bool:
        values: dict[str, Any] = {"next_run_at": next_run_at, "updated_at": now}
        if job is not None:
            values |= {"last_run_at": now, "last_job_id": job.id,
                       "last_run_status": str(job.state),
                       "execution_count": _S.c.execution_count + 1}
        return bool(self.engines.write_tx(lambda conn: conn.execute(
            sa.update(_S).where(_S.c.id == schedule_id, _S.c.next_run_at == due)
            .values(**values)).rowcount))

    def refresh_schedule_runs(self) -> int:
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
