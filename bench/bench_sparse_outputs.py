"""Sparse outputs: a ``true`` job, submit -> ``completed``, while 8 jobs each leave a 20 GB
sparse ``.txt`` in their output directory, against the same on an idle server.

Idle: ``--n`` ``true`` jobs one after another; each is timed from the POST to the first
``GET /v1/jobs/{id}`` (polled every 10 ms) that shows it ``completed``. Loaded, ``--rounds``
times: 8 jobs of ``truncate -s 20G "$JOBYARD_OUTPUT_DIR/big.txt"`` are submitted; once each is
collecting its outputs (substate ``uploading``) or has ended, a ``true`` job is submitted and
timed the same way, while a second client polls TensorPool's ``/job/info`` of that job (a route
that reads in a thread) and keeps the slowest answer; the round ends when all 9 jobs are
terminal. The server counts ``JOBYARD_CPUS=16`` (``--cpus``): room for all 9 at once, so the
figure is what the sparse files cost, not a wait for a free CPU (with fewer, the ``true`` job
also queues behind the sparse jobs until their ends are recorded). Every sparse job's output
must end up listed (the round fails otherwise).

Target: loaded median <= 2 x the idle median.
"""

from __future__ import annotations

import threading
import time

import common
import httpx

SPARSE = 'truncate -s 20G "$JOBYARD_OUTPUT_DIR/big.txt"'
SPARSE_JOBS = 8
RATIO_TARGET = 2.0


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5, help="idle 'true' jobs (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="loaded rounds (default 3)")
    p.add_argument("--size", default="20G", help="apparent size of each sparse file (20G)")
    p.add_argument("--cpus", type=int, default=16, help="the server's JOBYARD_CPUS (16)")
    args = p.parse_args()

    print(common.machine_note())
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; {SPARSE_JOBS} jobs "
          f"each leaving a {args.size} sparse big.txt, then a 'true' job; "
          f"JOBYARD_CPUS={args.cpus}")
    command = SPARSE.replace("20G", args.size)
    with common.server(args, env={"JOBYARD_CPUS": str(args.cpus)}) as srv, srv.client() as client:
        idle = [timed_true(client) for _ in range(args.n)]
        meter = common.CpuMeter(srv.proc.pid).start()
        rounds = [loaded_round(srv, client, command) for _ in range(args.rounds)]
        cpu = meter.stop()

    idle_median = common.percentile(idle, 50)
    loaded = [r["true"] for r in rounds]
    loaded_median = common.percentile(loaded, 50)
    common.report("'true' job under 8 sparse 20 GB outputs / idle, median ratio",
                  loaded_median / idle_median, "x", RATIO_TARGET)
    common.info("idle 'true' job, submit -> completed, median", idle_median, "ms")
    common.info("loaded 'true' job, submit -> completed, median", loaded_median, "ms")
    common.info("loaded 'true' job, max", max(loaded), "ms")
    common.info("slowest /job/info answer while loaded",
                max(r["info_max"] for r in rounds), "ms")
    common.info("8 sparse jobs, submit -> all terminal, median",
                common.percentile([r["sparse_done"] for r in rounds], 50), "ms")
    counted = [r["records"] for r in rounds]
    common.info("records of big.txt as listed", ", ".join(sorted({str(c) for c in counted})))
    common.CpuMeter.print(cpu)


def timed_true(client) -> float:
    t0 = time.perf_counter()
    job = common.submit(client, {"command": "true", "name": "bench-true"})
    common.wait_state(client, job["id"], common.TERMINAL, timeout=600)
    return (time.perf_counter() - t0) * 1000.0


def loaded_round(srv, client, command: str) -> dict:
    t0 = time.perf_counter()
    sparse = [common.submit(client, {"command": command, "name": "bench-sparse"})["id"]
              for _ in range(SPARSE_JOBS)]
    for job_id in sparse:  # each is collecting its outputs, or done
        deadline = time.monotonic() + 600
        while not collecting(client.get(f"/v1/jobs/{job_id}").json()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{job_id} never reached its output collection")
            time.sleep(0.01)
    t_true = time.perf_counter()
    job = common.submit(client, {"command": "true", "name": "bench-true"})
    slowest = [0.0]
    stop = threading.Event()
    poller = threading.Thread(target=poll_info, args=(srv, job["id"], stop, slowest))
    poller.start()
    try:
        done = common.wait_state(client, job["id"], common.TERMINAL, timeout=600)
        true_ms = (time.perf_counter() - t_true) * 1000.0
        if done["state"] != "completed":
            raise RuntimeError(f"the 'true' job ended {done['state']}")
        for job_id in sparse:
            common.wait_state(client, job_id, common.TERMINAL, timeout=600, interval=0.05)
        sparse_ms = (time.perf_counter() - t0) * 1000.0
    finally:
        stop.set()
        poller.join()
    items = client.get(f"/v1/jobs/{sparse[0]}/outputs").json()["items"]
    if [i["name"] for i in items] != ["big.txt"]:
        raise RuntimeError(f"outputs of a sparse job: {items}")
    return {"true": true_ms, "sparse_done": sparse_ms, "info_max": slowest[0],
            "records": items[0]["records"]}


def collecting(job: dict) -> bool:
    return job["state"] in common.TERMINAL or job.get("substate") == "uploading"


def poll_info(srv, job_id: str, stop: threading.Event, slowest: list[float]) -> None:
    headers = {"Authorization": f"Bearer {srv.admin_key}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=600) as tp:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = tp.get(f"/job/info/{job_id}")
            if r.status_code != 200:
                raise RuntimeError(f"/job/info answered {r.status_code}: {r.text}")
            slowest[0] = max(slowest[0], (time.perf_counter() - t0) * 1000.0)
            stop.wait(0.05)


if __name__ == "__main__":
    common.run(main, "'true' job under sparse outputs / idle")
