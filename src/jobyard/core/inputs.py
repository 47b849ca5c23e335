"""One frozen input object per operation. Every API dialect translates into these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jobyard.core.models import Resources, RetryPolicy


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
