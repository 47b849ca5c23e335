"""Where a job's files live in the data directory, and how its log file is read.

Log format (written by the executor's supervisor), one output line per file line::

    <epoch seconds, 6 decimals> TAB <o|e|x> TAB <text>

``o`` is stdout, ``e`` stderr, ``x`` a note from Jobyard itself (e.g. truncation).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

STREAMS = {"o": "stdout", "e": "stderr", "x": "system"}


def run_dir(data_dir: Path | str, uid: str, attempt: int) -> Path:
    # Flat (one directory per attempt, not per job and attempt): each mkdir costs the
    # supervisor a few hundred microseconds, at hundreds of jobs a second.
    return Path(data_dir) / "runs" / f"{uid}.{attempt}"


def log_path(data_dir: Path | str, uid: str, attempt: int) -> Path:
    return run_dir(data_dir, uid, attempt) / "log"


@dataclass(frozen=True, slots=True)
class LogLine:
    n: int
    ts: float
    stream: str
    text: str


def parse(n: int, raw: str) -> LogLine:
    ts, _, rest = raw.partition("\t")
    code, _, text = rest.partition("\t")
    try:
        when = float(ts)
    except ValueError:
        when = 0.0
    return LogLine(n=n, ts=when, stream=STREAMS.get(code, "stdout"), text=text)


def read_lines(path: Path, offset: int = 0, limit: int = 1000) -> list[LogLine]:
    """Complete lines ``offset .. offset+limit-1`` (a line still being written is left out)."""
    out: list[LogLine] = []
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
            for n, raw in enumerate(f):
                if n < offset:
                    continue
                if not raw.endswith("\n") or len(out) >= limit:
                    break
                out.append(parse(n, raw[:-1]))
    except FileNotFoundError:
        pass
    return out


def tail(path: Path, count: int) -> list[LogLine]:
    """The last ``count`` complete lines."""
    last: deque[tuple[int, str]] = deque(maxlen=count)
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
            for n, raw in enumerate(f):
                if raw.endswith("\n"):
                    last.append((n, raw[:-1]))
    except FileNotFoundError:
        pass
    return [parse(n, raw) for n, raw in last]
