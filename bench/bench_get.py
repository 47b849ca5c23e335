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
    p.add_argument("--connections", type=int, default=16, help="wrk -c (default 16)")
    p.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of load first, not counted")
    p.add_argument("--by-number", action="store_true", help="fetch by the integer id instead")
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
        job = common.submit(client, {"command": ["true"], "name": "bench-get"})
        job = common.wait_state(client, job["id"], common.TERMINAL)
        ref = str(job["number"]) if args.by_number else job["id"]
        url = f"{srv.url}/v1/jobs/{ref}"
        cmd = [wrk, f"-t{args.threads}", f"-c{args.connections}", "--latency",
               "-H", f"Authorization: Bearer {srv.admin_key}"]
        if args.warmup:
            subprocess.run([*cmd, f"-d{args.warmup}s", url], capture_output=True, check=False)
        meter = common.CpuMeter(srv.proc.pid).start()
        out = subprocess.run([*cmd, f"-d{args.duration}s", url], capture_output=True,
                             text=True, check=False)
        cpu = meter.stop()

    if out.returncode != 0:
        print(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return
    rps, p99, errors = parse(out.stdout)
    common.report("GET /v1/jobs/{id} throughput", rps, "requests/s", TARGET_RPS, ">=")
    common.report("GET /v1/jobs/{id} latency p99", p99, "ms", TARGET_P99_MS)
    for name in ("50%", "90%"):
        m = re.search(rf"^\s+{re.escape(name)}\s+([\d.]+)(us|ms|s|m)\s*$", out.stdout, re.M)
        if m:
            common.info(f"latency p{name[:-1]}", float(m[1]) * _UNITS_MS[m[2]], "ms")
    if errors:
        common.info("errors", "; ".join(errors))
    common.CpuMeter.print(cpu)
    served = rps * cpu["wall"]
    if served:
        common.info("server CPU per request", cpu["server"] / served * 1000, "ms")


def parse(text: str) -> tuple[float, float, list[str]]:
    """Requests/sec, the 99% latency in ms, and any error lines of wrk's ``--latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p99 = float(m[1]) * _UNITS_MS[m[2]] if m else float("nan")
    errors = [line.strip() for line in text.splitlines()
              if "Non-2xx" in line or "Socket errors" in line]
    return rps, p99, errors


if __name__ == "__main__":
    main()
