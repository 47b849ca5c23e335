"""Push: the real ``tp job push`` of a large project (incompressible data) to a local server.

The published CLI (tensorpool 0.0.9, from tests/api/dialects/tensorpool/tp-cli.txt) runs each
command the server sends without answering WebSocket pings; uvicorn closes a socket whose ping
goes unanswered for 20 s after a 20 s interval. The figures: upload throughput, and the longest
gap between two progress lines, i.e. the longest step the CLI ran (target: well under 20 s).

Target: longest step <= 5 s (a quarter of the ping timeout).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
import time
from pathlib import Path

import common

from jobyard.testing import client_venv, wait_until

TARGET_STEP_S = 5.0
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=300, help="project size in MB (default 300)")
    args = p.parse_args()
    tp = client_venv(ROOT / "tests/api/dialects/tensorpool/tp-cli.txt", ROOT) / "bin" / "tp"

    print(common.machine_note())
    print(f"project: {args.mb} MB of random bytes in 8 files; server and CLI on loopback")
    env = {"JOBYARD_CPUS": "4", "JOBYARD_TENSORPOOL_MAX_UPLOAD_BYTES": str(4 << 30)}
    with common.server(args, env) as srv, srv.client() as api, \
            tempfile.TemporaryDirectory() as proj:
        r = api.post("/v1/clusters", json={"instance_type": "cpu-1"})
        cid = r.json()["cluster_id"]
        wait_until(lambda: api.get(f"/v1/clusters/{cid}").json()["state"] == "ready", 30)
        for i in range(8):
            with open(Path(proj) / f"part{i}.bin", "wb") as f:
                for _ in range(args.mb // 8):
                    f.write(os.urandom(1 << 20))
        (Path(proj) / "job.tp.toml").write_text('commands = ["du -sm ."]\n'
                                               'ignore = ["*.tp.toml"]\n')
        cli_env = {**os.environ, "TENSORPOOL_ENGINE": srv.url, "TENSORPOOL_KEY": srv.admin_key,
                   "NO_PROXY": "127.0.0.1"}
        t0 = time.monotonic()
        proc = subprocess.Popen([str(tp), "job", "push", "job.tp.toml", cid], cwd=proj,
                                env=cli_env, stdout=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        stamps = []
        assert proc.stdout is not None
        for line in proc.stdout:
            stamps.append((time.monotonic(), line.rstrip()))
        proc.wait()
        total = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError("push failed: " + " | ".join(t for _, t in stamps[-5:]))
        times = [t0] + [t for t, _ in stamps]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        pieces = sum("Uploading:" in text for _, text in stamps) + 1
        common.info("push, end to end", total, "s")
        common.info("throughput", args.mb / total, "MB/s")
        common.info("pieces", pieces)
        common.report("longest step (gap between progress lines)", max(gaps), "s", TARGET_STEP_S)


if __name__ == "__main__":
    common.run(main, "push")
