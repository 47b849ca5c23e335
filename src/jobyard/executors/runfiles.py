"""The files a supervisor writes into its job's run directory.

``supervisor.json``, ``stop.json``, ``exit.json`` and ``progress.json`` are small JSON records,
written atomically (readers see the old file or the whole new one); ``log`` holds the job's
output as ``<ts>\\t<o|e|x>\\t<text>`` lines, written by :class:`LogWriter`. A line rewritten
with ``\\r`` (progress bars) is logged as its final state, and the latest tqdm bar is kept in
``progress.json`` by :class:`ProgressFile`. Stdlib only, like the rest of the launcher's imports
(see :mod:`jobyard.executors.launcher`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from typing import Any

from jobyard.telemetry import tqdm

MAX_LINE = 65536  # longer lines are split
PROGRESS_INTERVAL_S = 0.2  # progress.json is rewritten at most this often


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
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many writes that takes. An OSError says in
    ``written`` (an attribute added to it) how much was written before it."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        exc.written = len(data) - len(view)  # type: ignore[attr-defined]
        raise


class LogWriter:
    """Writes output as ``<ts>\\t<stream>\\t<text>`` lines; drops output past ``cap`` bytes.

    A write that fails (a full disk) never stops the job: its bytes are counted as lost and
    writing resumes with the next output once it succeeds again, after a note of the gap
    (``[jobyard: N bytes lost: disk full]``).
    """

    def __init__(self, path: str, cap: int) -> None:
        self._path = path
        self._fd: int | None = None  # created on the first output: file creation is not cheap
        self._cap = cap
        self._written = 0
        self._full = False
        self._lost = 0  # bytes of output that could not be written since the last success
        self._lost_why = ""
        self._torn = False  # a failed write left a line without its end
        self._partial = {"o": b"", "e": b""}  # the unfinished line, since its last "\r"
        self._shown = {"o": b"", "e": b""}  # its last non-empty "\r"-ended segment
        self._cr_line = {"o": b"", "e": b""}  # the last rewritten line that was finished
        self._rewritten = {"o": False, "e": False}  # the unfinished line has seen a "\r"
        self.bars_changed = False  # output with "\r" came since :meth:`bar_texts` was read

    def feed(self, stream: str, data: bytes) -> None:
        *lines, rest = (self._partial[stream] + data).split(b"\n")
        if b"\r" in data:  # a line rewritten in place: keep what a terminal would show
            lines = [self._settle(stream, line, i == 0) for i, line in enumerate(lines)]
            *segments, rest = rest.split(b"\r")
            for segment in reversed(segments):
                if segment:
                    self._shown[stream] = segment
                    break
            if lines:
                self._cr_line[stream] = lines[-1]
            self._rewritten[stream] = bool(segments) or (not lines and self._rewritten[stream])
            self.bars_changed = True
        elif lines and self._rewritten[stream]:  # the line rewritten so far ends here
            lines[0] = lines[0] or self._shown[stream]
            self._cr_line[stream], self._shown[stream] = lines[0], b""
            self._rewritten[stream], self.bars_changed = False, True
        while len(rest) > MAX_LINE:
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial[stream] = rest
        if lines and not self._full:
            self._write(stream, lines)

    def bar_texts(self, stream: str) -> list[bytes]:
        """Where the latest progress bar of ``stream`` may be, most recent first."""
        self.bars_changed = False
        texts = (self._partial[stream], self._shown[stream], self._cr_line[stream])
        return [t for t in texts if t]

    def eof(self, stream: str) -> None:
        """Write what is left of ``stream``'s last, unterminated line."""
        last = self._partial[stream] or self._shown[stream]
        if last and not self._full:
            self._write(stream, [last])
        self._partial[stream] = self._shown[stream] = b""
        self._rewritten[stream] = False

    def _settle(self, stream: str, line: bytes, first: bool) -> bytes:
        """The final state of a finished line that may have been rewritten with "\\r"."""
        for segment in reversed(line.split(b"\r")):
            if segment:
                break
        else:
            segment = self._shown[stream] if first else b""
        if first:
            self._shown[stream] = b""
        return segment

    def close(self) -> None:
        for stream in self._partial:
            self.eof(stream)
        if self._lost:
            self._emit(b"")  # say what was lost, if the disk lets us now
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
        self._emit(chunk)

    def _emit(self, chunk: bytes) -> None:
        """Append ``chunk`` (after the note of a gap, if output was lost before it)."""
        head = b""
        if self._lost:
            head = (b"\n" if self._torn else b"") + (
                f"{time.time():.6f}\tx\t[jobyard: {self._lost} bytes lost: "
                f"{self._lost_why}]\n").encode()
        data = head + chunk
        try:
            if self._fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                self._fd = os.open(self._path, flags, 0o644)
            write_all(self._fd, data)
        except OSError as exc:  # a full disk: keep the job running, count what is lost
            written = getattr(exc, "written", 0)
            self._written += written
            self._torn = written > 0 and not data[:written].endswith(b"\n")
            self._lost += max(0, len(chunk) - max(0, written - len(head)))
            self._lost_why = ("disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                              else os.strerror(exc.errno or errno.EIO).lower())
            return
        self._written += len(data)
        self._lost, self._torn = 0, False


class ProgressFile:
    """Keeps ``progress.json`` at the latest tqdm bar in the job's output (see
    :func:`jobyard.telemetry.tqdm.parse`), written at most every :data:`PROGRESS_INTERVAL_S`."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._last: dict[str, Any] | None = None
        self._seq = 0
        self.next_at = 0.0  # monotonic time before which nothing is written

    def update(self, log: LogWriter, now: float, final: bool = False) -> None:
        """Write the latest bar if output with one came and it is time (or ``final``)."""
        if not log.bars_changed or (now < self.next_at and not final):
            return
        for stream in ("e", "o"):
            for text in log.bar_texts(stream):
                bar = tqdm.parse(text.decode("utf-8", "replace")) if tqdm.could_be(text) else None
                if bar is not None:
                    self._publish(bar, now)
                    return

    def _publish(self, bar: dict[str, Any], now: float) -> None:
        if bar == self._last:
            return
        self._last, self._seq, self.next_at = bar, self._seq + 1, now + PROGRESS_INTERVAL_S
        with contextlib.suppress(OSError):  # a full disk must not stop the job
            write_json_atomic(self._path, {**bar, "seq": self._seq, "ts": time.time()})
