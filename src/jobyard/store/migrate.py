"""Bring a database to the current schema with Alembic (run at every server start)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: sa.Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine) -> None:
    """Apply every pending migration. Safe to call concurrently from several servers on PG."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One migrator at a time across replicas; released at commit.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7420151)")
        command.upgrade(alembic_config(conn), "head")
