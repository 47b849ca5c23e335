"""One frozen input object per operation. Every API dialect translates into these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jobyard.core.models import Resources, RetryPolicy

if TYPE_CHECKING:  # clusters.py builds on these inputs
    from jobyard.core.clusters import Cluster


@dataclass(frozen=True, slots=True)
class SubmitJob:
    command: str | list[str]
    name: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    resources: Resources = field(default_factory=Resources)
    instance_type: str | None = None
    priority: int = 0
    time_limit_s: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tags: tuple[str, ...] = ()
    # {"url": ..., "events": ["job.completed", ...]}; None: the owner's default webhook.
    webhook: dict[str, Any] | None = None
    cluster_id: str | None = None  # run on one instance of this (ready) cluster
    # Files to keep from the working directory when an attempt ends: paths or globs relative
    # to ``workdir`` ("model.pth", "ckpt_*.pt", "checkpoints/" for a whole directory).
    outputs: tuple[str, ...] = ()
    # Release the cluster (``cluster_id``) once the job is over (``tp job push --teardown``).
    teardown_cluster: bool = False
    # The replica that made ``workdir`` (a workspace of its data dir): Job.workspace_replica.
    workspace_replica: str | None = None
    # Dialect-specific facts kept with the job, keyed by dialect (e.g. the TensorPool
    # project's commands under "tensorpool"): Job.dialect.
    dialect: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListJobs:
    state: str | None = None
    tag: str | None = None
    name: str | None = None
    limit: int = 50
    before_id: int | None = None  # cursor: jobs with a smaller id (newest first)
    user_id: int | None = None  # only this user's jobs
    gpus: int | None = None  # only jobs that asked for this many GPUs
    created_after: float | None = None  # only jobs created at or after (epoch seconds)
    created_before: float | None = None  # ... and before


# volumes -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateVolume:
    name: str
    size_gb: int  # decimal gigabytes
    deletion_protection: bool = False


@dataclass(frozen=True, slots=True)
class EditVolume:
    """Rename and/or grow (an operation), and/or set deletion protection (at once)."""

    name: str | None = None
    size_gb: int | None = None
    deletion_protection: bool | None = None


# accounts ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateUser:
    username: str
    org: str
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class CreateKey:
    name: str = "api key"
    username: str | None = None  # another user's (admins only); None: the caller's


@dataclass(frozen=True, slots=True)
class SetWebhook:
    """The caller's default webhook; ``url=None`` removes it (the signing secret stays)."""

    url: str | None
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SetBudget:
    scope: Literal["user", "org"]
    name: str  # the user's username or the org's name
    budget: float | None  # None removes it


@dataclass(frozen=True, slots=True)
class SetQuota:
    org: str
    max_gpus: int | None  # None: the server's default


@dataclass(frozen=True, slots=True)
class AddSshKey:
    public_key: str  # one line of a .pub file
    name: str | None = None  # default: the key's comment, else its type


# clusters ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClaimCluster:
    instance_type: str  # a name from the catalog
    count: int = 1  # instances
    name: str | None = None  # default: "<instance type>-cluster"
    deletion_protection: bool = False


@dataclass(frozen=True, slots=True)
class EditCluster:
    """Rename and/or resize (an operation), and/or set deletion protection (at once)."""

    name: str | None = None
    count: int | None = None
    deletion_protection: bool | None = None


@dataclass(frozen=True, slots=True)
class AttachVolume:
    volume_id: str
    cluster_id: str
    detach: bool = False  # detach it instead


# packages and schedules (values as a client sent them: the service checks them) ------------
@dataclass(frozen=True, slots=True)
class CreatePackage:
    name: Any
    command: Any  # a shell string or an argv list
    variables: Any = None  # default variables: names to values
    resources: Any = None  # {"gpus", "cpus", "memory_mb"}
    description: str | None = None


@dataclass(frozen=True, slots=True)
class CreateSchedule:
    name: Any
    package: int | str  # the package's id, or its name in the org
    interval_amount: Any
    interval_unit: Any  # minutes | hours | days | weeks | months
    start_at: float | None = None  # None: now
    variables: Any = None
    description: str | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class RunPackage:
    variables: Any = None  # override the package's defaults
    dynamic_variables: Any = None  # override both
    cluster: Cluster | None = None  # run on one of its instances; None: its own allocation
    schedule_id: int | None = None  # the schedule this run is of
    idempotency: tuple[str, str] | None = None  # (key, fingerprint of the request)


# endpoints ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewEndpoint:
    name: str
    command: str | list[str]
    env: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    time_limit_s: float | None = None


@dataclass(frozen=True, slots=True)
class RunEndpoint:
    """One run of an endpoint: what the job gets beyond the endpoint's template."""

    env: dict[str, str] = field(default_factory=dict)  # the input, as the API layer passes it
    workdir: str | None = None  # where the input file lies (the job's working directory)
    workspace_replica: str | None = None  # the replica that made ``workdir``
    priority: int = 0
    tags: tuple[str, ...] = ()
    webhook: dict[str, Any] | None = None
    time_limit_s: float | None = None  # None: the endpoint's
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    outputs: tuple[str, ...] = ()
    dialect: dict[str, Any] = field(default_factory=dict)  # SubmitJob.dialect
