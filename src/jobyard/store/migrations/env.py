"""Alembic environment: runs against the connection handed in by jobyard.store.migrate."""

from __future__ import annotations

from alembic import context

from jobyard.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise SystemExit("run migrations through `jobyard migrate` or jobyard.store.migrate.upgrade")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
