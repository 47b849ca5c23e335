"""Progress cost: a job reporting progress 100 times a second, through ``jobyard.job``.

The job calls ``jobyard.job.progress(...)`` every 10 ms for ``--seconds``; the figure is the
server's CPU time over that window minus its CPU time over an equally long idle window with
the same job kind sleeping, as a share of one core.

Target: <= 5 % of one core.
"""

from __future__ import annotations

import sys
import time

import common
import psutil

TARGET_PCT = 5.0

REPORTER = """
import time, jobyard.job as job
n, t0 = {n}, time.perf_counter()
print("start", flush=True)
for i in range(n):
    job.progress(100 * i / n, step="working", metadata={{"i": i}})
    time.sleep(max(0.0, t0 + (i + 1) / 100 - time.perf_counter()))
print("done", flush=True)
"""

SLEEPER = "import time; print('start', flush=True); time.sleep({seconds}); print('done')"


def measure(srv, code: str, seconds: float) -> tuple[float, float, dict]:
    """Server CPU seconds and wall time between the job's 'start' and its end."""
    server = psutil.Process(srv.proc.pid)
    with srv.client() as c:
        job = common.submit(c, {"command": [sys.executable, "-c", code]})
        common.wait_log_line(c, job["id"], "start", timeout=60)
        cpu0, t0 = sum(server.cpu_times()[:2]), time.perf_counter()
        done = common.wait_state(c, job["id"], common.TERMINAL, timeout=seconds + 60,
                                 interval=0.5)
        cpu1, t1 = sum(server.cpu_times()[:2]), time.perf_counter()
    return cpu1 - cpu0, t1 - t0, done


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="reporting time (default 10)")
    args = p.parse_args()
    print(common.machine_note())
    n = int(args.seconds * 100)
    with common.server(args) as srv:
        idle_cpu, idle_wall, _ = measure(srv, SLEEPER.format(seconds=args.seconds), args.seconds)
        busy_cpu, busy_wall, job = measure(srv, REPORTER.format(n=n), args.seconds)
    idle_rate = idle_cpu / idle_wall
    busy_rate = busy_cpu / busy_wall
    common.report("server CPU for 100 reports/s", 100 * (busy_rate - idle_rate), "% of a core",
                  TARGET_PCT, "<=")
    common.info("server CPU while reporting / idle", f"{100 * busy_rate:.2f} % / "
                f"{100 * idle_rate:.2f} % of a core")
    common.info("job", f"{job['state']}, progress {job.get('progress')}, "
                f"{n} calls in {busy_wall:.1f} s")


if __name__ == "__main__":
    common.run(main, "server CPU for 100 reports/s")
