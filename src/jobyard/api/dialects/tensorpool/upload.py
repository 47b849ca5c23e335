"""How ``tp job push`` brings the user's project to the server.

The CLI has no upload of its own; it only runs the shell commands the server sends on the push
socket, one at a time, without answering pings while one runs (compat notes, trap 6). So the
server sends short commands running :mod:`.clientside`: one that starts packing the current
directory in the background, then ``send`` steps that each PUT the next piece of the archive to
``PUT /job/upload/{token}`` (a signed, expiring URL naming this upload) and return. A piece is
sized to take about ``tensorpool_upload_chunk_s``, judged from the last one, so a slow link
gets small pieces and a fast one large pieces; each step prints one progress line. The server
checks offsets, the size limit and the archive's SHA-256 before it unpacks anything.

Uploads live in the process that holds the push socket; a piece that reaches another replica
is relayed there (the signed URL names that replica). One that is not finished when its socket
closes is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request

from jobyard import ids
from jobyard.api.deps import services
from jobyard.api.dialects.tensorpool.shapes import TensorPoolRoute
from jobyard.api.responses import JSON
from jobyard.core.files import Elsewhere
from jobyard.errors import Conflict, Forbidden, NotFound, ValidationFailed

LINK = "tp-upload"
MIN_PIECE = 1 << 20
MAX_PIECE = 64 << 20
FIRST_PIECE = 4 << 20
# Longest a ``send`` step waits for the background packer before it sends what it has.
PACK_WAIT_S = 2.0
# Body limits above the server-wide one, by path prefix (see api.limits.BodySizeLimit).
BODY_LIMITS = (("/job/upload/", MAX_PIECE),)

_SOURCE = Path(__file__).with_name("clientside.py").read_bytes()
_PACKED = base64.b64encode(zlib.compress(_SOURCE, 9)).decode()


def command(system: str, step: str, params: dict[str, Any]) -> str:
    """A shell command (sh or cmd.exe alike) that runs one step of :mod:`.clientside`."""
    python = "python" if system.lower() == "windows" else "python3"
    arg = base64.b64encode(json.dumps(params).encode()).decode()
    boot = ("import base64,zlib;"
            f"_SRC=zlib.decompress(base64.b64decode('{_PACKED}')).decode();exec(_SRC)")
    return f'{python} -c "{boot}" {step} {arg}'


@dataclass
class Upload:
    id: str
    path: Path
    max_bytes: int
    received: int = 0
    sha: Any = field(default_factory=hashlib.sha256)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class Uploads:
    """The uploads in progress in this process."""

    def __init__(self) -> None:
        self._open: dict[str, Upload] = {}

    def open(self, folder: Path, max_bytes: int, stale_after_s: float) -> Upload:
        folder.mkdir(parents=True, exist_ok=True)
        self._sweep(folder, stale_after_s)
        uid = ids.random_token(20)
        up = Upload(uid, folder / f"{uid}.tar.gz", max_bytes)
        up.path.touch()
        self._open[uid] = up
        return up

    def _sweep(self, folder: Path, stale_after_s: float) -> None:
        """Delete what uploads cut short by a crash left behind (their links have expired)."""
        limit = time.time() - stale_after_s
        for path in folder.glob("*.tar.gz"):
            with contextlib.suppress(OSError):
                if path.stem.removesuffix(".tar") not in self._open and \
                        path.stat().st_mtime < limit:
                    path.unlink()

    def get(self, uid: str) -> Upload | None:
        return self._open.get(uid)

    def close(self, up: Upload) -> None:
        self._open.pop(up.id, None)
        up.discard()


UPLOADS = Uploads()
router = APIRouter(tags=["tensorpool"], route_class=TensorPoolRoute)


@router.put("/job/upload/{token}", summary="One piece of a pushed project (signed URL)")
async def put_piece(token: str, request: Request, offset: int = Query(ge=0)) -> JSON:
    svc = services(request)
    parts = svc.signer.read_link(LINK, token)
    if parts is None:
        raise Forbidden("this upload link is not valid or has expired")
    up = UPLOADS.get(parts[0])
    if up is None and len(parts) > 1 and parts[1] != svc.files.here:
        raise Elsewhere(parts[1], "this upload is")
    if up is None:
        raise NotFound("this upload has ended")
    async with up.lock:
        if offset != up.received:
            raise Conflict(f"expected offset {up.received}, got {offset}",
                           {"expected": up.received})
        body = await request.body()
        if up.received + len(body) > up.max_bytes:
            raise ValidationFailed(f"the project archive is larger than {up.max_bytes} bytes",
                                   {"loc": ["body"], "type": "value_error"})
        await asyncio.to_thread(_append, up.path, body)
        up.sha.update(body)
        up.received += len(body)
    return JSON({"received": up.received})


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def next_piece(last_size: int, seconds: float, target_s: float) -> int:
    """The next piece's size: what the last one's rate moves in ``target_s``, within bounds."""
    if last_size <= 0 or seconds <= 0:
        return FIRST_PIECE
    return int(min(MAX_PIECE, max(MIN_PIECE, last_size / seconds * target_s)))


def megabytes(n: int | None) -> str:
    return f"{(n or 0) / 1e6:.1f} MB"
