"""The command of the test endpoints: a real job that does what its input says.

It reads its input from ``$TENSORONE_INPUT_FILE`` (and checks ``$TENSORONE_INPUT`` says the
same), then, in order, any of::

    {"hold": "/path",                              # wait (at most 60 s) until this file exists
     "print": ["line", ...],                       # to stdout
     "burn": 0.3,                                  # seconds of busy CPU
     "reports": [{"progress": 25, "step": "...", "metadata": {...}, "items": [done, total],
                  "throughput": [value, unit]}, ...],
     "metrics": {"name": number},
     "release": "/path",                           # wait (at most 60 s) until this file exists
     "output": {...},                              # written to $TENSORONE_OUTPUT_FILE
     "files": {"name": bytes},                     # files of that size in $JOBYARD_OUTPUT_DIR
     "exit": 3}                                    # the exit code (default 0)

The output always carries ``inputSeen`` (the input as the job read it) and ``sum`` (of the
input's ``numbers``): values the tests check against what they sent.
"""

from __future__ import annotations

import json
import os
import sys
import time

import jobyard.job as job

with open(os.environ["TENSORONE_INPUT_FILE"], encoding="utf-8") as f:
    spec = json.load(f)
assert json.loads(os.environ.get("TENSORONE_INPUT", "null")) in (spec, None)


def wait_for(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


if spec.get("hold"):
    wait_for(spec["hold"])
for line in spec.get("print", []):
    print(line, flush=True)
if spec.get("burn"):
    end = time.process_time() + spec["burn"]
    while time.process_time() < end:
        pass
for r in spec.get("reports", []):
    items = r.get("items") or [None, None]
    job.progress(r.get("progress"), step=r.get("step"), metadata=r.get("metadata"),
                 throughput=tuple(r["throughput"]) if r.get("throughput") else None,
                 items_done=items[0], items_total=items[1])
    job.flush()
    if r.get("pause"):
        time.sleep(r["pause"])
for name, value in spec.get("metrics", {}).items():
    job.metric(name, value)
job.flush()
if spec.get("release"):
    wait_for(spec["release"])
if "output" in spec:
    result = {**spec["output"], "inputSeen": spec, "sum": sum(spec.get("numbers", []))}
    with open(os.environ["TENSORONE_OUTPUT_FILE"], "w", encoding="utf-8") as f:
        json.dump(result, f)
for name, n in spec.get("files", {}).items():
    with open(os.path.join(os.environ["JOBYARD_OUTPUT_DIR"], name), "wb") as f:
        f.write(b"\0" * n)
sys.exit(spec.get("exit", 0))
