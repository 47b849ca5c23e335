"""``jobyard report``: a shell job reports its progress.

    jobyard report --progress 75 --step processing_images --meta imagesProcessed=750

Uses the job's ``JOBYARD_URL``, ``JOBYARD_JOB_ID`` and ``JOBYARD_JOB_TOKEN``. It never fails
the job that calls it: outside a job, with the server briefly away (a few quick retries) or
once the job's reports are closed, it warns on stderr and exits 0. Exit 2 for usage errors.

Stdlib only (argparse): the same command runs in the server's CLI (``jobyard.cli``) and, inside
a job whose identity cannot reach the server's environment, from the reporting client copied
for jobs (:mod:`jobyard.executors.jobclient`), under whatever ``python3`` the machine has.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from jobyard.telemetry.sender import job_env, next_seq, send_once

SUBSTATES = ("processing", "finalizing", "uploading")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jobyard report",
        description="Report progress from inside a job (it never fails the job).")
    p.add_argument("--progress", type=_percent, help="Percent done, 0 to 100.")
    p.add_argument("--step", help="What the job is doing now.")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE",
                   help="Metadata, merged into the job's (repeatable). VALUE is JSON if it "
                        "parses (750, true, [1,2]), else text.")
    p.add_argument("--items", metavar="DONE[/TOTAL]", help="Items done, and of how many.")
    p.add_argument("--throughput", type=_nonnegative, help="Items per second (see --unit).")
    p.add_argument("--unit", help="Throughput unit, e.g. img/s.")
    p.add_argument("--substate", choices=SUBSTATES, help="The job's phase.")
    p.add_argument("--metric", action="append", metavar="NAME=NUMBER",
                   help="A named number (repeatable).")
    p.add_argument("--output", action="append", metavar="NAME=PATH[:RECORDS]",
                   help="Declare an output file (repeatable).")
    return p


def main(argv: Sequence[str], url: str | None = None) -> int:
    """Run ``jobyard report`` with ``argv`` (its options); ``url`` overrides the job's."""
    p = parser()
    args = p.parse_args(list(argv))  # exits 2 on a usage error
    try:
        body = _body(args)
    except ValueError as exc:
        p.error(str(exc))
    env = job_env()
    if env is None:
        _warn("not running inside a Jobyard job (JOBYARD_JOB_TOKEN is not set); not reported")
        return 0
    status, answer = send_once(body, env=(url or env[0], env[1], env[2]))
    if status is not None and 200 <= status < 300:
        return 0
    if status == 422:  # a report the server will never take: a usage error
        print(f"jobyard report: refused: {answer}", file=sys.stderr)
        return 2
    _warn(f"not reported ({status or 'server unreachable'}): {answer}")
    return 0


def job_main(argv: Sequence[str] | None = None) -> int:
    """``jobyard [--url URL] report ...`` as a job without the full CLI runs it."""
    args = list(sys.argv[1:] if argv is None else argv)
    url = None
    if args[:1] == ["--url"] and len(args) > 1:
        url, args = args[1], args[2:]
    if args[:1] != ["report"]:
        print("jobyard: inside a job only `jobyard report` is available", file=sys.stderr)
        return 2
    return main(args[1:], url)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"seq": next_seq()}
    if args.progress is not None:
        body["progress"] = args.progress
    if args.step is not None:
        body["step"] = args.step
    if args.meta:
        body["metadata"] = dict(_pair(p, "--meta", _value) for p in args.meta)
    if args.items is not None:
        body.update(_items(args.items))
    if args.throughput is not None:
        unit = args.unit
        body["throughput"] = {"value": args.throughput, "unit": unit} if unit else args.throughput
    if args.substate is not None:
        body["substate"] = args.substate
    if args.metric:
        body["metrics"] = dict(_pair(m, "--metric", _number) for m in args.metric)
    if args.output:
        body["outputs"] = [_output(o) for o in args.output]
    return body


def _warn(message: str) -> None:
    print(f"jobyard report: {message}", file=sys.stderr)


def _pair(text: str, option: str, convert: Callable[[str, str], Any]) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{option}: {text!r} is not KEY=VALUE")
    return key, convert(value, option)


def _value(text: str, _option: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _number(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{option}: {text!r} is not a number")
    return value


def _percent(text: str) -> float:
    value = _number(text, "--progress")
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not in the range 0 to 100")
    return value


def _nonnegative(text: str) -> float:
    value = _number(text, "--throughput")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _items(text: str) -> dict[str, float]:
    done, _, total = text.partition("/")
    out = {"items_done": _number(done, "--items")}
    if total:
        out["items_total"] = _number(total, "--items")
    if min(out.values()) < 0:
        raise ValueError("--items: counts cannot be negative")
    return {k: int(v) if v.is_integer() else v for k, v in out.items()}


def _output(text: str) -> dict[str, object]:
    name, path = _pair(text, "--output", lambda v, _o: v)
    records = None
    head, sep, tail = path.rpartition(":")
    if sep and tail.isascii() and tail.isdigit():
        path, records = head, int(tail)
    if not path:
        raise ValueError(f"--output: {text!r} has no path")
    return {"name": name, "path": os.path.abspath(path), "records": records}


if __name__ == "__main__":
    sys.exit(job_main())
