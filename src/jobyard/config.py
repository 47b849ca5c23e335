"""The one configuration object: defaults, then an optional TOML file, then ``JOBYARD_*`` env.

Built once per process by :func:`load_config` and passed down; nothing else reads the
environment for settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBYARD_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8750
    # As root (jobs then run as tenants' own uids, which must pass through its parents), the
    # service's usual place; otherwise the user's home.
    data_dir: Path = Field(default_factory=lambda: Path("/var/lib/jobyard") if os.geteuid() == 0
                           else Path.home() / ".jobyard")
    # Defaults to a SQLite file in data_dir; set a postgresql:// URL to scale out.
    database_url: str | None = None
    # SQLite: how long a write waits for another process's lock before it answers 503.
    db_busy_timeout_s: float = Field(30.0, gt=0)
    # When the store is new, make this exact key the admin key (deployment scripts).
    bootstrap_admin_key: str | None = None
    # URL that jobs and printed examples use to reach this server; defaults from host/port.
    public_url: str | None = None
    # Where the other replicas reach this one (an attempt's files stay on the replica that ran
    # it; the others relay reads of them here). Default: http://<host>:<port>.
    replica_url: str | None = None

    # Inventory. None means "detect": NVML for GPUs, the machine for CPUs and memory.
    virtual_gpus: int | None = None
    cpus: float | None = None
    memory_mb: int | None = None

    # Executor.
    log_cap_bytes: int = 10 * 1024 * 1024
    kill_grace_s: float = 5.0
    # With NVML: after a cancel or timeout, wait up to this long for the job's GPUs to be free.
    gpu_release_timeout_s: float = 30.0
    # Enforcement (jobyard.executors.cgroups): each attempt in its own cgroup, with its
    # memory_mb as a hard limit, its cpus as a CPU quota, at most job_pids_max processes, and
    # only its own GPUs' device files (gpu_devices: the glob naming them by index). "auto" takes
    # cgroup v2 where usable, else v1; "off", or no writable cgroup, runs jobs unenforced (the
    # server says so at start and in /healthz).
    cgroups: Literal["auto", "v1", "v2", "off"] = "auto"
    # Tenants as OS identities (jobyard.executors.identity): when the server runs as root, an
    # org's jobs run as that org's own uid ("org") or each user's ("user"), numbered from the
    # first id of job_uid_range (which must hold no existing account); "none" runs every job
    # as the server's user (always so when the server is not root).
    job_identity: Literal["org", "user", "none"] = "org"
    job_uid_range: tuple[int, int] = (1_000_000, 1_999_999)
    # Not as root (jobs run as the server's user): "auto" starts each job in its own user,
    # mount and PID namespaces where unprivileged ones work, so it sees none of the server's
    # files (data dir, store, config) but its own, and no process but its own
    # (jobyard.executors.sandbox); "off" lets jobs see what the server sees.
    job_namespaces: Literal["auto", "off"] = "auto"
    job_pids_max: int | None = Field(4096, ge=1)
    gpu_devices: str = "/dev/nvidia[0-9]*"

    # PostgreSQL replicas: the leader's lease on the daemon lasts this long unrenewed (it
    # renews every third of it), so another replica takes over this long after the leader
    # stops answering, at most (plus tick_interval_s, how often a standby asks).
    leader_lease_s: float = Field(3.0, gt=0)

    # Scheduler: how often the daemon looks even without a wake-up (other replicas, retries).
    tick_interval_s: float = 0.5
    # How often the daemon looks for active jobs none of its attempts watches (and recovers
    # them as at a start): the safety net under every other path of an attempt's end.
    reconcile_interval_s: float = Field(30.0, gt=0)

    # Seconds between SSE heartbeat comments on idle streams (keeps proxies from closing them).
    sse_heartbeat_s: float = 15.0

    # Limits on what a request may carry.
    max_request_bytes: int = 1024 * 1024
    max_command_chars: int = 65536
    max_env_vars: int = 256
    max_env_bytes: int = 65536

    # Webhooks (jobyard.events.delivery). After the n-th failed attempt a delivery waits
    # webhook_retry_schedule_s[n-1] seconds; once the list is spent it fails for good. The
    # default keeps trying for ~32 hours. Targets in private, loopback, link-local, multicast
    # or reserved ranges are refused unless inside webhook_allowed_networks (CIDRs, e.g.
    # JOBYARD_WEBHOOK_ALLOWED_NETWORKS='["127.0.0.0/8", "::1/128"]').
    webhook_retry_schedule_s: list[float] = Field(
        default=[5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 28800], min_length=1
    )
    webhook_timeout_s: float = Field(10.0, gt=0)  # one attempt, from lookup to response
    webhook_concurrency: int = Field(8, ge=1)  # attempts in flight at once
    webhook_allowed_networks: list[str] = []
    webhook_poll_interval_s: float = Field(1.0, gt=0)  # for rows other replicas wrote

    # Resource metrics, cost and budgets (jobyard.telemetry: sampler, metrics, cost). Every
    # running attempt's process tree (and, with NVML, its GPUs) is sampled each interval; the
    # stored series keeps at most metrics_max_points per attempt (older points are thinned
    # evenly, see telemetry/metrics.py) and is deleted metrics_retention_days after the job
    # ended (None: kept). An attempt costs instance_prices[instance_type] per hour when its type
    # is priced, else price_gpu_hour per GPU plus price_cpu_hour per CPU it was given. A GPU is
    # flagged idle in the efficiency report when more than idle_gpu_share of its samples show
    # less than idle_gpu_percent utilization.
    metrics_interval_s: float = Field(5.0, gt=0)
    metrics_max_points: int = Field(360, ge=2)
    metrics_retention_days: float | None = 30.0
    price_gpu_hour: float = Field(0.0, ge=0)
    price_cpu_hour: float = Field(0.0, ge=0)
    instance_prices: dict[str, float] = {}  # e.g. JOBYARD_INSTANCE_PRICES='{"1xH100": 2.5}'
    currency: str = "USD"
    idle_gpu_percent: float = Field(10.0, ge=0, le=100)
    idle_gpu_share: float = Field(0.5, ge=0, le=1)

    # Async requests (jobyard.operations.processor). A transiently failed request waits
    # request_retry_base_s·2^(n-1) seconds (at most request_retry_max_s) after its n-th attempt
    # and fails for good after request_max_attempts. request_processing_delay_s holds every
    # request in PROCESSING that long first: a test knob, keep it 0.
    request_poll_interval_s: float = Field(1.0, gt=0)  # for requests other replicas recorded
    request_concurrency: int = Field(4, ge=1)
    request_retry_base_s: float = Field(1.0, gt=0)
    request_retry_max_s: float = Field(300.0, gt=0)
    request_max_attempts: int = Field(8, ge=1)
    request_processing_delay_s: float = Field(0.0, ge=0)
    # Storage volumes: how often their usage is measured (over_quota).
    storage_usage_interval_s: float = Field(60.0, gt=0)

    # Clusters (jobyard.core.clusters): instance types the local provider carves out of this
    # machine's inventory, by name, e.g. JOBYARD_INSTANCE_TYPES='{"1xH100": {"gpus": 1,
    # "cpus": 8, "memory_mb": 65536, "price_hour": 2.5}}'. Empty: derived from the inventory
    # (cpu-1, cpu-2, and 1xGPU when there are GPUs; see clusters.default_catalog). Every type
    # must fit in the machine. org_max_gpus is the default quota of GPUs an org may hold in
    # clusters (None: no limit); an admin sets one org's with PUT /v1/orgs/{name}/quota.
    instance_types: dict[str, dict[str, float]] = {}
    org_max_gpus: int | None = Field(None, ge=0)

    # Retention (jobyard.daemon.retention): finished jobs, with their logs, outputs and
    # workspaces, and done webhook deliveries are deleted retention_days after they ended
    # (None: kept), checked every retention_interval_s, retention_batch jobs per transaction.
    retention_days: float | None = Field(30.0, gt=0)
    retention_interval_s: float = Field(60.0, gt=0)
    retention_batch: int = Field(500, ge=1)

    # TensorPool dialect (jobyard.api.dialects.tensorpool). `tp` clients older than
    # tensorpool_min_cli_version are refused by POST /health with an upgrade message.
    # A pushed project may be at most tensorpool_max_upload_bytes once packed (tar.gz); it is
    # uploaded in chunks sized to take about tensorpool_upload_chunk_s each, so no single
    # command the CLI runs keeps it from answering pings. Download links of `tp job pull`
    # expire after tensorpool_link_ttl_s.
    tensorpool_min_cli_version: str = "0.0.9"
    tensorpool_max_upload_bytes: int = Field(2 * 1024**3, gt=0)
    tensorpool_upload_chunk_s: float = Field(2.0, gt=0)
    tensorpool_link_ttl_s: float = Field(3600.0, gt=0)

    # TensorOne dialect (jobyard.api.dialects.tensorone): status checks per API key (a
    # ``limits`` string); POST /v2/endpoints/{id}/runsync waits at most tensorone_runsync_max_s
    # for the job to end before it answers with its current status.
    tensorone_status_rate_limit: str = "100/minute"
    # Where rate-limit counts live (jobyard.api.ratelimit): "memory://" counts per replica; a
    # storage every replica reaches ("redis://host:6379", any storage URI of the limits
    # library) makes each limit hold across them. One per deployment: keys are not namespaced
    # by database.
    rate_limit_storage: str = "memory://"
    tensorone_runsync_max_s: float = Field(90.0, gt=0)

    # Integrate.io dialect (jobyard.api.dialects.xplenty): API credits per user (most calls
    # cost one); past them, 429.
    xplenty_rate_limit: str = "5000/hour"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'jobyard.db'}"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return self.public_url or f"http://{host}:{self.port}"

    @property
    def replica(self) -> str:
        """This replica's own address (not the public one, which a load balancer may share)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return self.replica_url or f"http://{host}:{self.port}"
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get("JOBYARD_CONFIG")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def load_config(**overrides: Any) -> Config:
    """Build the config: explicit overrides win over env, env over the TOML file."""
    return Config(**{k: v for k, v in overrides.items() if v is not None})
