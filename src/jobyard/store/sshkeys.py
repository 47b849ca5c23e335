"""The SQL store's accounts part: users' SSH public keys, an account summary, and the
deletion-protection flag of clusters and volumes. Mixed into SqlStore.

The rule deletion protection enforces lives in core (``core.rules.refuse_if_protected``,
checked on the locked row when a release or destroy is requested); this only records it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Literal

import sqlalchemy as sa

from jobyard import ids
from jobyard.core.clusters import HOLDING
from jobyard.errors import Conflict
from jobyard.store import tables as t

_K = t.ssh_keys
_PROTECTED = {"clusters": t.clusters, "volumes": t.volumes}
MAX_SSH_KEYS = 100  # per user


def _ssh_key(row: Any, username: str | None = None) -> dict[str, Any]:
    key = {name: getattr(row, name) for name in (
        "uid", "user_id", "org_id", "name", "key_type", "public_key", "fingerprint",
        "created_at")}
    if username is not None:
        key["username"] = username
    return key


class SshKeyStore:
    engines: Any
    clock: Callable[[], float]

    # SSH keys --------------------------------------------------------------------------------
    def add_ssh_key(self, user_id: int, org_id: int, name: str, key_type: str, public_key: str,
                    fingerprint: str) -> dict[str, Any]:
        """A new key of ``user_id``; 409 when that user already has it, or too many keys."""
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
        """The keys of an org (or of one of its users), oldest first, with their owner."""
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
        """Forget a key; False when there was none."""
        return bool(self.engines.write_tx(
            lambda conn: conn.execute(sa.delete(_K).where(_K.c.uid == uid)).rowcount))

    # accounts --------------------------------------------------------------------------------
    def account_summary(self, user_id: int) -> dict[str, Any]:
        """What there is to know about a user: their row and org, their jobs by state, how
        many clusters (holding resources), volumes and SSH keys they own."""
        u, o = t.users, t.orgs
        with self.engines.read.connect() as conn:
            user = conn.execute(
                sa.select(u.c.id, u.c.username, u.c.is_admin, u.c.created_at, u.c.budget,
                          o.c.name.label("org"), o.c.budget.label("org_budget"))
                .join(o, o.c.id == u.c.org_id).where(u.c.id == user_id)).one()
            jobs = dict(conn.execute(
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
        """Name and prefix of an API key (to tell the caller which key they use)."""
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(t.api_keys.c.name, t.api_keys.c.prefix)
                               .where(t.api_keys.c.id == key_id)).first()
        return {"name": row.name, "prefix": row.prefix} if row else None

    # deletion protection ---------------------------------------------------------------------
    def set_protection(self, table: Literal["clusters", "volumes"], uid: str, on: bool,
                       states: Collection[str]) -> str | None:
        """Set the deletion protection of cluster/volume ``uid`` if its state is one of
        ``states``, on its locked row. Returns its state (None: it does not exist)."""
        tbl = _PROTECTED[table]

        def update(conn: sa.Connection) -> str | None:
            state = conn.execute(sa.select(tbl.c.state).where(tbl.c.uid == uid)
                                 .with_for_update()).scalar()
            if state in states:
                conn.execute(sa.update(tbl).where(tbl.c.uid == uid).values(
                    deletion_protection=on, updated_at=self.clock()))
            return state

        return self.engines.write_tx(update)
