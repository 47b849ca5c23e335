"""TensorOne's runs: ``POST /v2/endpoints/{endpointId}/run`` (queue a job of the endpoint and
answer at once) and ``runsync`` (wait for it, at most ``tensorone_runsync_max_s``).

The body::

    {"input": {...},                  # any JSON: the job's input
     "priority": "high",              # low | normal | high | urgent (default normal)
     "tags": {"projectId": "p1"},     # strings; kept as the core tags "projectId:p1"
     "webhook": "https://...",        # or {"url": ..., "events": [...]}: called as the job ends
     "timeout": 600,                  # seconds; default: the endpoint's time limit
     "retry": {"maxRetries": 2, "backoffSeconds": 10}}

The job runs the endpoint's command in a fresh working directory holding ``input.json``:

- ``TENSORONE_INPUT_FILE``: that file's path; ``TENSORONE_INPUT``: the same JSON, when it is
  at most :data:`MAX_INPUT_ENV` bytes (larger inputs come as the file only);
- ``TENSORONE_OUTPUT_FILE``: where to write its result (``output.json`` in the working
  directory; ``$JOBYARD_OUTPUT_DIR/output.json`` works too): shown as ``output.result``;
- ``TENSORONE_ENDPOINT_ID``: the endpoint.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobyard.api.deps import services
from jobyard.api.dialects.states import dialect_status
from jobyard.api.dialects.tensorone.common import caller, view
from jobyard.api.dialects.tensorone.shapes import (
    TensorOneRoute,
    include_set,
    priority_value,
    tags_to_core,
)
from jobyard.api.dialects.tensorone.status import OUTPUT_FILE, status_of
from jobyard.api.responses import JSON
from jobyard.core.inputs import RunEndpoint
from jobyard.core.models import Job, Principal, RetryPolicy
from jobyard.core.services import Services
from jobyard.core.webhooks import normalize_events
from jobyard.errors import Forbidden

router = APIRouter(prefix="/v2/endpoints", tags=["tensorone"], route_class=TensorOneRoute)
INPUT_FILE = "input.json"
MAX_INPUT_ENV = 32 * 1024
POLL_S = 1.0  # a runsync also looks this often (changes made by another replica)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] | None = Field(None, max_length=20)

    @field_validator("events")
    @classmethod
    def _known(cls, names: list[str] | None) -> list[str]:
        return normalize_events(names)


class RetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    maxRetries: int = Field(0, ge=0, le=100)
    backoffSeconds: float = Field(10.0, ge=0, le=86400)


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Any = Field(default_factory=dict, description="any JSON: the job's input")
    priority: Literal["low", "normal", "high", "urgent"] = "normal"  # shapes.PRIORITIES
    tags: dict[str, str] = Field({}, max_length=50)
    webhook: str | WebhookIn | None = Field(None, description="called when the job ends")
    timeout: float | None = Field(None, gt=0, description="seconds; default: the endpoint's")
    retry: RetryIn | None = None

    def webhook_dict(self) -> dict[str, Any] | None:
        if self.webhook is None:
            return None
        if isinstance(self.webhook, str):
            return {"url": self.webhook, "events": normalize_events(None)}
        return {"url": self.webhook.url, "events": normalize_events(self.webhook.events)}


def submit_run(svc: Services, who: Principal, endpoint_id: str, body: RunIn) -> Job:
    """Queue one job of the endpoint, its input in a fresh workspace."""
    ep = svc.endpoints.get_any(endpoint_id)
    if not who.sees(ep.org_id):
        raise Forbidden("You don't have permission to run this endpoint",
                        {"endpointId": endpoint_id, "requiredPermission": "endpoints:execute",
                         "userPermissions": []})
    text = json.dumps(body.input, separators=(",", ":"), ensure_ascii=False)
    home = svc.files.new_workspace({INPUT_FILE: text.encode()})
    try:
        workdir = home / "project"
        env = {"TENSORONE_INPUT_FILE": str(home / INPUT_FILE),
               "TENSORONE_OUTPUT_FILE": str(workdir / OUTPUT_FILE),
               "TENSORONE_ENDPOINT_ID": ep.uid}
        if len(text.encode()) <= MAX_INPUT_ENV:
            env["TENSORONE_INPUT"] = text
        retry = body.retry or RetryIn()
        run = RunEndpoint(
            env=env, workdir=str(workdir), workspace_replica=svc.files.here,
            priority=priority_value(body.priority),
            tags=tags_to_core(body.tags), webhook=body.webhook_dict(),
            time_limit_s=body.timeout,
            retry=RetryPolicy(max_retries=retry.maxRetries, backoff_s=retry.backoffSeconds),
            outputs=(OUTPUT_FILE,), dialect={"tensorone": {"endpointId": ep.uid}},
        )
        return svc.endpoints.run(who, ep, run)
    except BaseException:
        svc.files.discard_workspace(home)
        raise


def accepted(job: Job) -> dict[str, Any]:
    return {"jobId": job.uid, "status": dialect_status("tensorone", job.state, job.substate)}


@router.post("/{endpoint_id}/run", summary="Run an endpoint asynchronously (TensorOne)")
def run(endpoint_id: str, body: RunIn, request: Request,
        who: Principal = Depends(caller)) -> JSON:
    """``{"jobId", "status"}`` at once; follow it at ``/v2/jobs/{jobId}/status``."""
    job = submit_run(services(request), who, endpoint_id, body)
    return JSON(accepted(job), headers={"Location": f"/v2/jobs/{job.uid}/status"})


@router.post("/{endpoint_id}/runsync", summary="Run an endpoint and wait for it (TensorOne)")
async def runsync(endpoint_id: str, body: RunIn, request: Request,
                  who: Principal = Depends(caller)) -> JSON:
    """The job's full status once it ended, or, after ``tensorone_runsync_max_s``, as it is
    then (still ``queued`` or ``running``: poll its status)."""
    svc = services(request)
    job = await asyncio.to_thread(submit_run, svc, who, endpoint_id, body)
    deadline = time.monotonic() + svc.config.tensorone_runsync_max_s
    while not job.is_terminal and (left := deadline - time.monotonic()) > 0:
        fresh = await svc.jobs.wait_changed(job, min(left, POLL_S))
        if fresh is None:
            break
        job = fresh
    status = await asyncio.to_thread(status_of, svc, job, view(request, include_set(None)))
    return JSON(status, headers={"Location": f"/v2/jobs/{job.uid}/status"})
