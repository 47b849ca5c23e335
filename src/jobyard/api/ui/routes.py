"""The dashboard's pages: login, the jobs list, a job.

Every page calls the core services as the APIs do, as the session's owner: a job of another
org is "not found" here too. Forms that change something carry the session's CSRF token.
Live parts are htmx fragments polled by the page (``/ui/jobs/rows``, ``/ui/jobs/{id}/live``),
rendered by the same templates as the first answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sse_starlette import ServerSentEvent
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from jobyard import __version__
from jobyard.api.deps import services
from jobyard.api.responses import JSON, dumps
from jobyard.api.sse import EventSourceResponse
from jobyard.api.ui import session
from jobyard.api.validation import StrictRoute, job_ref
from jobyard.core.cost import cost_view
from jobyard.core.files import Elsewhere, LogLine
from jobyard.core.inputs import CreateKey, ListJobs
from jobyard.core.models import Job, Principal
from jobyard.core.progress import view as progress_view
from jobyard.core.services import Services
from jobyard.core.states import JobState
from jobyard.errors import (
    BadRequest,
    Conflict,
    JobyardError,
    NotFound,
    Unauthorized,
    ValidationFailed,
)

HERE = Path(__file__).parent
PAGE = 50  # jobs per page of the list
LOG_LINES = 200  # of a job's log on its page at first (then followed live)
EARLIER = 500  # lines per "load earlier"
STATES = [str(s) for s in JobState]
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", route_class=StrictRoute, include_in_schema=False)
# The dashboard loads only from this server.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; frame-ancestors 'none'; form-action 'self'")


def install(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.include_router(router)

    async def to_login(_request: Request, _exc: Exception) -> Response:
        return _to_login()

    async def refused(_request: Request, _exc: Exception) -> Response:
        return Response("refused: no session or a stale form", status_code=403)

    async def hidden(_request: Request, _exc: Exception) -> Response:
        return Response(status_code=404)

    app.add_exception_handler(session.NoSession, to_login)
    app.add_exception_handler(Hidden, hidden)
    app.add_exception_handler(session.CsrfRefused, refused)


def _page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, {"version": __version__, **context},
                                          status_code=status)
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


async def _run(svc: Services, fn: Any, *args: Any) -> Any:
    return fn(*args) if svc.reads_inline else await asyncio.to_thread(fn, *args)


async def _form(request: Request) -> dict[str, str]:
    """A posted form's fields (the first value of each); 400 for more fields than any of the
    dashboard's forms has."""
    try:
        fields = parse_qs((await request.body()).decode(errors="replace"), max_num_fields=20)
    except ValueError:
        raise BadRequest("too many form fields") from None
    return {k: v[0] for k, v in fields.items()}


def _who(request: Request) -> tuple[Services, Principal, str]:
    """The services, the session's owner and its CSRF token; without a session the visitor
    is sent to the login page (``install``'s handler of :class:`~.session.NoSession`)."""
    svc = services(request)
    who, csrf = session.current(svc, request)
    return svc, who, csrf


async def _posted(request: Request) -> tuple[Services, Principal, dict[str, str]]:
    """A form that changes something: the session's services, owner and the form, whose
    token must be this session's (else 403: :class:`~.session.CsrfRefused`)."""
    svc = services(request)
    try:
        who, _ = session.current(svc, request)
    except session.NoSession:
        raise session.CsrfRefused() from None
    form = await _form(request)
    session.check_csrf(svc, request, form.get("csrf"))
    return svc, who, form


class Hidden(Exception):
    """No session, or no such job the session may see: a fragment answers 404 alike."""


async def _visible(request: Request, ref: str) -> tuple[Services, Job, str]:
    """The services, the job and the CSRF token for a fragment of a job the session may see
    (else :class:`Hidden`: 404)."""
    try:
        svc, who, csrf = _who(request)
        return svc, await _run(svc, svc.jobs.get, who, job_ref(ref)), csrf
    except (session.NoSession, NotFound):
        raise Hidden() from None


def _to_login() -> Response:
    return RedirectResponse("/ui/login", status_code=303)


# login -----------------------------------------------------------------------------------------
@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    svc = services(request)
    form = await _form(request)
    try:
        session.check_login(svc, request, form.get("csrf"))
    except session.CsrfRefused:
        return _login_page(request, "The form expired; try again.", 403)
    response = RedirectResponse("/ui", status_code=303)
    try:
        await _run(svc, session.start, svc, response, form.get("api_key", "").strip(),
                   request.url.scheme == "https")
    except Unauthorized:
        return _login_page(request, "Unknown or revoked API key.", 401)
    return response


def _login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    token, nonce = session.login_nonce(services(request), request)
    response = _page(request, "login.html", status, token=token, error=error)
    session.set_login_nonce(response, nonce)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _posted(request)
    response = _to_login()
    session.end(response)
    return response


# jobs ------------------------------------------------------------------------------------------
def _query(request: Request) -> tuple[ListJobs, dict[str, str]]:
    """The list's filters from the URL (what is not understood is dropped, not an error)."""
    q = request.query_params
    kept = {k: q[k] for k in ("state", "tag", "name", "gpus", "from", "to") if q.get(k)}
    before, gpus = q.get("before"), kept.get("gpus", "")
    state = kept.get("state")
    return ListJobs(state=state if state in STATES else None, tag=kept.get("tag"),
                    name=kept.get("name"), limit=PAGE,
                    before_id=int(before) if before and before.isdigit() else None,
                    gpus=int(gpus) if gpus.isdigit() and len(gpus) < 6 else None,
                    created_after=_day(kept.get("from")),
                    created_before=_day(kept.get("to"), 86400.0)), kept


def _day(text: str | None, plus: float = 0.0) -> float | None:
    """A ``YYYY-MM-DD`` day (UTC) as epoch seconds (``plus``: to its end)."""
    try:
        day = datetime.strptime(text or "", "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day.timestamp() + plus


@router.get("")
async def jobs(request: Request) -> Response:
    svc, who, csrf = _who(request)
    query, kept = _query(request)
    found = await _run(svc, svc.jobs.list, who, query, True)
    more = urlencode({**kept, "before": found[-1].id}) if len(found) == PAGE else None
    return _page(request, "jobs.html", who=who, csrf=csrf, jobs=[_row(svc, j) for j in found],
                 filters=kept, states=STATES, more=more, live=query.before_id is None,
                 filter_query=urlencode(kept),
                 rows_url="/ui/jobs/rows?" + urlencode(kept))


@router.get("/jobs/rows")
async def job_rows(request: Request) -> Response:
    """The list's first page of rows (polled by the list page)."""
    try:
        svc, who, _ = _who(request)
    except session.NoSession:
        return Response(status_code=401)
    query, _ = _query(request)
    found = await _run(svc, svc.jobs.list, who, query, True)
    return _page(request, "rows.html", jobs=[_row(svc, j) for j in found])


@router.get("/jobs/{ref}")
async def job_page(request: Request, ref: str) -> Response:
    svc, who, csrf = _who(request)
    try:
        job = await _run(svc, svc.jobs.get, who, job_ref(ref))
    except NotFound:
        return _page(request, "missing.html", 404, who=who, csrf=csrf, ref=ref)
    return _page(request, "job.html", who=who, csrf=csrf, **await _job_view(svc, job),
                 **await _log_tail(svc, job), **await _details(svc, job),
                 base=str(request.base_url).rstrip("/"))


@router.get("/jobs/{ref}/live")
async def job_live(request: Request, ref: str) -> Response:
    """The job page's changing part (polled while the job is not over)."""
    svc, job, csrf = await _visible(request, ref)
    return _page(request, "live.html", csrf=csrf, **await _job_view(svc, job))


@router.get("/jobs/{ref}/log/stream")
async def log_stream(request: Request, ref: str, offset: int = 0) -> Response:
    """The log from line ``offset`` on as it is written (SSE, a batch of lines per event:
    ``[{"n", "s", "t"}]``), then ``end`` once the job ended and every line was sent."""
    svc, job, _ = await _visible(request, ref)
    svc.files.locate(job)  # before the answer starts: it may be relayed

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for batch in svc.files.follow_log(job, None, max(0, offset)):
            if batch.lines:
                yield ServerSentEvent(dumps([_line(x) for x in batch.lines]), event="lines")
            if batch.ended:
                yield ServerSentEvent(dumps({"state": str(batch.end.state) if batch.end
                                             else None}), event="end")

    return EventSourceResponse(events(), ping=svc.config.sse_heartbeat_s)


@router.get("/jobs/{ref}/log/earlier")
async def log_earlier(request: Request, ref: str, before: int) -> Response:
    """Up to :data:`EARLIER` lines before line ``before`` (the page's "load earlier")."""
    svc, job, _ = await _visible(request, ref)
    start = max(0, before - EARLIER)
    page = await _run(svc, svc.files.log, job, None, start, max(0, before - start))
    return JSON({"lines": [_line(x) for x in page.lines]})


@router.get("/jobs/{ref}/log.txt")
async def log_download(request: Request, ref: str) -> Response:
    """The whole log as it is now, as a text file."""
    svc, job, _ = await _visible(request, ref)
    svc.files.locate(job)

    async def text() -> AsyncIterator[bytes]:
        async for lines in svc.files.log_snapshot(job):
            yield "".join(f"{x.text}\n" for x in lines).encode()

    return StreamingResponse(text(), media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{job.uid}.{job.attempt}.log"'})


# bulk cancel -------------------------------------------------------------------------------------
BULK_MAX = 10_000  # jobs one bulk cancel reaches at most


async def _matching_active(svc: Services, who: Principal, query: ListJobs) -> list[Job]:
    """The jobs the list's filters match that have not ended (what a bulk cancel reaches)."""
    found: list[Job] = []
    before = None
    while len(found) < BULK_MAX:
        page = await _run(svc, svc.jobs.list, who, replace(query, limit=500, before_id=before),
                          True)
        found += [j for j in page if not j.is_terminal]
        if len(page) < 500:
            break
        before = page[-1].id
    return found[:BULK_MAX]


@router.get("/cancel")
async def cancel_preview(request: Request) -> Response:
    """How many jobs a cancel by the list's filters would reach, and the form to do it."""
    svc, who, csrf = _who(request)
    query, kept = _query(request)
    found = await _matching_active(svc, who, query)
    return _page(request, "cancel.html", who=who, csrf=csrf, count=len(found), filters=kept,
                 action="/ui/cancel?" + urlencode(kept), back="/ui?" + urlencode(kept))


@router.post("/cancel")
async def cancel_matching(request: Request) -> Response:
    svc, who, _ = await _posted(request)
    query, kept = _query(request)
    for job in await _matching_active(svc, who, query):
        try:
            await _run(svc, svc.jobs.cancel, who, job.uid)
        except (Conflict, NotFound):  # it ended meanwhile
            continue
    return RedirectResponse("/ui?" + urlencode(kept), status_code=303)


# the org's other things ------------------------------------------------------------------------
@router.get("/clusters")
async def clusters(request: Request) -> Response:
    """The org's clusters: which instance holds which GPUs, and the jobs on them."""
    svc, who, csrf = _who(request)
    found = await _run(svc, svc.clusters.list, who)
    running = await _run(svc, svc.jobs.list, who, ListJobs(state=str(JobState.RUNNING),
                                                           limit=500), True)
    on = {(j.cluster_id, (j.assigned or {}).get("cluster", {}).get("instance")): j.uid
          for j in running if j.cluster_id}
    return _page(request, "clusters.html", who=who, csrf=csrf, clusters=[{
        "uid": c.uid, "name": c.name, "type": c.instance_type, "state": str(c.state),
        "count": c.count, "created": _when(c.created_at), "volumes": c.attachments,
        "instances": [{"n": i.get("n"), "gpus": i.get("gpus") or [],
                       "job": on.get((c.uid, i.get("n")))} for i in c.instances],
    } for c in found])


@router.get("/volumes")
async def volumes(request: Request) -> Response:
    svc, who, csrf = _who(request)
    found = await _run(svc, svc.volumes.list_volumes, who)
    return _page(request, "volumes.html", who=who, csrf=csrf, volumes=[{
        "uid": v.uid, "name": v.name, "state": str(v.state), "size_gb": v.size_gb,
        "used": v.used_bytes, "clusters": v.attachments, "created": _when(v.created_at),
    } for v in found])


@router.get("/operations")
async def operations(request: Request) -> Response:
    """The org's async requests (clusters and volumes made, changed, released), newest first."""
    svc, who, csrf = _who(request)
    found = await _run(svc, svc.operations.list, who, 100)
    return _page(request, "operations.html", who=who, csrf=csrf, operations=[{
        "uid": o.uid, "type": str(o.type), "status": str(o.status), "object": o.object_id,
        "message": o.external_message, "attempts": o.attempts, "created": _when(o.created_at),
        "finished": _when(o.finished_at),
    } for o in found])


@router.get("/webhooks")
async def webhooks(request: Request) -> Response:
    """The session user's default webhook and deliveries (any job's), newest first."""
    svc, who, csrf = _who(request)
    hook = await _run(svc, svc.accounts.webhook, who)
    found = await _run(svc, svc.accounts.deliveries, who, 100)
    return _page(request, "webhooks.html", who=who, csrf=csrf, hook=hook,
                 deliveries=[_delivery(d) for d in found])


def _delivery(d: dict[str, Any]) -> dict[str, Any]:
    return {"event": d["event_type"], "status": d["status"], "url": d["url"],
            "attempts": d["attempts"], "job": d.get("job_id"), "http": d.get("last_status"),
            "error": d.get("last_error"), "created": _when(d.get("created_at"))}


@router.get("/keys")
async def keys(request: Request) -> Response:
    svc, who, csrf = _who(request)
    return await _keys_page(request, svc, who, csrf)


async def _keys_page(request: Request, svc: Services, who: Principal, csrf: str,
                     new: dict[str, Any] | None = None) -> Response:
    found = await _run(svc, svc.accounts.list_keys, who)
    return _page(request, "keys.html", who=who, csrf=csrf, new=new, keys=[{
        **k, "created": _when(k.get("created_at")), "revoked": _when(k.get("revoked_at")),
    } for k in found])


@router.post("/keys")
async def create_key(request: Request) -> Response:
    """A new key of the session's user; its secret is shown on this answer only."""
    svc, who, form = await _posted(request)
    csrf = session.current(svc, request)[1]
    name = (form.get("name") or "").strip()[:100] or "dashboard key"
    new = await _run(svc, svc.accounts.create_key, who, CreateKey(name=name))
    return await _keys_page(request, svc, who, csrf, new)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: int) -> Response:
    svc, who, _ = await _posted(request)
    try:
        await _run(svc, svc.accounts.revoke_key, who, key_id)
    except NotFound:
        return Response(status_code=404)
    return RedirectResponse("/ui/keys", status_code=303)


def _line(line: LogLine) -> dict[str, Any]:
    return {"n": line.n, "s": line.stream, "t": line.text}


@router.post("/jobs/{ref}/{action}")
async def change(request: Request, ref: str, action: str) -> Response:
    """Cancel, pause or resume a job (the page shows how it went: its receipt, its state)."""
    if action not in ("cancel", "pause", "resume"):
        return Response(status_code=404)
    svc, who, _ = await _posted(request)
    try:
        job, _ = await _run(svc, getattr(svc.jobs, action), who, job_ref(ref))
    except NotFound:
        return Response(status_code=404)
    except Conflict:
        job = await _run(svc, svc.jobs.get, who, job_ref(ref))  # it changed meanwhile: show how
    return RedirectResponse(f"/ui/jobs/{job.uid}", status_code=303)


async def _job_view(svc: Services, job: Job) -> dict[str, Any]:
    return {"job": _row(svc, job)}


async def _details(svc: Services, job: Job) -> dict[str, Any]:
    """What the job page shows below its live part: why it waits, its timeline, outputs,
    efficiency report and webhook deliveries."""
    waiting = await _run(svc, svc.jobs.waiting, job)
    events = await _run(svc, svc.jobs.events, job, 200)
    outputs = await _run(svc, svc.files.outputs, job, None)
    deliveries = await _run(svc, svc.jobs.deliveries, job)
    return {
        "waiting": waiting and {**waiting, "estimated_start": _when(waiting.get(
            "estimated_start"))},
        "timeline": [{"when": _when(e.ts), "state": e.state, "by": e.data.get("by"),
                      "attempt": e.data.get("attempt"),
                      "message": (e.data.get("error") or {}).get("message")
                      if isinstance(e.data.get("error"), dict) else e.data.get("message")}
                     for e in events if e.kind == "state"],
        "outputs": [{"name": o["name"], "attempt": o["attempt"], "size": o.get("size"),
                     "partial": o.get("partial")} for o in outputs],
        "efficiency": (job.telemetry or {}).get("efficiency"),
        "deliveries": [_delivery(d) for d in deliveries],
    }


@router.get("/jobs/{ref}/series.json")
async def series(request: Request, ref: str) -> Response:
    """The current attempt's resource samples as the charts take them: columns of seconds,
    CPU %, RSS MB and each GPU's utilization %."""
    svc, job, _ = await _visible(request, ref)
    points = await _run(svc, svc.telemetry.series, job, job.attempt)
    gpus: dict[str, list[float | None]] = {}
    for i, (_, point) in enumerate(points):
        for g in point.get("gpus") or []:
            gpus.setdefault(str(g.get("index")), [None] * len(points))[i] = g.get("utilization")
    return JSON({
        "ts": [ts for ts, _ in points],
        "cpu": [p.get("cpu_percent") for _, p in points],
        "rss_mb": [None if p.get("rss_bytes") is None else p["rss_bytes"] / 1e6
                   for _, p in points],
        "gpus": gpus, "ended": job.is_terminal,
    })


@router.get("/jobs/{ref}/outputs/{name:path}")
async def output(request: Request, ref: str, name: str, attempt: int | None = None
                 ) -> Response:
    """One collected output file, to download."""
    svc, job, _ = await _visible(request, ref)
    try:
        path = await _run(svc, svc.files.output_path, job, name, attempt)
    except (NotFound, ValidationFailed):
        return Response(status_code=404)
    return FileResponse(path, filename=Path(name).name)


async def _log_tail(svc: Services, job: Job) -> dict[str, Any]:
    """The log's last lines for the page's first answer (then it follows the stream)."""
    try:
        page = await _run(svc, svc.files.log, job, None, 0, LOG_LINES, LOG_LINES)
    except Elsewhere:
        return {"log": [], "next": 0, "log_error": None}  # the stream is relayed there
    except JobyardError as exc:
        return {"log": [], "next": 0, "log_error": exc.message}
    return {"log": [_line(x) for x in page.lines], "next": page.next_offset, "log_error": None}


def _row(svc: Services, job: Job) -> dict[str, Any]:
    """What the templates show of a job (plain values, formatted here once)."""
    prog = progress_view(job.telemetry or {}, job.attempt)
    cost = cost_view(job, time.time(), svc.prices)
    return {
        "uid": job.uid, "number": job.id, "name": job.name, "state": str(job.state),
        "substate": job.substate, "terminal": job.is_terminal,
        "command": job.command if isinstance(job.command, str) else " ".join(job.command),
        "progress": prog["progress"], "step": prog["current_step"], "rate": _rate(prog),
        "eta": None if job.is_terminal else _when(prog["estimated_completion"]),
        "created": _when(job.created_at),
        "gpus": job.resources.gpus, "cpus": job.resources.cpus, "tags": job.tags,
        "exit_code": job.exit_code, "error": job.error, "message": job.message,
        "receipt": job.cancel_receipt, "attempt": job.attempt,
        "cost": cost["total"] if cost["total"] is not None else cost["accrued"],
        "currency": cost["currency"],
    }


def _rate(prog: dict[str, Any]) -> str | None:
    """What the job says of its speed: its throughput, else its items done of total."""
    throughput, items = prog.get("throughput") or {}, prog.get("items") or {}
    if throughput.get("value") is not None:
        return f"{throughput['value']:g} {throughput.get('unit') or '/s'}"
    if items.get("done") is not None:
        return f"{items['done']}/{items.get('total') if items.get('total') is not None else '?'}"
    return None


def _when(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
