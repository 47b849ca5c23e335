"""SSE fan-out: 1,000 concurrent event streams on one job receive a progress update.

A running job prints its report token; the benchmark opens ``--clients`` SSE streams on
``GET /v1/jobs/{id}/events`` (raw sockets, so the generator stays cheap), then posts progress
reports with that token and measures, for every stream, the time from just before the POST to
the moment the ``progress`` event arrives on it. Several rounds give several samples per stream.

Target: p99 delivery latency <= 100 ms, no stream errors.
"""

from __future__ import annotations

import asyncio
import json
import time

import common

TARGET_MS = 100.0


class Stream(asyncio.Protocol):
    """One SSE client as a bare protocol: it only timestamps the progress events it sees, so
    that 1,000 of them cost the generator little and the figure is the server's, not ours."""

    def __init__(self, request: bytes, arrived: dict[int, list[float]], opened: list[int],
                 errors: list[str]):
        self.request, self.arrived, self.opened, self.errors = request, arrived, opened, errors
        self.buffer = b""
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.buffer and data.startswith(b"HTTP/") and not data.startswith(b"HTTP/1.1 200"):
            self.errors.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
        if b"\r\n\r\n" in data and not self.buffer:
            self.opened[0] += 1
        self.buffer = (self.buffer + data)[-4096:]
        for chunk in data.split(b"event: progress")[1:]:
            marker = chunk.find(b'"progress":')
            if marker >= 0:
                digits = chunk[marker + 11:marker + 20].split(b",")[0].split(b"}")[0]
                self.arrived.setdefault(int(float(digits)), []).append(now)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.errors.append(repr(exc))
        if not self.done.done():
            self.done.set_result(None)


async def run(srv, args) -> dict:
    with srv.client() as c:
        job = common.submit(c, {"command": "echo $JOBYARD_JOB_TOKEN; sleep 600"})
        common.wait_state(c, job["id"], {"running"})
        token = common.wait_log_line(c, job["id"], "jyt_")
    raw = common.RawHttp(srv.url, srv.admin_key)
    arrived: dict[int, list[float]] = {}
    opened, errors = [0], []
    request = raw.request("GET", f"/v1/jobs/{job['id']}/events")
    loop = asyncio.get_running_loop()
    streams = []
    for _ in range(args.clients):  # open gradually: a burst of 1,000 SYNs overflows the backlog
        _, proto = await loop.create_connection(
            lambda: Stream(request, arrived, opened, errors), raw.host, raw.port)
        streams.append(proto)
    deadline = time.monotonic() + 60
    while opened[0] < args.clients and time.monotonic() < deadline and not errors:
        await asyncio.sleep(0.05)
    reporter = common.RawHttp(srv.url, token)
    reader, writer = await reporter.connect()
    sent: dict[int, float] = {}
    for round_ in range(1, args.rounds + 1):
        await asyncio.sleep(args.gap)
        sent[round_] = time.perf_counter()
        status, body = await reporter.exchange(
            reader, writer, reporter.request("POST", f"/v1/jobs/{job['id']}/report",
                                             json.dumps({"progress": round_}).encode()))
        if status >= 300:
            raise RuntimeError(f"report answered {status}: {body[:200]!r}")
    await asyncio.sleep(max(1.0, args.gap))
    writer.close()
    with srv.client() as c:
        c.post(f"/v1/jobs/{job['id']}/cancel")
    await asyncio.wait([p.done for p in streams], timeout=30)
    latencies = [(t - sent[p]) * 1000 for p, times in arrived.items() if p in sent for t in times]
    return {"latencies": latencies, "errors": errors,
            "delivered": sum(len(v) for p, v in arrived.items() if p in sent)}


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=1000, help="SSE streams (default 1000)")
    p.add_argument("--rounds", type=int, default=5, help="progress updates (default 5)")
    p.add_argument("--gap", type=float, default=0.5, help="seconds between updates")
    args = p.parse_args()
    print(common.machine_note())
    print(f"{args.clients} streams on one job, {args.rounds} progress updates")
    with common.server(args) as srv:
        meter = common.CpuMeter(srv.proc.pid).start()
        result = asyncio.run(run(srv, args))
        cpu = meter.stop()
    lat = common.summary(result["latencies"]) if result["latencies"] else None
    expected = args.clients * args.rounds
    if lat is None:
        print("delivery latency: not measured (no update arrived)")
    else:
        common.report("delivery latency p99", lat["p99"], "ms", TARGET_MS, "<=")
        common.info("median / p90 / max", f"{lat['median']:.1f} / {lat['p90']:.1f} / "
                    f"{lat['max']:.1f} ms")
    common.info("updates delivered", f"{result['delivered']} of {expected}")
    common.info("stream errors", len(result["errors"]))
    for err in result["errors"][:5]:
        print(f"  {err}")
    common.CpuMeter.print(cpu)


if __name__ == "__main__":
    common.run(main, "delivery latency p99")
