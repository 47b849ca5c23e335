"""Accounts in the SQL store: orgs, users, API keys, SSH keys, budgets and org GPU quotas.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from jobyard import ids
from jobyard.core.clusters import HOLDING
from jobyard.core.models import Principal
from jobyard.errors import Conflict, NotFound, ValidationFailed
from jobyard.store import tables as t
from jobyard.store.db import Db, Repository, inserted_id
from jobyard.store.engine import Prepared

_PRINCIPAL_BY_KEY = (
    sa.select(
        t.api_keys.c.id.label("key_id"),
        t.users.c.id.label("user_id"),
        t.users.c.org_id,
        t.users.c.username,
        t.users.c.is_admin,
    )
    .join(t.users, t.users.c.id == t.api_keys.c.user_id)
    .where(t.api_keys.c.key_hash == sa.bindparam("key_hash"), t.api_keys.c.revoked_at.is_(None))
)

_K = t.ssh_keys

MAX_SSH_KEYS = 100  # per user

_BUDGET_SCOPES = {"user": (t.users, t.users.c.username), "org": (t.orgs, t.orgs.c.name)}


class SqlAccounts(Repository):
    """Who may call: orgs, users and their keys; what they may spend and claim."""

    def __init__(self, db: Db):
        super().__init__(db)
        self._principal_by_key = Prepared(db.engines.read, _PRINCIPAL_BY_KEY)

    # principals ------------------------------------------------------------------------------
    def principal_for_key(self, key_hash: str) -> Principal | None:
        row = self._principal_by_key.one(key_hash=key_hash)
        if row is None:
            return None
        return Principal(row.user_id, row.org_id, row.username, bool(row.is_admin), row.key_id)

    def create_org(self, name: str) -> dict[str, Any]:
        now = self.clock()

        def insert(conn: sa.Connection) -> int:
            if conn.execute(sa.select(t.orgs.c.id).where(t.orgs.c.name == name)).first():
                raise Conflict(f"org '{name}' already exists")
            return inserted_id(conn.execute(
                sa.insert(t.orgs).values(name=name, created_at=now)
            ))

        return {"id": self.engines.write_tx(insert), "name": name, "created_at": now}

    def create_user(self, username: str, org: str, is_admin: bool = False) -> dict[str, Any]:
        now = self.clock()

        def insert(conn: sa.Connection) -> tuple[int, int]:
            if conn.execute(sa.select(t.users.c.id).where(t.users.c.username == username)).first():
                raise Conflict(f"user '{username}' already exists")
            org_row = conn.execute(sa.select(t.orgs).where(t.orgs.c.name == org)).first()
            if org_row is None:
                raise ValidationFailed(f"org '{org}' does not exist", {"org": org})
            user_id = inserted_id(conn.execute(
                sa.insert(t.users).values(
                    org_id=org_row.id, username=username, is_admin=is_admin, created_at=now
                )
            ))
            return user_id, org_row.id

        user_id, org_id = self.engines.write_tx(insert)
        return {
            "id": user_id, "username": username, "org": org, "org_id": org_id,
            "is_admin": is_admin, "created_at": now,
        }

    def create_key(self, user_id: int, key_hash: str, prefix: str, name: str) -> dict[str, Any]:
        now = self.clock()
        stmt = sa.insert(t.api_keys).values(
            user_id=user_id, key_hash=key_hash, prefix=prefix, name=name, created_at=now
        )
        key_id = self.engines.write_tx(lambda conn: inserted_id(conn.execute(stmt)))
        return {"id": key_id, "user_id": user_id, "prefix": prefix, "name": name,
                "created_at": now, "revoked_at": None}

    def revoke_key(self, key_id: int) -> dict[str, Any] | None:
        now = self.clock()

        def revoke(conn: sa.Connection) -> dict[str, Any] | None:
            row = conn.execute(sa.select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
            if row is None:
                return None
            revoked_at = row.revoked_at or now
            conn.execute(
                sa.update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=revoked_at)
            )
            return {**_key_dict(row), "revoked_at": revoked_at}

        return self.engines.write_tx(revoke)

    def list_keys(self, user_id: int | None) -> list[dict[str, Any]]:
        stmt = sa.select(t.api_keys).order_by(t.api_keys.c.id)
        if user_id is not None:
            stmt = stmt.where(t.api_keys.c.user_id == user_id)
        with self.engines.read.connect() as conn:
            return [_key_dict(r) for r in conn.execute(stmt)]

    def list_users(self) -> list[dict[str, Any]]:
        stmt = sa.select(t.users, t.orgs.c.name.label("org")).join(t.orgs).order_by(t.users.c.id)
        with self.engines.read.connect() as conn:
            return [_user_dict(r) for r in conn.execute(stmt)]

    def find_user(self, username: str) -> dict[str, Any] | None:
        stmt = (
            sa.select(t.users, t.orgs.c.name.label("org"))
            .join(t.orgs)
            .where(t.users.c.username == username)
        )
        with self.engines.read.connect() as conn:
            row = conn.execute(stmt).first()
        return _user_dict(row) if row else None

    def list_orgs(self) -> list[dict[str, Any]]:
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.orgs).order_by(t.orgs.c.id))
            return [{"id": r.id, "name": r.name, "created_at": r.created_at} for r in rows]

    def is_empty(self) -> bool:
        with self.engines.read.connect() as conn:
            return conn.execute(sa.select(t.users.c.id).limit(1)).first() is None

    # Integrate.io reads ----------------------------------------------------------------------
    def org_by_ref(self, ref: str) -> tuple[int, str] | None:
        cond = _org_cond(ref)
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(t.orgs.c.id, t.orgs.c.name).where(cond).order_by(
                sa.case((t.orgs.c.name == ref, 0), else_=1))).first()  # a name wins
        return (row.id, row.name) if row else None

    def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        with self.engines.read.connect() as conn:
            return usernames_in(conn, user_ids)

    # SSH keys --------------------------------------------------------------------------------
    def add_ssh_key(self, user_id: int, org_id: int, name: str, key_type: str, public_key: str,
                    fingerprint: str) -> dict[str, Any]:
        def insert(conn: sa.Connection) -> dict[str, Any]:
            # Lock the user's row: two adds of one key at once cannot both pass the checks.
            conn.execute(sa.select(t.users.c.id).where(t.users.c.id == user_id)
                         .with_for_update()).one()
            taken = conn.execute(sa.select(_K.c.uid).where(
                _K.c.user_id == user_id, _K.c.fingerprint == fingerprint)).scalar()
            if taken:
                raise Conflict(f"this SSH key is already registered as {taken}",
                               {"key_id": taken})
            count = conn.execute(sa.select(sa.func.count()).where(_K.c.user_id == user_id))
            if count.scalar_one() >= MAX_SSH_KEYS:
                raise Conflict(f"at most {MAX_SSH_KEYS} SSH keys per user; remove one first")
            row = {"uid": "key_" + ids.random_token(12), "user_id": user_id, "org_id": org_id,
                   "name": name, "key_type": key_type, "public_key": public_key,
                   "fingerprint": fingerprint, "created_at": self.clock()}
            conn.execute(sa.insert(_K), row)
            return dict(row)

        return self.engines.write_tx(insert)

    def list_ssh_keys(self, org_id: int, user_id: int | None = None) -> list[dict[str, Any]]:
        stmt = (sa.select(_K, t.users.c.username).join(t.users, t.users.c.id == _K.c.user_id)
                .where(_K.c.org_id == org_id).order_by(_K.c.id))
        if user_id is not None:
            stmt = stmt.where(_K.c.user_id == user_id)
        with self.engines.read.connect() as conn:
            return [_ssh_key(r, r.username) for r in conn.execute(stmt)]

    def get_ssh_key(self, uid: str) -> dict[str, Any] | None:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(_K).where(_K.c.uid == uid)).first()
        return _ssh_key(row) if row else None

    def delete_ssh_key(self, uid: str) -> bool:
        return bool(self.engines.write_tx(
            lambda conn: conn.execute(sa.delete(_K).where(_K.c.uid == uid)).rowcount))

    # accounts --------------------------------------------------------------------------------
    def account_summary(self, user_id: int) -> dict[str, Any]:
        u, o = t.users, t.orgs
        with self.engines.read.connect() as conn:
            user = conn.execute(
                sa.select(u.c.id, u.c.username, u.c.is_admin, u.c.created_at, u.c.budget,
                          o.c.name.label("org"), o.c.budget.label("org_budget"))
                .join(o, o.c.id == u.c.org_id).where(u.c.id == user_id)).one()
            jobs: dict[str, int] = dict(conn.execute(
                sa.select(t.jobs.c.state, sa.func.count()).where(t.jobs.c.user_id == user_id)
                .group_by(t.jobs.c.state)).all())

            def count(table: sa.Table, *where: Any) -> int:
                stmt = sa.select(sa.func.count()).select_from(table).where(
                    table.c.user_id == user_id, *where)
                return int(conn.execute(stmt).scalar_one())

            return {
                "user_id": user.id, "username": user.username, "org": user.org,
                "is_admin": bool(user.is_admin), "created_at": user.created_at,
                "budget": user.budget, "org_budget": user.org_budget,
                "jobs": {str(state): int(n) for state, n in jobs.items()},
                "clusters": count(t.clusters,
                                  t.clusters.c.state.in_([str(s) for s in HOLDING])),
                "volumes": count(t.volumes),
                "ssh_keys": count(_K),
            }

    def api_key_info(self, key_id: int) -> dict[str, Any] | None:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(t.api_keys.c.name, t.api_keys.c.prefix)
                               .where(t.api_keys.c.id == key_id)).first()
        return {"name": row.name, "prefix": row.prefix} if row else None

    def set_budget(self, scope: str, name: str, budget: float | None) -> dict[str, Any] | None:
        table, column = _BUDGET_SCOPES[scope]
        stmt = sa.update(table).where(column == name).values(budget=budget)
        if not self.engines.write_tx(lambda conn: conn.execute(stmt).rowcount):
            return None
        return self.get_budget(scope, name)

    def get_budget(self, scope: str, name: str) -> dict[str, Any] | None:
        table, column = _BUDGET_SCOPES[scope]
        org = table.c.org_id if scope == "user" else table.c.id
        stmt = sa.select(table.c.id, column.label("name"), org.label("org_id"), table.c.budget)
        with self.engines.read.connect() as conn:
            row = conn.execute(stmt.where(column == name)).first()
        return dict(row._mapping) if row else None

    def budgets(self, user_ids: Iterable[int], org_ids: Iterable[int]
                ) -> tuple[dict[int, float], dict[int, float]]:
        users, orgs = list(set(user_ids)), list(set(org_ids))
        with self.engines.read.connect() as conn:
            u: Iterable[Any] = conn.execute(sa.select(t.users.c.id, t.users.c.budget).where(
                t.users.c.id.in_(users), t.users.c.budget.is_not(None))) if users else []
            o: Iterable[Any] = conn.execute(sa.select(t.orgs.c.id, t.orgs.c.budget).where(
                t.orgs.c.id.in_(orgs), t.orgs.c.budget.is_not(None))) if orgs else []
            return {r.id: r.budget for r in u}, {r.id: r.budget for r in o}

    # quotas ----------------------------------------------------------------------------------
    def set_org_max_gpus(self, org: str, max_gpus: int | None) -> None:
        def update(conn: sa.Connection) -> None:
            done = conn.execute(sa.update(t.orgs).where(t.orgs.c.name == org)
                                .values(max_gpus=max_gpus))
            if not done.rowcount:
                raise NotFound(f"org '{org}' not found")

        self.engines.write_tx(update)


def _key_dict(r: Any) -> dict[str, Any]:
    return {"id": r.id, "user_id": r.user_id, "prefix": r.prefix, "name": r.name,
            "created_at": r.created_at, "revoked_at": r.revoked_at}


def _user_dict(r: Any) -> dict[str, Any]:
    return {"id": r.id, "username": r.username, "org": r.org, "org_id": r.org_id,
            "is_admin": bool(r.is_admin), "created_at": r.created_at}


def _ssh_key(row: Any, username: str | None = None) -> dict[str, Any]:
    key = {name: getattr(row, name) for name in (
        "uid", "user_id", "org_id", "name", "key_type", "public_key", "fingerprint",
        "created_at")}
    if username is not None:
        key["username"] = username
    return key


def _org_cond(ref: str) -> Any:
    if ref.isascii() and ref.isdigit() and len(ref) < 12:
        return sa.or_(t.orgs.c.id == int(ref), t.orgs.c.name == ref)
    return t.orgs.c.name == ref


def usernames_in(conn: sa.Connection, user_ids: Iterable[int]) -> dict[int, str]:
    """Usernames by user id."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = conn.execute(sa.select(t.users.c.id, t.users.c.username).where(t.users.c.id.in_(ids)))
    return {r.id: r.username for r in rows}
