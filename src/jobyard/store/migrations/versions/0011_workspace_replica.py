"""jobs.workspace_replica: the replica whose data dir holds a server-made workdir (a pushed
project, a run's input), fetched from there by a leader on another machine

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing jobs ran where their workspace was (one replica): nothing to fetch.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workspace_replica", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("workspace_replica")
