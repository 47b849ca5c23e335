"""Request bodies of the native API (responses are rendered by ``render``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobyard.core.inputs import SubmitJob
from jobyard.core.models import Resources, RetryPolicy
from jobyard.core.webhooks import normalize_events


class ResourcesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gpus: int = Field(0, ge=0, le=1024)
    cpus: float = Field(1.0, gt=0, le=4096)
    memory_mb: int = Field(0, ge=0)


class RetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_retries: int = Field(0, ge=0, le=100)
    backoff_s: float = Field(10.0, ge=0, le=86400)
    on: list[Literal["error", "failed", "timeout"]] = ["error", "failed"]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048, description="http:// or https://")
    events: list[str] | None = Field(
        None, max_length=20,
        description="e.g. ['completed', 'failed', 'progress'] or '*'; default: terminal events",
    )

    @field_validator("events")
    @classmethod
    def _known_events(cls, names: list[str] | None) -> list[str]:
        return normalize_events(names)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "events": normalize_events(self.events)}


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str | list[str] = Field(description="a shell command, or an argv list")
    name: str | None = Field(None, max_length=200)
    env: dict[str, str] = {}
    workdir: str | None = Field(None, max_length=4096)
    resources: ResourcesIn = ResourcesIn()
    instance_type: str | None = Field(None, max_length=100)
    priority: int = Field(0, ge=-1000, le=1000, description="higher runs first")
    time_limit_s: float | None = Field(None, gt=0)
    retry: RetryIn = RetryIn()
    tags: list[str] = Field([], max_length=50)
    webhook: WebhookIn | None = Field(None, description="overrides the owner's default webhook")
    cluster_id: str | None = Field(None, max_length=40,
                                   description="run on one instance of this ready cluster")
    outputs: list[str] = Field([], max_length=100, description=(
        "files to keep when it ends: paths or globs relative to workdir ('model.pt', "
        "'ckpt_*.pt', 'checkpoints/')"))

    def to_input(self) -> SubmitJob:
        return SubmitJob(
            command=self.command,
            name=self.name,
            env=self.env,
            workdir=self.workdir,
            resources=Resources(**self.resources.model_dump()),
            instance_type=self.instance_type,
            priority=self.priority,
            time_limit_s=self.time_limit_s,
            retry=RetryPolicy(
                max_retries=self.retry.max_retries,
                backoff_s=self.retry.backoff_s,
                on=tuple(self.retry.on),
            ),
            tags=tuple(self.tags),
            webhook=self.webhook.to_dict() if self.webhook else None,
            cluster_id=self.cluster_id,
            outputs=tuple(self.outputs),
        )


class OrgIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    org: str = Field(min_length=1, max_length=100)
    is_admin: bool = False


class KeyIn(BaseModel):
    name: str = Field("api key", min_length=1, max_length=100)
    username: str | None = None
