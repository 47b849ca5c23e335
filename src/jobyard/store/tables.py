"""The SQL schema. Alembic migrations under ``migrations/`` must produce exactly this
(``tests/store/test_migrations.py`` diffs them)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("budget", sa.Double, nullable=True),
    sa.Column("max_gpus", sa.Integer, nullable=True),  # cluster quota; None: config default
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("webhook", sa.JSON, nullable=True),  # default webhook for the user's jobs
    sa.Column("budget", sa.Double, nullable=True),  # spending limit, in config currency
)

# Keys are stored only as a SHA-256 hash; ``prefix`` is shown to tell keys apart.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked_at", sa.Double, nullable=True),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(40), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("command", sa.JSON, nullable=False),  # a string, or a list (argv)
    sa.Column("env", sa.JSON, nullable=False),
    sa.Column("workdir", sa.Text, nullable=True),
    sa.Column("workspace_replica", sa.Text, nullable=True),  # Job.workspace_replica
    sa.Column("gpus", sa.Integer, nullable=False),
    sa.Column("cpus", sa.Double, nullable=False),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("instance_type", sa.String(100), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("time_limit_s", sa.Double, nullable=True),
    sa.Column("retry", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("substate", sa.String(40), nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double, nullable=True),
    sa.Column("finished_at", sa.Double, nullable=True),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("next_retry_at", sa.Double, nullable=True),
    sa.Column("cancel_requested_at", sa.Double, nullable=True),
    sa.Column("runtime", sa.JSON, nullable=True),
    sa.Column("assigned", sa.JSON, nullable=True),
    sa.Column("cancel_receipt", sa.JSON, nullable=True),
    # Job.dialect: vendor dialects' facts, keyed by dialect (the column kept its first name).
    sa.Column("extra", sa.JSON, nullable=False),
    # What the job reported and what was measured: progress, step, metadata, throughput, ETA,
    # cold start, peaks, cost, efficiency (see jobyard.telemetry). Written only while active.
    sa.Column("telemetry", sa.JSON, nullable=True),
    # Per-job webhook: {"url": ..., "events": [...]}; the owner's default applies when null.
    sa.Column("webhook", sa.JSON, nullable=True),
    # The cluster (uid) it runs on; null: an ephemeral cluster, i.e. its own allocation.
    sa.Column("cluster_id", sa.String(40), nullable=True),
    # Its name at submit, and whether the job releases it when over (migration 0008 moved
    # these, the output patterns and the daemon's two facts below out of ``extra``).
    sa.Column("cluster_name", sa.String(100), nullable=True),
    sa.Column("teardown_cluster", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Column("output_patterns", sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    # The daemon's record of the current attempt: timed out, or stopped with this error.
    sa.Column("timed_out", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Column("stop_error", sa.JSON, nullable=True),
    # The current attempt's pause (migration 0009): since when, and the seconds paused before.
    sa.Column("paused_at", sa.Double, nullable=True),
    sa.Column("paused_s", sa.Double, nullable=False, default=0.0, server_default=sa.text("0")),
    sa.Index("ix_jobs_queue", "state", "priority", "created_at"),
    sa.Index("ix_jobs_org_id", "org_id", "id"),
    sa.Index("ix_jobs_finished_at", "finished_at"),
    sa.Index("ix_jobs_cluster_id", "cluster_id", "state"),
)

job_tags = sa.Table(
    "job_tags",
    metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(100), primary_key=True),
    sa.Index("ix_job_tags_tag", "tag", "job_id"),
)

# The event log: the single source for SSE streams, webhooks and audit.
job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_job_events_job", "job_id", "id"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("user_id", "key"),
)

kv = sa.Table(
    "kv",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("updated_at", sa.Double, nullable=False),
)

# Leases (PostgreSQL): the daemon's leadership. ``token`` grows with each new holder; every
# write of the daemon checks it (jobyard.store.engine.Fence), so a replica that lost the lease
# (paused, partitioned) writes nothing after. ``expires_at``: the database's clock.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("holder", sa.String(100), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Column("acquired_at", sa.Double, nullable=False),
)

# Resource samples of running jobs, downsampled (see jobyard.telemetry.metrics).
job_metrics = sa.Table(
    "job_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_job_metrics_job", "job_id", "ts"),
)

# Files a job left in its output directory, collected when an attempt ends.
job_outputs = sa.Table(
    "job_outputs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("records", sa.BigInteger, nullable=True),
    sa.Column("partial", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("job_id", "attempt", "name"),
)

# The webhook outbox: one row per (event, target), written in the event's transaction.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("event_id", sa.Integer, nullable=True),
    sa.Column("event_type", sa.String(60), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending, delivered, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Double, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("delivered_at", sa.Double, nullable=True),
    sa.Column("log", sa.JSON, nullable=False),  # one entry per attempt: ts, status, error
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_job", "job_id", "id"),
)

# Async operations (jobyard.core.operations): intent recorded by the API, carried out by the
# leading daemon's operation processor. ``object_id`` is the string id of what it acts on.
# The table keeps its first name, "requests" (TensorPool's word): renaming it would rename
# its constraints too, which SQLite can only do by rebuilding the table.
operations = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(40), nullable=False, unique=True),
    sa.Column("type", sa.String(30), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("object_id", sa.String(40), nullable=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("external_message", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Double, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double, nullable=True),
    sa.Index("ix_requests_due", "status", "next_attempt_at"),
    sa.Index("ix_requests_org_id", "org_id", "id"),
    sa.Index("ix_requests_object_id", "object_id"),
)

# Storage volumes: a directory under data_dir/volumes/<uid>/ (jobyard.core.volumes).
volumes = sa.Table(
    "volumes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(40), nullable=False, unique=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("used_bytes", sa.BigInteger, nullable=True),
    sa.Column("used_checked_at", sa.Double, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    # While true, the volume cannot be destroyed (jobyard.core.volumes.refuse_if_protected).
    sa.Column("deletion_protection", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.UniqueConstraint("org_id", "name"),
)

# Clusters (jobyard.core.clusters): ``instances`` is the reservation, one entry per instance
# ({"gpus": [indices], "cpus", "memory_mb"}); the daemon's Allocator is rebuilt from it.
clusters = sa.Table(
    "clusters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(40), nullable=False, unique=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("instance_type", sa.String(50), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("gpus_per_instance", sa.Integer, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("instances", sa.JSON, nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    # While true, the cluster cannot be released (jobyard.core.volumes.refuse_if_protected).
    sa.Column("deletion_protection", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Index("ix_clusters_org_id", "org_id", "state"),
)

# Which cluster a volume is attached to; a volume with a row here cannot be destroyed.
volume_attachments = sa.Table(
    "volume_attachments",
    metadata,
    sa.Column("volume_id", sa.Integer, sa.ForeignKey("volumes.id"), primary_key=True),
    sa.Column("cluster_id", sa.String(40), sa.ForeignKey("clusters.uid"), primary_key=True),
    sa.Column("attached_at", sa.Double, nullable=False),
)

# Users' SSH public keys (OpenSSH one-line format), as the TensorPool CLI manages them
# (``tp me sshkey``). ``uid`` is the id users see; a user registers a key only once.
ssh_keys = sa.Table(
    "ssh_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(40), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("key_type", sa.String(60), nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(100), nullable=False),  # SHA256:<base64>, as ssh-keygen
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("user_id", "fingerprint"),
    sa.Index("ix_ssh_keys_org_id", "org_id", "id"),
)

# Job templates: a named command with its resources and environment that jobs run against
# (TensorOne's endpoints, ``ep_<name>``; the job's input arrives as a file and an env var).
endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(110), nullable=False, unique=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("command", sa.JSON, nullable=False),  # a shell string or an argv list
    sa.Column("env", sa.JSON, nullable=False),
    sa.Column("resources", sa.JSON, nullable=False),  # {"gpus", "cpus", "memory_mb"}
    sa.Column("time_limit_s", sa.Double, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Index("ix_endpoints_org_id", "org_id", "id"),
)

# Packages (Integrate.io): a named command with default variables (given to the job as env)
# that jobs and schedules run; the integer id is what Integrate.io clients use.
packages = sa.Table(
    "packages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("command", sa.JSON, nullable=False),
    sa.Column("variables", sa.JSON, nullable=False),
    sa.Column("resources", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.UniqueConstraint("org_id", "name"),
)

# Schedules (Integrate.io): run a package every interval_amount interval_unit from start_at;
# the leading daemon submits a job when next_run_at is due.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("package_id", sa.Integer, sa.ForeignKey("packages.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("variables", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # enabled | disabled
    sa.Column("interval_amount", sa.Integer, nullable=False),
    sa.Column("interval_unit", sa.String(20), nullable=False),  # minutes|hours|days|weeks|months
    sa.Column("start_at", sa.Double, nullable=False),
    sa.Column("next_run_at", sa.Double, nullable=True),
    sa.Column("last_run_at", sa.Double, nullable=True),
    sa.Column("last_run_status", sa.String(20), nullable=True),
    sa.Column("last_job_id", sa.Integer, nullable=True),
    sa.Column("execution_count", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Index("ix_schedules_due", "status", "next_run_at"),
)
