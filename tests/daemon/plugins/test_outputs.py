"""The output collector: files brought in by pattern, records counted from data only and
within caps, and its work on its own threads."""

import asyncio
import errno
import os
import threading
import time

import pytest

from jobyard import ids
from jobyard.core.inputs import SubmitJob
from jobyard.core.states import JobState
from jobyard.daemon.plugins.outputs import (
    CountBudget,
    OutputCollector,
    count_lines,
    gather,
    scan,
)
from jobyard.runtime import FILE_WORKERS
from jobyard.testing import async_wait_until
from tests.daemon.plugins.conftest import started_runtime


def test_patterns_bring_files_dirs_and_globs_but_nothing_outside(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "ckpt" / "sub").mkdir(parents=True)
    out.mkdir()
    (work / "model_1.pt").write_text("1")
    (work / "model_2.pt").write_text("2")
    (work / "other.pt").write_text("o")
    (work / "ckpt" / "a.bin").write_text("a")
    (work / "ckpt" / "sub" / "b.bin").write_text("b")
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    os.symlink(secret, work / "ckpt" / "link.txt")
    os.symlink(tmp_path, work / "up")

    n = gather(work, ["model_*.pt", "ckpt/", "up/secret.txt", "missing.txt", "../secret.txt",
                      "/etc/passwd"], out)
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == ["ckpt/a.bin", "ckpt/sub/b.bin", "model_1.pt", "model_2.pt"]
    assert n == 4
    assert gather(work, ["model_1.pt"], out) == 0  # already there: not brought twice


# counting records ------------------------------------------------------------------------------
def sparse(path, size, writes=()):
    """A file of apparent ``size`` bytes holding only ``writes`` ((offset, bytes)) as data."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in writes:
            f.seek(offset)
            f.write(data)
    return path


@pytest.mark.parametrize(("content", "lines"), [
    (b"", 0), (b"a\n", 1), (b"a\nb", 2), (b"a\nb\n", 2), (b"\n\n\n", 3), (b"x" * 3_000_000, 1),
])
def test_lines_are_counted_exactly(tmp_path, content, lines):
    (tmp_path / "f.txt").write_bytes(content)
    assert count_lines(tmp_path / "f.txt") == lines


def test_a_sparse_file_is_counted_from_its_data_only(tmp_path):
    """20 GB apparent: the holes are skipped (they hold no newline), so the count is exact
    and costs what the data costs."""
    gb20 = 20 << 30
    budget = CountBudget()
    holes = sparse(tmp_path / "holes.txt", gb20)
    assert count_lines(holes, budget) == 1  # 20 GB of NULs: one line without a newline
    middle = sparse(tmp_path / "mid.txt", gb20, [(0, b"a\nb\n"), (10 << 30, b"c\nd\n")])
    assert count_lines(middle, budget) == 5  # and the hole after the last newline
    ends = sparse(tmp_path / "ends.txt", 8 << 30, [(0, b"x\n"), ((8 << 30) - 2, b"y\n")])
    assert count_lines(ends, budget) == 2
    assert budget.bytes_read <= 4 << 20  # a few blocks of data, not 48 GB
    assert budget.uncounted == 0


def test_counting_stops_at_its_caps_and_says_records_are_unknown(tmp_path):
    dense = tmp_path / "dense.txt"
    dense.write_bytes(b"line\n" * 100_000)  # 500 kB of data
    small = tmp_path / "small.txt"
    small.write_bytes(b"1\n2\n")
    assert count_lines(dense, CountBudget(file_max_bytes=100_000)) is None
    assert count_lines(small, CountBudget(file_max_bytes=100_000)) == 2
    assert count_lines(dense, CountBudget(bytes_left=100_000)) is None
    assert count_lines(dense, CountBudget(deadline=time.monotonic() - 1)) is None
    assert count_lines(tmp_path / "gone.txt") is None
    budget = CountBudget(file_max_bytes=100_000)
    files = {f.name: f for f in scan(tmp_path, None, budget)}
    assert files["dense.txt"].records is None and files["dense.txt"].size == 500_000
    assert files["small.txt"].records == 2
    assert budget.uncounted == 1 and budget.bytes_read <= 100_000 + 4


def test_without_hole_support_the_whole_file_is_data_within_the_caps(tmp_path, monkeypatch):
    f = sparse(tmp_path / "s.txt", 1 << 20, [(0, b"a\n")])
    real = os.lseek

    def no_holes(fd, pos, how):
        if how in (os.SEEK_DATA, os.SEEK_HOLE):
            raise OSError(errno.EINVAL, "not supported")
        return real(fd, pos, how)

    monkeypatch.setattr(os, "lseek", no_holes)
    budget = CountBudget()
    assert count_lines(f, budget) == 2 and budget.bytes_read == 1 << 20
    assert count_lines(sparse(tmp_path / "big.txt", 1 << 30), CountBudget(
        file_max_bytes=1 << 20)) is None


# the collector in a server process --------------------------------------------------------------
@pytest.fixture
async def rt(tmp_path, database_url):
    async with started_runtime(tmp_path, database_url) as runtime:
        yield runtime


def collector_of(rt) -> OutputCollector:
    return next(h for h in rt.daemon.runner.hooks if isinstance(h, OutputCollector))


async def test_a_20_gb_sparse_output_is_collected_with_bounded_work(rt):
    budgets: list[CountBudget] = []
    collector = collector_of(rt)
    collector.budget = lambda: budgets.append(CountBudget()) or budgets[-1]
    admin = rt.store.accounts.principal_for_key(ids.hash_key("jy_t"))
    job, _ = rt.services.jobs.submit(admin, SubmitJob(command=(
        'cd "$JOBYARD_OUTPUT_DIR" && truncate -s 20G big.txt && printf "a\\nb\\n" > small.txt'
    )))
    done = await async_wait_until(lambda: (j := rt.store.jobs.get_job(job.id)).is_terminal and j,
                                  60)
    assert done.state is JobState.COMPLETED
    rows = {r["name"]: r for r in rt.store.telemetry.list_outputs(job.id)}
    assert rows["big.txt"]["size"] == 20 << 30 and rows["big.txt"]["records"] == 1
    assert rows["small.txt"]["records"] == 2
    [budget] = budgets
    assert budget.bytes_read <= 4 << 20 and budget.uncounted == 0  # not 20 GB
    assert done.telemetry["outputs"] == {"attempt": 1, "count": 2, "partial": False,
                                         "bytes": (20 << 30) + 4}


async def test_file_work_has_its_own_threads_status_reads_go_on(rt):
    """Every thread for file work held (as by jobs with huge outputs): a job's collection
    waits for one, while reads in the default executor (as /job/info makes) are answered."""
    release = threading.Event()
    holders = [rt.file_pool.submit(release.wait, 60) for _ in range(FILE_WORKERS)]
    try:
        admin = rt.store.accounts.principal_for_key(ids.hash_key("jy_t"))
        job, _ = rt.services.jobs.submit(admin, SubmitJob(
            command='echo 1 > "$JOBYARD_OUTPUT_DIR/out.txt"'))
        await async_wait_until(
            lambda: rt.store.jobs.get_job(job.id).substate == "uploading", 30)
        for _ in range(20):
            seen = await asyncio.wait_for(
                asyncio.to_thread(rt.services.jobs.get, admin, job.uid), 10)
            assert seen.substate == "uploading" and not seen.is_terminal
        other, _ = rt.services.jobs.submit(admin, SubmitJob(command="true"))
        assert (await async_wait_until(
            lambda: (j := rt.store.jobs.get_job(other.id)).is_terminal and j, 30)
        ).state is JobState.COMPLETED  # a job without outputs is not held up either
        assert not rt.store.jobs.get_job(job.id).is_terminal
    finally:
        release.set()
    for holder in holders:
        holder.result(10)
    done = await async_wait_until(lambda: (j := rt.store.jobs.get_job(job.id)).is_terminal and j,
                                  30)
    assert done.state is JobState.COMPLETED
    assert [r["records"] for r in rt.store.telemetry.list_outputs(job.id)] == [1]


def test_a_sparse_file_brought_in_across_filesystems_stays_sparse(tmp_path, monkeypatch):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    sparse(work / "big.txt", 20 << 30, [(5 << 30, b"x\n")])

    def cross_device(src, dst, **_kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    assert gather(work, ["big.txt"], out) == 1
    copy = out / "big.txt"
    assert copy.stat().st_size == 20 << 30 and copy.stat().st_blocks * 512 <= 4 << 20
    with open(copy, "rb") as f:
        f.seek(5 << 30)
        assert f.read(2) == b"x\n"
    assert count_lines(copy) == 2
