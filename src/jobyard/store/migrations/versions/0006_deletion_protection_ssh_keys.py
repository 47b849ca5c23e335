"""deletion protection of clusters and volumes; users' SSH keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:12:40.512306
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get false: nothing was protected before.
    with op.batch_alter_table("clusters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deletion_protection", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))

    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deletion_protection", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))

    op.create_table(
        "ssh_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_type", sa.String(length=60), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_ssh_keys_org_id_orgs")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_ssh_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ssh_keys")),
        sa.UniqueConstraint("uid", name=op.f("uq_ssh_keys_uid")),
        sa.UniqueConstraint("user_id", "fingerprint",
                            name=op.f("uq_ssh_keys_user_id_fingerprint")),
    )
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.create_index("ix_ssh_keys_org_id", ["org_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_ssh_keys_org_id")

    op.drop_table("ssh_keys")
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.drop_column("deletion_protection")

    with op.batch_alter_table("clusters", schema=None) as batch_op:
        batch_op.drop_column("deletion_protection")
