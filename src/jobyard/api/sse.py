"""SSE responses: sse-starlette's, minus a per-message cancel scope we never use.

``EventSourceResponse`` wraps every send in ``anyio.move_on_after(send_timeout)`` even when no
timeout is set; with a thousand streams on one job that scope is a large share of the cost of
each update. Without a timeout we send directly (a dead client is still noticed by the
disconnect listener and the heartbeat).
"""

from __future__ import annotations

from sse_starlette import EventSourceResponse as _Base
from starlette.types import Message, Send


class EventSourceResponse(_Base):
    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        if self.send_timeout is None:
            await send(message)
        else:
            await super()._send_with_timeout(send, message)
