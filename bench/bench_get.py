"""GET /v1/jobs/{id} under load from ``wrk`` on loopback: requests/s and p99 latency.

One finished job is created first and fetched over and over by its string id.

Targets: >= 3,000 requests/s; p99 <= 10 ms.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import common

TARGET_RPS = 3000.0
TARGET_P99_MS = 10.0
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=10, help="seconds of load (default 10)")
    # 4 connections keep the generator from queueing requests behind one another (Little's
    # law: 16 in flight at 3,000/s is already 5 ms of queueing per request on one core).
    p.add_argument("--connections", type=int, default=4, help="wrk -c (default 4)")
    p.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of load first, not counted")
    p.add_argument("--by-number", action="store_true", help="fetch by the integer id instead")
    p.add_argument(
        "--breakdown",
        type=int,
        default=4,
        metavar="SECONDS",
        help="also load /healthz (no auth, no store) and /v1/me (auth only), and the job over "
        "1 connection, for this many seconds each, to show where a request's time goes; "
        "0 to skip (default 4)",
    )
    args = p.parse_args()

    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: apt-get install wrk (Debian/Ubuntu), brew install wrk "
              "(macOS); skipped")
        return

    print(common.machine_note())
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s")
    with common.server(args) as srv, srv.client() as client:
        auth = ["-H", f"Authorization: Bearer {srv.admin_key}"]
        cmd = [wrk, f"-t{args.threads}", f"-c{args.connections}", "--latency", *auth]
        job = common.submit(client, {"command": ["true"], "name": "bench-get"})
        job = common.wait_state(client, job["id"], common.TERMINAL)
        ref = str(job["number"]) if args.by_number else job["id"]
        if args.warmup:
            subprocess.run([*cmd, f"-d{args.warmup}s", f"{srv.url}/v1/jobs/{ref}"],
                           capture_output=True, check=False)
        main_run = load(srv, cmd, f"/v1/jobs/{ref}", args.duration)
        extra = []
        if args.breakdown:
            for path in ("/healthz", "/v1/me"):
                extra.append((f"{path} -c{args.connections}",
                              load(srv, cmd, path, args.breakdown)))
            one = [wrk, "-t1", "-c1", "--latency", *auth]
            extra.append(("/v1/jobs/{id} -c1", load(srv, one, f"/v1/jobs/{ref}", args.breakdown)))

    if main_run is None:
        return
    common.report("GET /v1/jobs/{id} throughput", main_run["rps"], "requests/s", TARGET_RPS,
                  ">=")
    common.report("GET /v1/jobs/{id} latency p99", main_run["p99"], "ms", TARGET_P99_MS)
    common.info("latency p50 / p90",
                f"{main_run['p50']:.2f} / {main_run['p90']:.2f} ms")
    if main_run["errors"]:
        common.info("errors", "; ".join(main_run["errors"]))
    common.CpuMeter.print(main_run["cpu"])
    common.info("server CPU per request", main_run["cpu_per_req"], "ms")
    if extra:
        print("breakdown (cheaper endpoints under the same load; the job over one connection):")
        for what, r in [(f"/v1/jobs/{{id}} -c{args.connections}", main_run), *extra]:
            if r is not None:
                common.info(f"{what:18}", f"{r['rps']:6.0f} requests/s, p99 {r['p99']:6.2f} ms, "
                            f"server CPU {r['cpu_per_req']:.3f} ms/request")


def load(srv, cmd: list[str], path: str, duration: int) -> dict | None:
    """Run wrk against ``path``; its figures and the CPU the server spent."""
    meter = common.CpuMeter(srv.proc.pid).start()
    out = subprocess.run([*cmd, f"-d{duration}s", srv.url + path], capture_output=True,
                         text=True, check=False)
    cpu = meter.stop()
    if out.returncode != 0:
        print(f"wrk failed on {path} ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return None
    r = parse(out.stdout)
    r["cpu"] = cpu
    served = r["rps"] * cpu["wall"]
    r["cpu_per_req"] = cpu["server"] / served * 1000 if served else float("nan")
    return r


def parse(text: str) -> dict:
    """Requests/sec, latency percentiles in ms, and any error lines of wrk's ``--latency``
    output."""
    r: dict = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])}
    for pct in (50, 90, 99):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        r[f"p{pct}"] = float(m[1]) * _UNITS_MS[m[2]] if m else float("nan")
    r["errors"] = [line.strip() for line in text.splitlines()
                   if "Non-2xx" in line or "Socket errors" in line]
    return r


if __name__ == "__main__":
    common.run(main, "GET /v1/jobs/{id}")
