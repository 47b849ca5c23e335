"""Dispatch latency: submit -> the job's first instruction runs, measured inside the job.

The job is ``/bin/sh -c 'date +%s.%N'``; the client takes ``time.time()`` just before it sends
the POST, and the latency is the time the job printed minus that. Jobs run one after another
(each waits for the previous to finish), so resources are always free.

Run twice in the same process, with jobs isolated (as root: each org's own uid, a cgroup per
attempt; the defaults) and without (``job_identity = none``, ``cgroups = off``), to show what
isolation costs. Target: median <= 20 ms, isolated.
"""

from __future__ import annotations

import time

import common

TARGET_MS = 20.0


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50, help="jobs to run (default 50)")
    p.add_argument("--warmup", type=int, default=3, help="jobs run first, not counted")
    p.add_argument(
        "--settle",
        type=float,
        default=0.1,
        help="seconds to wait after the POST before polling for the end, so the client's "
        "polling does not compete with the dispatch it measures (default 0.1)",
    )
    args = p.parse_args()

    print(common.machine_note())
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; "
          f"{args.n} sequential jobs of /bin/sh -c 'date +%s.%N' (1 CPU each, default request)")
    medians = {}
    for label, env in common.ISOLATION_MODES:
        with common.server(args, env) as srv, srv.client() as client:
            common.print_isolation(label, srv)
            for _ in range(args.warmup):
                run_one(client, args.settle)
            meter = common.CpuMeter(srv.proc.pid).start()
            rows = [run_one(client, args.settle) for _ in range(args.n)]
            cpu = meter.stop()
        medians[label] = describe(label, rows, cpu)
    common.info("isolated / not isolated (median)",
                medians["isolated"] / medians["not isolated"], "x")


def describe(label: str, rows: list[dict[str, float]], cpu: dict[str, float]) -> float:
    total = [r["total"] for r in rows]
    s = common.summary(total)
    if label == "isolated":
        common.report("dispatch latency median", s["median"], "ms", TARGET_MS)
    else:
        common.info("dispatch latency median", s["median"], "ms")
    common.info("p90", s["p90"], "ms")
    common.info("max", s["max"], "ms")
    common.info("min", s["min"], "ms")
    print("where the time goes (medians):")
    for key, what in (
        ("post_rtt", "POST round trip (client)"),
        ("to_created", "client send -> job created_at"),
        ("created_to_started", "created_at -> started_at (scheduler + launch; started_at is "
                               "recorded when the launcher reports the spawn)"),
        ("started_to_first", "started_at -> first instruction"),
    ):
        common.info(what, common.percentile([r[key] for r in rows], 50), "ms")
    common.CpuMeter.print(cpu)
    return float(s["median"])


def run_one(client, settle: float) -> dict[str, float]:
    body = {"command": ["/bin/sh", "-c", "date +%s.%N"], "name": "bench-dispatch"}
    t0 = time.time()
    r = client.post("/v1/jobs", json=body)
    t1 = time.time()
    if r.status_code != 201:
        raise RuntimeError(f"submit answered {r.status_code}: {r.text}")
    job_id = r.json()["id"]
    time.sleep(settle)
    job = common.wait_state(client, job_id, common.TERMINAL, interval=0.02)
    if job["state"] != "completed":
        raise RuntimeError(f"{job_id} ended {job['state']}: {job.get('error')}")
    lines = client.get(f"/v1/jobs/{job_id}/logs").json()["lines"]
    out = [x["text"] for x in lines if x["stream"] == "stdout"]
    if not out:
        raise RuntimeError(f"{job_id} printed nothing: {lines}")
    first = float(out[0])
    created = common.epoch(job["created_at"])
    started = common.epoch(job["started_at"])
    ms = 1000.0
    return {
        "total": (first - t0) * ms,
        "post_rtt": (t1 - t0) * ms,
        "to_created": (created - t0) * ms,
        "created_to_started": (started - created) * ms,
        "started_to_first": (first - started) * ms,
    }


if __name__ == "__main__":
    common.run(main, "dispatch latency")
