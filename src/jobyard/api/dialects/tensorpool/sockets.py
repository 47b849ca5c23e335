"""What TensorPool's WebSocket endpoints share: in-band auth, JSON frames, failing clearly.

The first client frame is ``{"TENSORPOOL_KEY": "<key>"}`` (the upgrade carries no header).
Every server frame is a JSON object. A failure sends ``{"message": ...}`` and then closes with
``4000 + (HTTP status - 400)`` (4001 bad key, 4003, 4004, 4009, 4022 ...), never 1000, which
the CLI reads as success; a fault to try again after (a busy database, a full disk) closes with
1013 (try again later), an unexpected error with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketState

from jobyard.api.deps import read, services
from jobyard.api.errors import http_status, unexpected
from jobyard.api.validation import InvalidInput, loads
from jobyard.core.models import Principal
from jobyard.errors import JobyardError, ValidationFailed

FIRST_FRAME_TIMEOUT_S = 30.0


async def receive_object(ws: WebSocket, timeout: float, what: str) -> dict[str, Any]:
    """The next frame as a JSON object; ValidationFailed if it is not one or does not come."""
    try:
        text = await asyncio.wait_for(ws.receive_text(), timeout)
    except TimeoutError as exc:
        raise ValidationFailed(f"no {what} received within {timeout:g} s") from exc
    try:
        data = loads(text, (what,))
    except InvalidInput as exc:
        if exc.kind != "json_invalid":  # JSON, but not as this server takes it
            raise ValidationFailed(f"the {what} is invalid: {exc.reason}",
                                   {"loc": list(exc.loc), "type": exc.kind}) from None
        data = None
    if not isinstance(data, dict):
        raise ValidationFailed(f"the {what} must be a JSON object")
    return data


async def authenticate(ws: WebSocket) -> Principal:
    """Accept the socket and read the key frame; raises Unauthorized (close 4001)."""
    await ws.accept()
    frame = await receive_object(ws, FIRST_FRAME_TIMEOUT_S, "key frame")
    ws.state.key_frame = frame  # for a relay to the replica that holds what it asks for
    key = frame.get("TENSORPOOL_KEY")
    svc = services(ws)
    return await read(svc, svc.accounts.authenticate, key if isinstance(key, str) else None)


def close_code(exc: JobyardError) -> int:
    status = http_status(exc)
    if 400 <= status < 500:
        return 4000 + status - 400
    return 1013 if exc.retry_after is not None else 1011


async def fail(ws: WebSocket, exc: Exception) -> None:
    """Tell the client why, then close with a non-1000 code (if it is still there)."""
    error = exc if isinstance(exc, JobyardError) else unexpected(exc, "TensorPool socket")
    if error is not None:
        message, code = error.message, close_code(error)
    else:
        message, code = "internal error on the server; see its log", 1011
    if ws.client_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.send_json({"message": message})
            await ws.close(code, reason=message.encode()[:120].decode(errors="ignore"))
