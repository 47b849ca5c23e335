"""A real webhook receiver for tests: stdlib ``http.server`` on a loopback port, in a thread."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jobyard.testing import free_port, wait_until


@dataclass
class Message:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """Records every POST; answers with ``statuses`` in turn, then 204."""

    def __init__(self, port: int | None = None, statuses: list[int] | None = None):
        self.port = port or free_port()
        self.statuses = list(statuses or [])
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.messages.append(Message(self.path, headers, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: connections are refused until :meth:`start` (same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def at(self, path: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.path == path]

    def wait(self, path: str, count: int = 1, timeout: float = 20) -> list[Message]:
        """The messages to ``path`` once there are at least ``count``."""
        return wait_until(lambda: len(self.at(path)) >= count and self.at(path), timeout=timeout)
