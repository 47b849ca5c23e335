"""Reads of files another replica holds, relayed there.

An attempt's log, outputs and run files stay on the replica that ran it, and a TensorPool
push's pieces go to the replica that holds its socket. A request for them on another replica
(a logs page or SSE follow, an output download, a status that shows a log tail, a piece of a
push) raises :class:`~jobyard.core.files.Elsewhere`; :func:`relay` then sends the same request
(method, path, query, credentials, body) to that replica and streams its answer back, so a
client never needs to know which replica it reached. A relayed request is marked: the replica
it reaches answers from what it holds, or 503, never relays again. A replica that cannot be
reached gives 503 (``SERVICE_UNAVAILABLE``), never an empty log claimed complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from jobyard.api.errors import error_response
from jobyard.core.files import Elsewhere
from jobyard.errors import BUSY_RETRY_AFTER_S, JobyardError, Unavailable

RELAYED = "x-jobyard-relayed"
CONNECT_TIMEOUT_S = 5.0
# Not passed on: hop-by-hop headers, and what the relaying server sets itself.
_DROP_REQUEST = {"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
                 "content-length"}
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "date",
                  "server"}


async def relay(request: Request, where: Elsewhere) -> Response:
    """``request`` answered by the replica ``where`` names; raises :class:`Unavailable` when
    it cannot be (not reachable, or already relayed once)."""
    if request.headers.get(RELAYED):
        raise Unavailable(f"{where} and this replica cannot relay the request there",
                          {"replica": where.url})
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST}
    headers[RELAYED] = "1"
    client = httpx.AsyncClient(base_url=where.url, timeout=httpx.Timeout(CONNECT_TIMEOUT_S,
                                                                         read=None))
    try:
        content = request.stream() if request.method not in ("GET", "HEAD") else None
        sent = client.build_request(request.method, request.url.path,
                                    params=str(request.query_params), headers=headers,
                                    content=content)
        answer = await client.send(sent, stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise Unavailable(f"{where}, which cannot be reached ({type(exc).__name__})",
                          {"replica": where.url, "retry_after": BUSY_RETRY_AFTER_S}) from None

    async def body() -> AsyncIterator[bytes]:
        async for chunk in answer.aiter_raw():
            yield chunk

    async def close() -> None:
        await answer.aclose()
        await client.aclose()

    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _DROP_RESPONSE}
    return StreamingResponse(body(), status_code=answer.status_code, headers=kept,
                             background=BackgroundTask(close))


async def relay_socket(ws: WebSocket, where: Elsewhere, first: dict[str, Any]) -> None:
    """An accepted WebSocket whose first frame (``first``, its credentials) was read here,
    answered by the replica ``where`` names: frames pass both ways until either side closes,
    with the other side's close code. Raises :class:`Unavailable` when it cannot connect."""
    if ws.headers.get(RELAYED):
        raise Unavailable(f"{where} and this replica cannot relay the request there",
                          {"replica": where.url})
    url = "ws" + where.url.removeprefix("http") + ws.url.path
    try:
        remote = await websockets.connect(url, additional_headers={RELAYED: "1"},
                                          open_timeout=CONNECT_TIMEOUT_S)
    except (OSError, websockets.WebSocketException) as exc:
        raise Unavailable(f"{where}, which cannot be reached ({type(exc).__name__})",
                          {"replica": where.url, "retry_after": BUSY_RETRY_AFTER_S}) from None
    async with remote:
        await remote.send(json.dumps(first))

        async def down() -> None:
            async for message in remote:
                await ws.send_text(message if isinstance(message, str) else message.decode())

        async def up() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    await remote.send(await ws.receive_text())

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        code = remote.close_code or 1000
        reason = remote.close_reason or ""
    with contextlib.suppress(Exception):
        await ws.close(code, reason=reason)


def install(app: FastAPI) -> None:
    """Relay what native routes find elsewhere (the dialects' routes relay in their own
    error handling, to answer a failure in their envelope)."""

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Elsewhere)
        try:
            return await relay(request, exc)
        except JobyardError as failed:
            return error_response(failed)

    app.add_exception_handler(Elsewhere, handle)
