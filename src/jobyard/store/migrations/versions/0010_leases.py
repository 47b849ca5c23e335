"""leases: the daemon's leadership on PostgreSQL as a lease with a fencing token

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("acquired_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    # The older schema leads by an advisory lock: a lease in flight is simply dropped.
    op.drop_table("leases")
