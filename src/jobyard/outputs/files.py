"""Finding a job's output files safely: inside the output directory, never through a link."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Files counted in records (lines); others are listed with records = None.
LINE_BASED = {".jsonl", ".ndjson", ".csv", ".tsv", ".txt", ".log"}
MAX_FILES = 10_000


@dataclass(frozen=True, slots=True)
class OutputFile:
    name: str  # relative to the output directory, "/"-separated
    size: int
    records: int | None


def scan(root: Path, declared_records: dict[str, int] | None = None) -> list[OutputFile]:
    """Regular files under ``root`` (symlinks are skipped: they could point anywhere)."""
    declared_records = declared_records or {}
    found: list[OutputFile] = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            st = path.lstat()
            if not path.is_file() or path.is_symlink():
                continue
            name = path.relative_to(root).as_posix()
            records = declared_records.get(name)
            if records is None and path.suffix.lower() in LINE_BASED:
                records = count_lines(path)
            found.append(OutputFile(name, st.st_size, records))
            if len(found) >= MAX_FILES:
                return found
    return found


def count_lines(path: Path) -> int:
    lines = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)  # a last line without a newline counts too
