"""Resource samples of a running attempt: its cgroup or process tree (psutil), its GPUs (NVML).

CPU is measured as the tree's *cumulative* CPU time, not with ``psutil.cpu_percent`` per
process: the live descendants' own and reaped-children times, plus what the supervisor (a
subreaper, which reaps every orphan) collected from descendants that already exited. The
difference between two samples over the wall time between them is the tree's CPU % (100 = one
core busy), and short-lived processes between two samples still count.

:class:`AttemptStats` folds samples into averages and peaks and decides which samples the
stored series keeps (the downsampling rule, below).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

import psutil


@dataclass(frozen=True, slots=True)
class TreeSample:
    cpu_seconds: float  # cumulative CPU time of the whole tree since it started
    rss_bytes: int  # resident memory summed over the live processes
    processes: int


def process_table() -> tuple[dict[int, psutil.Process], dict[int, list[int]]]:
    """One look at every process: by pid, and the children of each pid."""
    procs: dict[int, psutil.Process] = {}
    children: dict[int, list[int]] = defaultdict(list)
    for proc in psutil.process_iter(["ppid"]):
        procs[proc.pid] = proc
        children[proc.info["ppid"]].append(proc.pid)
    return procs, children


def sample_tree(
    root: int,
    root_ctime: float | None,
    procs: dict[int, psutil.Process],
    children: dict[int, list[int]],
    include_root: bool,
    helper: int | None = None,
) -> TreeSample | None:
    """Sample ``root``'s descendants (and ``root`` itself if ``include_root``); None when
    ``root`` is gone or its pid now belongs to another process. ``helper``: a process of
    Jobyard's in the tree (a job's pid 1 in its own namespaces), of which only the CPU of the
    children it reaped is the job's."""
    proc = procs.get(root)
    try:
        if proc is None or (root_ctime and abs(proc.create_time() - root_ctime) > 0.05):
            return None
        cpu = 0.0 if include_root else _reaped(proc.cpu_times())
    except psutil.Error:
        return None
    rss = count = 0
    todo = list(children.get(root, ()))
    members = [root] if include_root else []
    while todo:
        pid = todo.pop()
        members.append(pid)
        todo.extend(children.get(pid, ()))
    for pid in members:
        member = procs.get(pid)
        if member is None:
            continue
        try:
            with member.oneshot():
                times = member.cpu_times()
                cpu += _reaped(times)
                if pid == helper:
                    continue
                cpu += times.user + times.system
                if member.status() != psutil.STATUS_ZOMBIE:
                    rss += member.memory_info().rss
                    count += 1
        except psutil.Error:  # exited since the table was read
            continue
    return TreeSample(cpu_seconds=cpu, rss_bytes=rss, processes=count)


class CgroupReader(Protocol):
    def pids(self) -> list[int]: ...
    def stats(self) -> dict[str, Any]: ...


def sample_cgroup(cgroup: CgroupReader) -> TreeSample | None:
    """Sample an attempt from its cgroup: the kernel's exact CPU time of every process that
    was ever in it, and its memory as the limit counts it (the working set, page cache that
    could not be reclaimed included). None when the cgroup is gone, or gives no CPU time."""
    pids = cgroup.pids()
    stats = cgroup.stats()
    if not pids or "cpu_seconds" not in stats:
        return None
    return TreeSample(cpu_seconds=stats["cpu_seconds"], rss_bytes=stats.get("memory_bytes", 0),
                      processes=len(pids))


def _reaped(times: Any) -> float:
    return float(getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0))


@dataclass
class Stat:
    """Average and peak of a series of numbers (restorable from its dict)."""

    n: int = 0
    total: float = 0.0
    peak: float | None = None

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.peak = value if self.peak is None else max(self.peak, value)

    @property
    def avg(self) -> float | None:
        return self.total / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "total": self.total, "peak": self.peak}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Stat:
        data = data or {}
        return cls(int(data.get("n", 0)), float(data.get("total", 0.0)), data.get("peak"))


GPU_FIELDS = ("utilization", "memory_used_bytes")  # averaged and peaked per GPU


@dataclass
class AttemptStats:
    """Everything measured about one attempt, kept between samples and across a restart.

    Downsampling: sample ``n`` (0, 1, 2, ... every ``metrics_interval_s``) is stored while
    ``n % stride == 0``. When storing would make more than ``max_points`` points, every point
    whose ``n`` is not a multiple of ``2 * stride`` is deleted and the stride doubles. The series
    thus always covers the whole attempt at an even spacing of ``interval * stride`` with at
    most ``max_points`` points; averages and peaks use every sample, stored or not.
    """

    attempt: int
    started: float  # when the tree's CPU clock starts (the process's start)
    samples: int = 0
    stride: int = 1
    points: int = 0
    last: dict[str, Any] = field(default_factory=dict)  # the latest sample, as stored
    cpu: Stat = field(default_factory=Stat)
    rss: Stat = field(default_factory=Stat)
    gpus: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> {stats, info}
    _cpu_mark: tuple[float, float] | None = None  # (wall time, cpu seconds) of the last sample

    def absorb(self, ts: float, tree: TreeSample, gpus: list[dict[str, Any]] | None,
               idle_below: float = 0.0) -> dict[str, Any]:
        """Fold one sample in; returns the sample as the series stores it. A GPU sample with
        utilization under ``idle_below`` (%) counts as idle."""
        then, cpu_then = self._cpu_mark or (self.started, 0.0)
        wall = max(ts - then, 1e-6)
        percent = max(0.0, (tree.cpu_seconds - cpu_then) / wall * 100.0)
        self._cpu_mark = (ts, tree.cpu_seconds)
        self.cpu.add(percent)
        self.rss.add(tree.rss_bytes)
        point: dict[str, Any] = {
            "n": self.samples, "cpu_percent": round(percent, 1), "rss_bytes": tree.rss_bytes,
            "processes": tree.processes,
        }
        if gpus is not None:  # only with NVML: no invented fields
            point["gpus"] = gpus
            for gpu in gpus:
                entry = self.gpus.setdefault(gpu["index"], {})
                for key in GPU_FIELDS:
                    if key in gpu:
                        stat = Stat.from_dict(entry.get(key))
                        stat.add(gpu[key])
                        entry[key] = stat.to_dict()
                for key in ("name", "memory_total_bytes"):
                    if key in gpu:
                        entry[key] = gpu[key]
                if "utilization" in gpu and gpu["utilization"] < idle_below:
                    entry["idle_n"] = entry.get("idle_n", 0) + 1
        self.samples += 1
        self.last = {"ts": ts, **point}
        return point

    def keep(self, n: int, max_points: int) -> tuple[bool, int | None]:
        """Whether sample ``n`` is stored, and the stride to thin the stored series to first
        (then the store says how many points are left: :meth:`thinned`)."""
        if n % self.stride:
            return False, None
        if self.points < max_points:
            self.points += 1
            return True, None
        self.stride *= 2
        return n % self.stride == 0, self.stride

    def thinned(self, points: int) -> None:
        self.points = points

    def gpu_summary(self) -> list[dict[str, Any]]:
        """Per GPU: averages and peaks of utilization and memory (only what NVML gave)."""
        out = []
        for index, entry in sorted(self.gpus.items()):
            gpu: dict[str, Any] = {"index": index}
            for key in ("name", "memory_total_bytes"):
                if key in entry:
                    gpu[key] = entry[key]
            for key in GPU_FIELDS:
                stat = Stat.from_dict(entry.get(key))
                if stat.n:
                    gpu[f"avg_{key}"] = round(stat.avg or 0.0, 1)
                    gpu[f"peak_{key}"] = stat.peak
                    if key == "utilization":
                        gpu["idle_fraction"] = round(entry.get("idle_n", 0) / stat.n, 3)
            out.append(gpu)
        return out

    def account_cpu(self, ts: float, cpu_seconds: float) -> None:
        """The attempt's CPU time to its end (its processes' own count, once they are gone):
        samples only see it up to the last one."""
        if self._cpu_mark is None or cpu_seconds > self._cpu_mark[1]:
            self._cpu_mark = (ts, cpu_seconds)

    def to_telemetry(self, interval_s: float) -> dict[str, Any]:
        """The job's ``telemetry.resources``: latest sample, averages, peaks, series layout."""
        data: dict[str, Any] = {
            "attempt": self.attempt, "samples": self.samples, "interval_s": interval_s,
            "stride": self.stride, "started": self.started, "latest": self.last,
            "cpu": {**self.cpu.to_dict(), "avg_percent": _r(self.cpu.avg),
                    "peak_percent": _r(self.cpu.peak)},
            "memory": {**self.rss.to_dict(), "avg_rss_bytes": _i(self.rss.avg),
                       "peak_rss_bytes": _i(self.rss.peak)},
            "cpu_mark": list(self._cpu_mark) if self._cpu_mark else None,
        }
        if self.gpus:
            data["gpus"] = self.gpu_summary()
            data["gpu_stats"] = {str(k): v for k, v in self.gpus.items()}
        return data

    @classmethod
    def from_telemetry(cls, attempt: int, started: float, data: dict[str, Any] | None,
                       points: int = 0) -> AttemptStats:
        """Resume from ``telemetry.resources`` (after a restart), if it is this attempt's."""
        data = data or {}
        if data.get("attempt") != attempt:
            return cls(attempt=attempt, started=started, points=points)
        mark = data.get("cpu_mark")
        return cls(
            attempt=attempt, started=float(data.get("started", started)),
            samples=int(data.get("samples", 0)), stride=int(data.get("stride", 1)),
            points=points, last=data.get("latest") or {},
            cpu=Stat.from_dict(data.get("cpu")), rss=Stat.from_dict(data.get("memory")),
            gpus={int(k): v for k, v in (data.get("gpu_stats") or {}).items()},
            _cpu_mark=(float(mark[0]), float(mark[1])) if mark else None,
        )


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _i(value: float | None) -> int | None:
    return None if value is None else int(value)
