"""The files a shim writes into its job's run directory.

``supervisor.json``, ``stop.json`` and ``exit.json`` are small JSON records, written atomically
(readers see the old file or the whole new one); ``log`` holds the job's output as
``<ts>\\t<o|e|x>\\t<text>`` lines, written by :class:`LogWriter`. Stdlib only, like the rest of
the launcher's imports (see :mod:`jobyard.executors.shim`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

MAX_LINE = 65536  # longer lines are split


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` so readers see either the old file or the whole new one."""
    publish_json(open_tmp(path), path, data)


def open_tmp(path: str) -> tuple[int, str]:
    """Create the temporary file :func:`publish_json` turns into ``path``."""
    tmp = f"{path}.{os.getpid()}.tmp"
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644), tmp


def publish_json(tmp: tuple[int, str], path: str, data: dict[str, Any]) -> None:
    fd, tmp_path = tmp
    try:
        write_all(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp_path, path)


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many writes that takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LogWriter:
    """Writes output as ``<ts>\\t<stream>\\t<text>`` lines; drops output past ``cap`` bytes."""

    def __init__(self, path: str, cap: int) -> None:
        self._path = path
        self._fd: int | None = None  # created on the first output: file creation is not cheap
        self._cap = cap
        self._written = 0
        self._full = False
        self._partial = {"o": b"", "e": b""}

    def feed(self, stream: str, data: bytes) -> None:
        if self._full:
            return
        *lines, rest = (self._partial[stream] + data).split(b"\n")
        while len(rest) > MAX_LINE:
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial[stream] = rest
        if lines:
            self._write(stream, lines)

    def eof(self, stream: str) -> None:
        """Write what is left of ``stream``'s last, unterminated line."""
        if self._partial[stream] and not self._full:
            self._write(stream, [self._partial[stream]])
        self._partial[stream] = b""

    def close(self) -> None:
        for stream in self._partial:
            self.eof(stream)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)

    def _write(self, stream: str, lines: list[bytes]) -> None:
        prefix = f"{time.time():.6f}\t{stream}\t"
        texts = []
        for line in lines:
            for i in range(0, max(len(line), 1), MAX_LINE):
                texts.append(f"{prefix}{line[i : i + MAX_LINE].decode('utf-8', 'replace')}\n")
        chunk = "".join(texts).encode()
        if self._written + len(chunk) > self._cap:
            room, keep = self._cap - self._written, []
            for text in texts:
                encoded = text.encode()
                if len(encoded) > room:
                    break
                keep.append(encoded)
                room -= len(encoded)
            note = f"{time.time():.6f}\tx\t[jobyard: log truncated at {self._cap} bytes]\n"
            chunk = b"".join(keep) + note.encode()
            self._full = True
        try:
            if self._fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                self._fd = os.open(self._path, flags, 0o644)
            write_all(self._fd, chunk)
        except OSError:  # disk full or similar: keep the job running, stop logging
            self._full = True
        self._written += len(chunk)
