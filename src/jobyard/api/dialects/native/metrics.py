"""/v1/jobs/{ref}/metrics (resource series, peaks, cold start, cost, efficiency) and budgets."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from jobyard.api.auth import admin, principal
from jobyard.api.deps import read, services
from jobyard.api.responses import JSON
from jobyard.api.validation import MAX_ROW_ID, StrictRoute, job_ref
from jobyard.core.cost import Prices, cost_view
from jobyard.core.inputs import SetBudget
from jobyard.core.models import Job, Principal
from jobyard.core.times import iso

router = APIRouter(prefix="/v1", tags=["metrics"], route_class=StrictRoute)


class BudgetIn(BaseModel):
    budget: float | None = Field(..., ge=0, description="spending limit; null removes it")


@router.get("/jobs/{ref}/metrics", summary="A job's resource metrics, cold start and cost")
async def job_metrics(
    ref: str,
    request: Request,
    attempt: int | None = Query(None, ge=1, le=MAX_ROW_ID,
                                description="default: the current attempt"),
    who: Principal = Depends(principal),
) -> JSON:
    svc = services(request)
    job = await read(svc, svc.jobs.get, who, job_ref(ref))
    number = attempt or job.attempt
    series = await read(svc, svc.telemetry.series, job, number)
    return JSON(metrics_view(job, number, series, time.time(), svc.prices))


def metrics_view(job: Job, attempt: int, series: list[tuple[float, dict[str, Any]]],
                 now: float, prices: Prices) -> dict[str, Any]:
    telemetry = job.telemetry or {}
    res = telemetry.get("resources") or {}
    mine = res.get("attempt") == attempt  # latest/averages/peaks are of the latest attempt
    interval = res.get("interval_s")
    view: dict[str, Any] = {
        "job_id": job.uid,
        "number": job.id,
        "state": str(job.state),
        "attempt": attempt,
        "interval_s": interval,
        "step_s": interval * res.get("stride", 1) if interval else None,
        "samples": res.get("samples", 0) if mine else None,
        "series": [_point(ts, data) for ts, data in series],
        "latest": _point(res["latest"]["ts"], res["latest"]) if mine and res.get("latest")
        else None,
        "averages": _summary(res, "avg") if mine else None,
        "peaks": _summary(res, "peak") if mine else None,
        "cold_start": telemetry.get("cold_start") if attempt == job.attempt else None,
        "cost": cost_view(job, now, prices),
        "efficiency": telemetry.get("efficiency"),
    }
    return view


def _point(ts: float, data: dict[str, Any]) -> dict[str, Any]:
    return {"ts": iso(ts), **{k: v for k, v in data.items() if k not in ("n", "ts")}}


def _summary(res: dict[str, Any], kind: str) -> dict[str, Any]:
    """Averages or peaks: CPU %, RSS and, where NVML measured them, per GPU."""
    out: dict[str, Any] = {
        "cpu_percent": (res.get("cpu") or {}).get(f"{kind}_percent"),
        "rss_bytes": (res.get("memory") or {}).get(f"{kind}_rss_bytes"),
    }
    if "gpus" in res:
        out["gpus"] = [
            {"index": g["index"],
             **{k: g[f"{kind}_{k}"] for k in ("utilization", "memory_used_bytes")
                if f"{kind}_{k}" in g}}
            for g in res["gpus"]
        ]
    return out


# budgets ---------------------------------------------------------------------------------------
@router.put("/users/{username}/budget", summary="Set or clear a user's budget (admin)")
def put_user_budget(username: str, body: BudgetIn, request: Request,
                    who: Principal = Depends(admin)) -> JSON:
    return JSON(services(request).accounts.set_budget(who, SetBudget("user", username,
                                                                     body.budget)))


@router.get("/users/{username}/budget", summary="A user's budget and spend")
def get_user_budget(username: str, request: Request,
                    who: Principal = Depends(principal)) -> JSON:
    return JSON(services(request).accounts.budget(who, "user", username))


@router.put("/orgs/{name}/budget", summary="Set or clear an org's budget (admin)")
def put_org_budget(name: str, body: BudgetIn, request: Request,
                   who: Principal = Depends(admin)) -> JSON:
    return JSON(services(request).accounts.set_budget(who, SetBudget("org", name, body.budget)))


@router.get("/orgs/{name}/budget", summary="An org's budget and spend")
def get_org_budget(name: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    return JSON(services(request).accounts.budget(who, "org", name))
