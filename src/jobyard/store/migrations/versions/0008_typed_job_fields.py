"""typed job fields out of jobs.extra: cluster_name, teardown_cluster, output_patterns,
timed_out, stop_error (jobs.extra keeps only the vendor dialects' facts: Job.dialect)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 09:30:00.000000
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The keys of jobs.extra that became columns; whatever else is in it stays (vendor facts).
MOVED = ("cluster", "teardown_cluster", "outputs", "timed_out", "stop_error")
PAGE = 1000

# The table as this revision knows it (not tables.py, which moves on).
COLUMNS: dict[str, Any] = {
    "extra": sa.JSON(), "cluster_name": sa.String(100), "teardown_cluster": sa.Boolean(),
    "output_patterns": sa.JSON(), "timed_out": sa.Boolean(), "stop_error": sa.JSON(),
}
jobs = sa.table("jobs", sa.column("id", sa.Integer()),
                *(sa.column(name, type_) for name, type_ in COLUMNS.items()))
# One row's new values (bind names must differ from the column names).
_UPDATE = (sa.update(jobs).where(jobs.c.id == sa.bindparam("job_id"))
           .values({name: sa.bindparam(f"new_{name}", type_=type_)
                    for name, type_ in COLUMNS.items()}))


def upgrade() -> None:
    # Existing rows get the defaults, then their values moved out of ``extra`` below.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cluster_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("teardown_cluster", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("output_patterns", sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("timed_out", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("stop_error", sa.JSON(), nullable=True))

    # Only rows whose extra mentions a moved key are read (the text test is a cheap first
    # filter that works on both databases; each row's keys are then checked for real).
    mentions = sa.or_(*(sa.cast(jobs.c.extra, sa.Text).like(f'%"{key}"%') for key in MOVED))
    for rows in _pages(mentions):
        values = [_split(job_id, extra) for job_id, extra in rows
                  if isinstance(extra, dict) and any(key in extra for key in MOVED)]
        if values:
            op.get_bind().execute(_UPDATE, values)


def _split(job_id: int, extra: dict[str, Any]) -> dict[str, Any]:
    cluster = extra.get("cluster")
    return {
        "job_id": job_id,
        "new_extra": {k: v for k, v in extra.items() if k not in MOVED},
        "new_cluster_name": cluster.get("name") if isinstance(cluster, dict) else None,
        "new_teardown_cluster": bool(extra.get("teardown_cluster")),
        "new_output_patterns": [str(p) for p in extra.get("outputs") or []],
        "new_timed_out": bool(extra.get("timed_out")),
        "new_stop_error": extra.get("stop_error") or None,
    }


def _pages(where: Any, select: Any = None) -> Iterator[Sequence[Any]]:
    """The rows matching ``where`` (by default their id and extra), a page at a time, in id
    order."""
    select = select if select is not None else sa.select(jobs.c.id, jobs.c.extra)
    last = 0
    while True:
        rows = op.get_bind().execute(
            select.where(where, jobs.c.id > last).order_by(jobs.c.id).limit(PAGE)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def downgrade() -> None:
    # Back into extra, as the code before this revision wrote them.
    update = (sa.update(jobs).where(jobs.c.id == sa.bindparam("job_id"))
              .values(extra=sa.bindparam("new_extra", type_=sa.JSON())))
    for rows in _pages(sa.true(), sa.select(jobs)):
        values = []
        for row in rows:
            moved = {"outputs": list(row.output_patterns or []),
                     "cluster": {"name": row.cluster_name} if row.cluster_name else None,
                     "teardown_cluster": bool(row.teardown_cluster),
                     "timed_out": bool(row.timed_out), "stop_error": row.stop_error}
            moved = {k: v for k, v in moved.items() if v}
            if moved:
                values.append({"job_id": row.id, "new_extra": {**(row.extra or {}), **moved}})
        if values:
            op.get_bind().execute(update, values)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("stop_error")
        batch_op.drop_column("timed_out")
        batch_op.drop_column("output_patterns")
        batch_op.drop_column("teardown_cluster")
        batch_op.drop_column("cluster_name")
