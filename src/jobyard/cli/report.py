"""``jobyard report``: a shell job reports its progress.

    jobyard report --progress 75 --step processing_images --meta imagesProcessed=750

Uses the job's ``JOBYARD_URL``, ``JOBYARD_JOB_ID`` and ``JOBYARD_JOB_TOKEN``. It never fails
the job that calls it: outside a job, with the server briefly away (a few quick retries) or
once the job's reports are closed, it warns on stderr and exits 0. Exit 2 for usage errors.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import typer

from jobyard.cli import Globals
from jobyard.telemetry.sender import job_env, next_seq, send_once

SUBSTATES = ("processing", "finalizing", "uploading")


def report(
    ctx: typer.Context,
    progress: float | None = typer.Option(
        None, "--progress", min=0, max=100, help="Percent done, 0 to 100."),
    step: str | None = typer.Option(None, "--step", help="What the job is doing now."),
    meta: list[str] | None = typer.Option(
        None, "--meta", metavar="KEY=VALUE",
        help="Metadata, merged into the job's (repeatable). VALUE is JSON if it parses "
             "(750, true, [1,2]), else text."),
    items: str | None = typer.Option(None, "--items", metavar="DONE[/TOTAL]",
                                     help="Items done, and of how many."),
    throughput: float | None = typer.Option(None, "--throughput", min=0,
                                            help="Items per second (see --unit)."),
    unit: str | None = typer.Option(None, "--unit", help="Throughput unit, e.g. img/s."),
    substate: str | None = typer.Option(
        None, "--substate", metavar="|".join(SUBSTATES), help="The job's phase."),
    metric: list[str] | None = typer.Option(
        None, "--metric", metavar="NAME=NUMBER", help="A named number (repeatable)."),
    output: list[str] | None = typer.Option(
        None, "--output", metavar="NAME=PATH[:RECORDS]",
        help="Declare an output file (repeatable)."),
) -> None:
    """Report progress from inside a job (it never fails the job)."""
    body: dict[str, object] = {"seq": next_seq()}
    if progress is not None:
        body["progress"] = progress
    if step is not None:
        body["step"] = step
    if meta:
        body["metadata"] = dict(_pair(p, "--meta", _value) for p in meta)
    if items is not None:
        body.update(_items(items))
    if throughput is not None:
        body["throughput"] = {"value": throughput, "unit": unit} if unit else throughput
    if substate is not None:
        if substate not in SUBSTATES:
            raise typer.BadParameter(f"expected one of {', '.join(SUBSTATES)}",
                                     param_hint="--substate")
        body["substate"] = substate
    if metric:
        body["metrics"] = dict(_pair(m, "--metric", _number) for m in metric)
    if output:
        body["outputs"] = [_output(o) for o in output]
    env = job_env()
    if env is None:
        _warn("not running inside a Jobyard job (JOBYARD_JOB_TOKEN is not set); not reported")
        return
    g = ctx.find_object(Globals) or Globals()
    status, answer = send_once(body, env=(g.url or env[0], env[1], env[2]))
    if status is not None and 200 <= status < 300:
        return
    if status == 422:  # a report the server will never take: a usage error
        typer.secho(f"jobyard report: refused: {answer}", err=True, fg="red")
        raise typer.Exit(2)
    _warn(f"not reported ({status or 'server unreachable'}): {answer}")


def register(app: typer.Typer) -> None:
    app.command()(report)


def _warn(message: str) -> None:
    typer.secho(f"jobyard report: {message}", err=True, fg="yellow")


def _pair(text: str, option: str, convert: Callable[[str, str], Any]) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r} is not KEY=VALUE", param_hint=option)
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
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=option)
    return value


def _items(text: str) -> dict[str, float]:
    done, _, total = text.partition("/")
    out = {"items_done": _number(done, "--items")}
    if total:
        out["items_total"] = _number(total, "--items")
    if min(out.values()) < 0:
        raise typer.BadParameter("counts cannot be negative", param_hint="--items")
    return {k: int(v) if v.is_integer() else v for k, v in out.items()}


def _output(text: str) -> dict[str, object]:
    name, path = _pair(text, "--output", lambda v, _o: v)
    records = None
    head, sep, tail = path.rpartition(":")
    if sep and tail.isascii() and tail.isdigit():
        path, records = head, int(tail)
    if not path:
        raise typer.BadParameter(f"{text!r} has no path", param_hint="--output")
    return {"name": name, "path": os.path.abspath(path), "records": records}
