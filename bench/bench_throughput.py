"""Throughput: 1,000 trivial jobs (``true``) end to end, submitted concurrently.

Measured from the first submit until every job is terminal (counts from /metrics, polled
lightly). Submits go through a minimal raw HTTP client (``common.RawHttp``) so the load
generator does not eat the CPU the server needs. The server is given ``JOBYARD_CPUS=64`` so
that the scheduler's CPU accounting (1 CPU per job by default) does not cap concurrency at the
machine's core count.

Target: >= 200 jobs/s on a 2-core machine with SQLite.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import common
import httpx

TARGET = 200.0


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="jobs (default 1000)")
    p.add_argument("--concurrency", type=int, default=24, help="requests in flight (default 24)")
    p.add_argument("--server-cpus", default="64", help="JOBYARD_CPUS for the server (default 64)")
    p.add_argument("--poll", type=float, default=0.5,
                   help="seconds between /metrics polls (default 0.5)")
    p.add_argument("--timeout", type=float, default=90.0, help="give up after this many seconds")
    args = p.parse_args()

    print(common.machine_note())
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; {args.n} jobs ['true'], "
          f"{args.concurrency} concurrent submits; server JOBYARD_CPUS={args.server_cpus}, "
          f"jobs ask the default 1 CPU")
    rates = {}
    for label, env in common.ISOLATION_MODES:
        with common.server(args, env={"JOBYARD_CPUS": args.server_cpus, **env}) as srv:
            common.print_isolation(label, srv)
            meter = common.CpuMeter(srv.proc.pid).start()
            result = asyncio.run(run(srv, args))
            cpu = meter.stop()
        rates[label] = describe(args, result, cpu, label == "isolated")
    common.info("isolated / not isolated (throughput)",
                rates["isolated"] / max(rates["not isolated"], 1e-9), "x")


def describe(args, result: dict, cpu: dict[str, float], measured: bool) -> float:
    """Print one run's figures (the target only for the one it is measured on)."""
    n, elapsed, counts = args.n, result["elapsed"], result["counts"]
    completed = counts.get("completed", 0)
    rate = completed / elapsed if elapsed > 0 else 0.0
    if measured:
        common.report("throughput", rate, "jobs/s", TARGET, ">=")
    else:
        common.info("throughput", rate, "jobs/s")
    common.info("jobs completed", f"{completed} of {n} in {elapsed:.2f} s (first submit -> "
                f"last finished_at; seen by the /metrics poll at {result['observed']:.2f} s)")
    common.info("not completed", n - completed)
    others = {k: v for k, v in counts.items() if v and k != "completed"}
    if others:
        common.info("other states at the end", str(others))
    if result["submit_errors"]:
        common.info("submit errors", result["submit_errors"])
    common.info("submit phase", f"{result['submitted_s']:.2f} s "
                f"({n / result['submitted_s']:.0f} submits/s)")
    common.info("jobs terminal when the last submit returned", result["done_at_submit_end"])
    lat = common.summary(result["post_ms"])
    common.info("POST latency median / p99", f"{lat['median']:.1f} / {lat['p99']:.1f} ms")
    common.CpuMeter.print(cpu)
    common.info("per job: server / launcher+supervisors+jobs / client", " / ".join(
        f"{cpu[k] / n * 1000:.2f}" for k in ("server", "helpers", "client")) + " CPU-ms")
    if result["timed_out"]:
        print(f"gave up after {args.timeout:.0f} s")
    return rate


async def run(srv, args) -> dict:
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    body = {"command": ["true"], "name": "bench-throughput", "tags": [tag]}
    headers = {"Authorization": f"Bearer {srv.admin_key}"}
    limits = httpx.Limits(max_connections=args.concurrency)
    post_ms: list[float] = []
    errors = 0
    async with httpx.AsyncClient(
        base_url=srv.url, headers=headers, timeout=60, limits=limits
    ) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(args.n):
            queue.put_nowait(i)

        raw = common.RawHttp(srv.url, srv.admin_key)
        request = raw.request("POST", "/v1/jobs", json.dumps(body).encode())

        async def worker() -> None:
            nonlocal errors
            reader, writer = await raw.connect()
            try:
                while True:
                    try:
                        queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    t = time.perf_counter()
                    status, _ = await raw.exchange(reader, writer, request)
                    post_ms.append((time.perf_counter() - t) * 1000)
                    if status != 201:
                        errors += 1
            finally:
                writer.close()

        t0 = time.perf_counter()
        t0_wall = time.time()
        submitting = asyncio.gather(*(worker() for _ in range(args.concurrency)))
        watcher = asyncio.create_task(watch(client, args, t0))
        await submitting
        submitted_s = time.perf_counter() - t0
        at_submit_end = common.parse_job_counts((await client.get("/metrics")).text)
        end, timed_out = await watcher
        jobs = await list_tagged(client, tag)
    # The poll sees the end up to one interval late; the jobs' own finished_at does not.
    finished = [common.epoch(j["finished_at"]) for j in jobs if j["finished_at"]]
    states: dict[str, int] = {}
    for j in jobs:
        states[j["state"]] = states.get(j["state"], 0) + 1
    return {
        "elapsed": (max(finished) - t0_wall) if finished and not timed_out else end - t0,
        "observed": end - t0, "counts": states, "submitted_s": submitted_s,
        "post_ms": post_ms, "submit_errors": errors, "timed_out": timed_out,
        "done_at_submit_end": sum(v for k, v in at_submit_end.items() if k in common.TERMINAL),
    }


async def list_tagged(client: httpx.AsyncClient, tag: str) -> list[dict]:
    jobs: list[dict] = []
    cursor = None
    while True:
        params = {"tag": tag, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/jobs", params=params)).json()
        jobs += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return jobs


async def watch(client: httpx.AsyncClient, args, t0: float) -> tuple[float, bool]:
    """Poll /metrics until ``args.n`` jobs are terminal (the store holds only this run's jobs);
    return when that was seen and whether it timed out instead."""
    while True:
        await asyncio.sleep(args.poll)
        now = time.perf_counter()
        counts = common.parse_job_counts((await client.get("/metrics")).text)
        if sum(v for k, v in counts.items() if k in common.TERMINAL) >= args.n:
            return now, False
        if now - t0 > args.timeout:
            return now, True


if __name__ == "__main__":
    common.run(main, "throughput")
