"""The supervisor's run files on a disk that fills up and frees again."""

from __future__ import annotations

import re

from jobyard.executors.runfiles import LogWriter
from tests.conftest import fill_disk

NOTE = re.compile(r"\[jobyard: (\d+) bytes lost: disk full\]")


def test_the_log_resumes_after_a_full_disk_and_marks_the_gap(tiny_disk):
    log = LogWriter(str(tiny_disk / "log"), 1 << 30)
    for i in range(100):
        log.feed("o", f"line {i}\n".encode())
    filler = fill_disk(tiny_disk)
    for i in range(100, 3100):  # the disk is full: at most a page's worth gets in
        log.feed("o", f"line {i}\n".encode())
    filler.unlink()
    for i in range(100):
        log.feed("o", f"after {i}\n".encode())
    log.close()

    lines = (tiny_disk / "log").read_text().splitlines()
    notes = [n for n, line in enumerate(lines) if NOTE.search(line)]
    assert len(notes) == 1, lines[-5:]
    before, after = lines[: notes[0]], lines[notes[0] + 1 :]
    texts = [line.split("\t", 2)[2] for line in before if line.count("\t") == 2]
    kept = len(texts)
    assert 100 <= kept < 3000 and texts == [f"line {i}" for i in range(kept)]
    assert [line.split("\t", 2)[2] for line in after] == [f"after {i}" for i in range(100)]
    lost = int(NOTE.search(lines[notes[0]]).group(1))
    assert lost >= sum(len(f"line {i}\n") for i in range(kept + 1, 3100))


def test_a_gap_at_the_end_is_noted_when_the_log_closes(tiny_disk):
    log = LogWriter(str(tiny_disk / "log"), 1 << 30)
    log.feed("o", b"first\n")
    filler = fill_disk(tiny_disk)
    for i in range(2000):
        log.feed("o", f"lost {i}\n".encode())
    filler.unlink()
    log.close()
    lines = (tiny_disk / "log").read_text().splitlines()
    assert lines[0].endswith("\tfirst")
    assert NOTE.search(lines[-1]) and not any(NOTE.search(line) for line in lines[:-1])
