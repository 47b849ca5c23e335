"""TensorPool's job routes: info, cancel, list, delete, pull (+ its signed downloads), init.

States are the seed's (``pending``, ``running``, ``completed``, ``error``, ``failed``,
``canceling``, ``canceled``; see ``dialects/states.py``). Another org's job is 403, as the seed
says; an unknown one 404. Every ``message`` is what the CLI prints: tables come formatted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse

from jobyard.api.auth import principal
from jobyard.api.deps import origin, services
from jobyard.api.dialects.states import dialect_status
from jobyard.api.dialects.tensorpool.project import TEMPLATE
from jobyard.api.dialects.tensorpool.shapes import TensorPoolRoute, when
from jobyard.api.dialects.tensorpool.tables import key_value_table, tsv_table
from jobyard.api.responses import JSON
from jobyard.core.inputs import ListJobs
from jobyard.core.models import Job, Principal
from jobyard.core.services import Services
from jobyard.core.states import JobState
from jobyard.core.times import iso
from jobyard.errors import BadRequest, Conflict, Forbidden

router = APIRouter(tags=["tensorpool"], route_class=TensorPoolRoute)
FILE_LINK = "tp-file"
LIST_LIMIT = 200
JobId = Path(max_length=100, pattern=r"^[A-Za-z0-9_-]+$")


def visible_job(svc: Services, who: Principal, job_id: str) -> Job:
    """The job, 404 if unknown, 403 if it belongs to another org."""
    return svc.jobs.find(who, job_id)


def status(job: Job) -> str:
    return dialect_status("tensorpool", job.state, job.substate)


def summary(job: Job) -> str:
    """One line on how a job ended (the last frame of ``tp job listen``)."""
    text = f"Job {job.uid} {status(job)}"
    if job.exit_code is not None:
        text += f" (exit code {job.exit_code})"
    return text + (f": {job.message}" if job.message else "")


def job_info(svc: Services, job: Job) -> dict[str, Any]:
    tp = job.dialect.get("tensorpool") or {}
    cluster = svc.clusters.of_job(job)
    telemetry = job.telemetry
    info: dict[str, Any] = {
        "job_id": job.uid,
        "name": job.name,
        "status": status(job),
        "cluster_id": job.cluster_id,
        "instance_type": cluster.instance_type if cluster else job.instance_type,
        "exit_code": job.exit_code,
        "public_message": job.message,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "attempt": job.attempt,
        "commands": tp.get("commands"),
        "outputs": list(job.output_patterns),
        "teardown_cluster": job.teardown_cluster,
    }
    if job.substate:
        info["step"] = job.substate
    if telemetry.get("progress") is not None:
        info["progress"] = telemetry["progress"]
    return info


def info_table(job: Job, info: dict[str, Any]) -> str:
    rows = [("JOB ID", info["job_id"]), ("NAME", info["name"]), ("STATUS", info["status"]),
            ("STEP", info.get("step")), ("CLUSTER", info["cluster_id"]),
            ("INSTANCE TYPE", info["instance_type"]), ("EXIT CODE", info["exit_code"]),
            ("MESSAGE", info["public_message"]), ("CREATED", when(job.created_at)),
            ("STARTED", when(job.started_at)), ("FINISHED", when(job.finished_at))]
    if info.get("progress") is not None:
        rows.insert(4, ("PROGRESS", f"{float(info['progress']) * 100:.0f}%"))
    if info["commands"]:
        rows += [(f"COMMAND {i}", c) for i, c in enumerate(info["commands"], 1)]
    if info["outputs"]:
        rows.append(("OUTPUTS", ", ".join(info["outputs"])))
    return key_value_table(rows)


@router.get("/job/info/{job_id}", summary="Get job information (TensorPool)")
async def info(request: Request, job_id: str = JobId, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)

    def answer() -> dict[str, Any]:
        job = visible_job(svc, who, job_id)
        data = job_info(svc, job)
        return {"message": info_table(job, data), "job_info": data}

    return JSON(await asyncio.to_thread(answer))


@router.post("/job/cancel/{job_id}", summary="Cancel a job (TensorPool)")
def cancel(request: Request, job_id: str = JobId, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    job = visible_job(svc, who, job_id)
    if job.state is JobState.CANCELED:
        return JSON({"job_id": job.uid, "message": f"Job {job.uid} is already canceled",
                     "status": "canceled"})
    try:
        job, _ = svc.jobs.cancel(who, job.id)
    except Conflict as exc:
        now = svc.jobs.state_of(job.id) or job.state
        raise BadRequest(f"Job {job.uid} already ended "
                         f"({dialect_status('tensorpool', now)}); it cannot be canceled",
                         exc.details) from exc
    word = "canceled" if job.state is JobState.CANCELED else "canceling"
    text = (f"Job {job.uid} canceled" if word == "canceled"
            else f"Job {job.uid} cancellation initiated")
    return JSON({"job_id": job.uid, "message": text, "status": word}, status_code=202)


@router.get("/job/list", summary="List jobs (TensorPool)")
def list_jobs(request: Request, include_org: bool = False,
              who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    query = ListJobs(limit=LIST_LIMIT, user_id=None if include_org else who.user_id)
    jobs = svc.jobs.list(who, query, own_org=True)
    if not jobs:
        return JSON({"message": "No jobs found. Start one with: tp job push <job file> "
                                "<cluster id>", "jobs": []})
    rows = [(j.uid, j.name, status(j), j.cluster_id, j.exit_code, when(j.created_at))
            for j in jobs]
    table = tsv_table(("JOB ID", "NAME", "STATUS", "CLUSTER", "EXIT CODE", "CREATED"), rows)
    return JSON({"message": table, "jobs": [
        {"job_id": j.uid, "name": j.name, "status": status(j), "cluster_id": j.cluster_id,
         "exit_code": j.exit_code, "created_at": iso(j.created_at)} for j in jobs]})


@router.delete("/job/delete/{job_id}", summary="Delete a finished job (TensorPool)")
def delete(request: Request, job_id: str = JobId, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    job = visible_job(svc, who, job_id)
    try:
        svc.jobs.delete(who, job.id)
    except Conflict as exc:
        raise BadRequest(f"Job {job.uid} is {status(job)}; only a finished job can be "
                         "deleted (cancel it first)", exc.details) from exc
    return JSON({"job_id": job.uid, "message": f"Job {job.uid} deleted"})


@router.get("/job/pull/{job_id}", summary="Download links for a job's outputs (TensorPool)")
def pull(request: Request, job_id: str = JobId, who: Principal = Depends(principal),
         dry_run: bool = False, system: str | None = Query(None, max_length=20)) -> JSON:
    svc = services(request)
    job = visible_job(svc, who, job_id)
    files = svc.files.outputs(job, job.attempt)
    if not files:
        why = ("its outputs are collected when it ends" if not job.is_terminal else
               "declare files to keep in 'outputs' of the job file")
        return JSON({"download_map": {}, "message": f"No output files for job {job.uid}: {why}"})
    base = origin(request, f"/job/pull/{job_id}")
    ttl = svc.config.tensorpool_link_ttl_s
    links = {f["name"]: base + "/job/file/" + svc.signer.link(
        FILE_LINK, (job.uid, str(job.attempt), f["name"]), ttl) for f in files}
    partial = " (partial: the job did not complete)" if any(f["partial"] for f in files) else ""
    return JSON({"download_map": links,
                 "message": f"{len(links)} output file(s) of job {job.uid}{partial}"})


@router.get("/job/file/{token}", summary="A signed download link of `tp job pull`")
def download(request: Request, token: str) -> FileResponse:
    svc = services(request)
    parts = svc.signer.read_link(FILE_LINK, token)
    if parts is None or len(parts) != 3:
        raise Forbidden("this download link is not valid or has expired")
    uid, attempt, name = parts
    path = svc.files.linked_output(uid, int(attempt), name)
    return FileResponse(path, media_type="application/octet-stream")


@router.get("/job/init", summary="A job file template (TensorPool)")
def init(_: Principal = Depends(principal)) -> JSON:
    return JSON({"empty_tp_config": TEMPLATE})
