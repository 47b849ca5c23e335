"""``tp job push <job file> <cluster id>``: WebSocket ``/job/push``.

Frames: the key; then ``{"tp_config", "system", "cluster_id", "teardown_cluster"}``. The server
checks the job file and the cluster before anything is uploaded, brings the project over (see
``upload``), unpacks it into a workspace, queues the job, sends
``{"job_id": ..., "message": "Job ID: ..."}`` and closes with 1000 — only once the job is
committed. Any failure sends a ``message`` and closes with a 4xxx code; nothing is left behind.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from jobyard.api.deps import origin, services
from jobyard.api.dialects.tensorpool import upload
from jobyard.api.dialects.tensorpool.project import Project, job_script, parse_project
from jobyard.api.dialects.tensorpool.sockets import authenticate, fail, receive_object
from jobyard.core.inputs import SubmitJob
from jobyard.core.models import Job, Principal, Resources
from jobyard.errors import ValidationFailed

router = APIRouter(tags=["tensorpool"])
CONFIG_TIMEOUT_S = 30.0
# A step runs on the user's machine; a send step also moves one piece over their link.
STEP_TIMEOUT_S = 600.0


@router.websocket("/job/push")
async def push(ws: WebSocket) -> None:
    workspace = None
    up = None
    try:
        who = await authenticate(ws)
        frame = await receive_object(ws, CONFIG_TIMEOUT_S, "job configuration")
        project, cluster_id, system, teardown = _check_config(frame)
        svc = services(ws)
        await asyncio.to_thread(svc.clusters.check_job, who, cluster_id, Resources())
        await ws.send_json({"message": "Packing and uploading the current directory ..."})
        up = upload.UPLOADS.open(svc.files.uploads_dir(),
                                 svc.config.tensorpool_max_upload_bytes,
                                 svc.config.tensorpool_link_ttl_s)
        name = await _upload(ws, up, project, system)
        workspace = await asyncio.to_thread(svc.files.new_workspace)
        files = await svc.files.unpack(up.path, workspace / "project",
                                       svc.config.tensorpool_max_upload_bytes)
        job = await asyncio.to_thread(
            _submit, ws, who, project, cluster_id, teardown, name, workspace)
        workspace = None  # the job owns it now
        await ws.send_json({"message": f"Uploaded {files} files."})
        await ws.send_json({"job_id": job.uid, "message": f"Job ID: {job.uid}"})
        await ws.send_json({"message": f"Follow it with: tp job listen {job.uid}"})
        await ws.close(1000)
    except WebSocketDisconnect:
        pass
    except Exception as exc:
        await fail(ws, exc)
    finally:
        if up is not None:
            upload.UPLOADS.close(up)
        if workspace is not None:
            shutil.rmtree(workspace, ignore_errors=True)


def _check_config(frame: dict[str, Any]) -> tuple[Project, str, str, bool]:
    text, cluster_id = frame.get("tp_config"), frame.get("cluster_id")
    if not isinstance(text, str):
        raise ValidationFailed("the job configuration has no 'tp_config' text")
    if not isinstance(cluster_id, str) or not cluster_id:
        raise ValidationFailed("give the cluster to run on: tp job push <job file> <cluster id> "
                     "(see tp cluster list)")
    system = frame["system"] if isinstance(frame.get("system"), str) else "Linux"
    return parse_project(text), cluster_id, system, bool(frame.get("teardown_cluster"))


async def _step(ws: WebSocket, command: str) -> dict[str, Any]:
    """Have the CLI run ``command``; returns the JSON line it printed."""
    await ws.send_json({"command": command, "command_show_stdout": False})
    while True:
        reply = await receive_object(ws, STEP_TIMEOUT_S, "command result")
        if reply.get("type") == "command_result":
            break
    stdout = str(reply.get("command_stdout") or "")
    if reply.get("exit_code") != 0:
        err = (str(reply.get("command_stderr") or "") or stdout).strip()[-800:]
        raise ValidationFailed(f"the upload step failed on your machine (exit code "
                     f"{reply.get('exit_code')}): {err or 'no output'}")
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise ValidationFailed(
            f"the upload step printed something unexpected: {stdout[-300:]!r}") from exc
    if not isinstance(result, dict):
        raise ValidationFailed("the upload step printed something unexpected")
    if result.get("error"):
        raise ValidationFailed(str(result["error"]))
    return result


async def _upload(ws: WebSocket, up: upload.Upload, project: Project, system: str) -> str:
    """Bring the project over; returns the name of the user's directory."""
    svc = services(ws)
    cfg = svc.config
    started = await _step(ws, upload.command(system, "start", {
        "ignore": list(project.ignore), "max_bytes": cfg.tensorpool_max_upload_bytes}))
    path, name = str(started.get("path") or ""), str(started.get("name") or "project")
    # Names this replica: a piece that reaches another is relayed here.
    token = svc.signer.link(upload.LINK, (up.id, svc.files.here), cfg.tensorpool_link_ttl_s)
    url = origin(ws, "/job/push") + f"/job/upload/{token}"
    piece = upload.FIRST_PIECE
    while True:
        offset = up.received
        t0 = time.monotonic()
        result = await _step(ws, upload.command(system, "send", {
            "path": path, "url": url, "offset": offset, "max": piece,
            "wait": upload.PACK_WAIT_S}))
        sent = int(result.get("sent") or 0)
        if up.received != offset + sent:
            raise ValidationFailed(f"the upload lost data: the server has {up.received} bytes, "
                         f"expected {offset + sent}")
        piece = upload.next_piece(sent, time.monotonic() - t0, cfg.tensorpool_upload_chunk_s)
        if result.get("done"):
            if result.get("sha256") != up.sha.hexdigest():
                raise ValidationFailed(
                    "the uploaded project does not match what was packed; try again")
            await ws.send_json({"message": f"Uploaded {upload.megabytes(up.received)} "
                                           f"(packed) of {upload.megabytes(result.get('total'))}."})
            return name[:200]
        if sent:
            await ws.send_json({"message": f"Uploading: {upload.megabytes(up.received)} sent "
                                           f"of {upload.megabytes(result.get('total'))} ..."})


def _submit(ws: WebSocket, who: Principal, project: Project, cluster_id: str, teardown: bool,
            name: str, workspace: Path) -> Job:
    cmd = SubmitJob(
        command=job_script(project, workspace),
        name=name,
        workdir=str(workspace / "project"),
        workspace_replica=services(ws).files.here,
        cluster_id=cluster_id,
        outputs=project.outputs,
        teardown_cluster=teardown,
        dialect={"tensorpool": {"commands": list(project.commands)}},
    )
    job, _ = services(ws).jobs.submit(who, cmd)
    return job
