"""The deletion-protection flag of clusters and volumes, as the store records it.

The rule it enforces lives in core (``core.rules.refuse_if_protected``, checked on the locked
row when a release or destroy is asked for); this only records it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import sqlalchemy as sa

from jobyard.store.engine import Engines


def set_protection(engines: Engines, clock: Callable[[], float], table: sa.Table, uid: str,
                   on: bool, states: Collection[str]) -> str | None:
    """Set the deletion protection of row ``uid`` of ``table`` if its state is one of
    ``states``, on its locked row. Returns its state (None: it does not exist)."""
    def update(conn: sa.Connection) -> str | None:
        state = conn.execute(sa.select(table.c.state).where(table.c.uid == uid)
                             .with_for_update()).scalar()
        if state in states:
            conn.execute(sa.update(table).where(table.c.uid == uid).values(
                deletion_protection=on, updated_at=clock()))
        return state

    return engines.write_tx(update)
