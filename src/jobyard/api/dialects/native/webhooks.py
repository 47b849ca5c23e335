"""/v1/me/webhook (the caller's default webhook and signing secret) and a job's delivery log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from jobyard.api.auth import principal
from jobyard.api.deps import read, services
from jobyard.api.dialects.native.schemas import WebhookIn
from jobyard.api.responses import JSON
from jobyard.api.validation import StrictRoute, job_ref
from jobyard.core.inputs import SetWebhook
from jobyard.core.models import Principal
from jobyard.core.times import iso
from jobyard.core.webhooks import message_id

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=StrictRoute)


def _settings(value: dict[str, Any]) -> dict[str, Any]:
    return {"url": value.get("url"), "events": value.get("events"), "secret": value["secret"]}


@router.get("/me/webhook", summary="Your default webhook and signing secret")
def get_webhook(request: Request, who: Principal = Depends(principal)) -> JSON:
    return JSON(_settings(services(request).accounts.webhook(who)))


@router.put("/me/webhook", summary="Set your default webhook (jobs without their own use it)")
def put_webhook(body: WebhookIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    spec = body.to_dict()
    change = SetWebhook(spec["url"], tuple(spec["events"]))
    return JSON(_settings(services(request).accounts.set_webhook(who, change)))


@router.delete("/me/webhook", summary="Remove your default webhook (the secret stays)")
def delete_webhook(request: Request, who: Principal = Depends(principal)) -> JSON:
    return JSON(_settings(services(request).accounts.set_webhook(who, SetWebhook(None))))


@router.post("/me/webhook/rotate-secret", summary="Replace your webhook signing secret")
def rotate_secret(request: Request, who: Principal = Depends(principal)) -> JSON:
    return JSON(_settings(services(request).accounts.rotate_webhook_secret(who)))


@router.get("/jobs/{ref}/webhooks", summary="A job's webhook deliveries and their attempts")
async def deliveries(ref: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    job = await read(svc, svc.jobs.get, who, job_ref(ref))
    rows = await read(svc, svc.jobs.deliveries, job)
    return JSON({"items": [_delivery(r) for r in rows]})


def _delivery(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "message_id": message_id(r["id"]),
        "event_id": r["event_id"],
        "type": r["event_type"],
        "url": r["url"],
        "status": r["status"],
        "attempts": r["attempts"],
        "next_attempt_at": iso(r["next_attempt_at"]),
        "last_status": r["last_status"],
        "last_error": r["last_error"],
        "created_at": iso(r["created_at"]),
        "delivered_at": iso(r["delivered_at"]),
        "log": [{**entry, "ts": iso(entry.get("ts"))} for entry in r["log"] or []],
        "payload": r["payload"],
    }
