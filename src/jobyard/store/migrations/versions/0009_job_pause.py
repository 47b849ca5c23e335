"""a job's pause: jobs.paused_at (since when its attempt is paused) and jobs.paused_s (the
seconds it spent paused before), so the time limit does not run while it is paused

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows were never paused: no pause under way, 0 s paused.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("paused_s", sa.Double(), nullable=False,
                                      server_default=sa.text("0")))


def downgrade() -> None:
    # A job paused now stays paused in the older schema; only its time-limit credit is lost.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("paused_s")
        batch_op.drop_column("paused_at")
