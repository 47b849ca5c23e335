"""How the CLI shows things: Rich tables for listings, a fact sheet for one job, and the
one-line red error. Tables and facts go to stdout; hints and errors go to stderr."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jobyard.sdk.accounts import ApiKey, Org, User
from jobyard.sdk.jobs import Job

STATE_STYLES = {
    "queued": "yellow",
    "launching": "cyan",
    "running": "green",
    "paused": "yellow",
    "canceling": "magenta",
    "completed": "bold green",
    "error": "bold red",
    "failed": "bold red",
    "timeout": "bold red",
    "canceled": "magenta",
}


JSON_OPTION = typer.Option(False, "--json", help="Print the API's JSON.")


def out() -> Console:
    # Made per call: the console picks up sys.stdout as it is now (tests swap it).
    return Console(highlight=False)


def error(message: str) -> None:
    """The CLI's error line: red, one line, on stderr."""
    typer.secho(f"error: {' '.join(message.split())}", fg="red", err=True)


def hint(message: str) -> None:
    """A dim note or next step on stderr (keeps stdout clean for scripts)."""
    typer.secho(message, dim=True, err=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def show(items: list[Any], table: Callable[[list[Any]], Any], as_json: bool) -> None:
    """Items as the API's JSON (``--json``) or as a table."""
    if as_json:
        print_json([item.raw for item in items])
    else:
        out().print(table(items))


def show_one(item: Any, table: Callable[[list[Any]], Any], as_json: bool) -> None:
    """One item as the API's JSON (``--json``) or as a one-row table."""
    if as_json:
        print_json(item.raw)
    else:
        out().print(table([item]))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def age(when: datetime | None) -> str:
    if when is None:
        return "-"
    return duration((datetime.now(UTC) - when).total_seconds()) + " ago"


def state(job: Job) -> str:
    style = STATE_STYLES.get(job.state, "")
    return f"[{style}]{job.state}[/]" if style else job.state


def jobs_table(jobs: Iterable[Job]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("#", justify="right")
    table.add_column("NAME", overflow="fold")
    table.add_column("STATE", no_wrap=True)
    table.add_column("AGE", no_wrap=True)
    table.add_column("DURATION", no_wrap=True)
    table.add_column("EXIT", justify="right")
    table.add_column("GPUS", justify="right")
    for job in jobs:
        table.add_row(
            job.id, str(job.number or ""), escape(job.name or ""), state(job),
            age(job.created_at), duration(job.duration_s),
            "" if job.exit_code is None else str(job.exit_code), str(job.gpus),
        )
    return table


def _command(job: Job) -> str:
    cmd = job.command
    if isinstance(cmd, list):
        return shlex.join(cmd)
    return cmd or ""


def _waiting(waiting: dict[str, Any]) -> str:
    parts = [str(waiting.get("reason", "?"))]
    for res, need in (waiting.get("waiting_for") or {}).items():
        if isinstance(need, dict):
            parts.append(f"{res}: {need.get('requested')} requested, {need.get('free')} free")
        else:
            parts.append(f"{res}: {need}")
    if waiting.get("position") is not None:
        parts.append(f"position {waiting['position']}")
    if waiting.get("estimated_start"):
        parts.append(f"estimated start {waiting['estimated_start']}")
    return "; ".join(parts)


def _receipt(receipt: dict[str, Any]) -> str:
    parts = [" → ".join(receipt.get("signals") or []) or "no signal"]
    if "sigterm_obeyed" in receipt:
        parts.append("SIGTERM obeyed" if receipt["sigterm_obeyed"] else "SIGTERM not obeyed")
    if receipt.get("time_to_stop_s") is not None:
        parts.append(f"stopped in {receipt['time_to_stop_s']:.2f}s")
    if receipt.get("processes_killed"):
        parts.append(f"killed {len(receipt['processes_killed'])} process(es)")
    if receipt.get("processes_signaled") is not None:
        parts.append(f"{receipt['processes_signaled']} signaled")
    return ", ".join(parts)


def job_facts(job: Job) -> Table:
    """The key facts of one job, as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            grid.add_row(label, value if isinstance(value, str) else str(value))

    row("id", f"{job.id} (#{job.number})" if job.number is not None else job.id)
    row("name", escape(job.name or ""))
    row("state", state(job) + (f" ({job.substate})" if job.substate else ""))
    row("command", escape(_command(job)))
    res = job.resources
    row("resources", f"gpus={res.get('gpus', 0)} cpus={res.get('cpus', 1):g} "
                     f"memory_mb={res.get('memory_mb', 0)}")
    if job.assigned and job.assigned.get("gpus"):
        row("assigned gpus", ", ".join(str(g) for g in job.assigned["gpus"]))
    row("tags", ", ".join(job.tags))
    row("priority", job.priority or None)
    row("created", f"{job.created_at:%Y-%m-%d %H:%M:%S} ({age(job.created_at)})"
        if job.created_at else None)
    row("started", f"{job.started_at:%Y-%m-%d %H:%M:%S}" if job.started_at else None)
    row("finished", f"{job.finished_at:%Y-%m-%d %H:%M:%S}" if job.finished_at else None)
    row("duration", duration(job.duration_s) if job.started_at else None)
    row("time limit", duration(job.time_limit_s) if job.time_limit_s else None)
    attempts = (job.retry or {}).get("max_retries", 0) + 1
    row("attempt", f"{job.attempt} of {attempts}" if attempts > 1 else None)
    row("exit code", job.exit_code)
    if job.waiting:
        row("waiting", escape(_waiting(job.waiting)))
    if job.next_retry_at:
        row("next retry", f"{job.next_retry_at:%Y-%m-%d %H:%M:%S}")
    if job.error:
        row("error", escape(f"{job.error.get('code', '')}: {job.error.get('message', '')}"))
    row("message", escape(job.message or ""))
    if job.cancel_requested_at:
        row("cancel asked", f"{job.cancel_requested_at:%Y-%m-%d %H:%M:%S}")
    if job.cancel_receipt:
        row("cancel receipt", _receipt(job.cancel_receipt))
    return grid


def keys_table(keys: Iterable[ApiKey]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "NAME", "PREFIX", "USER", "CREATED", "REVOKED"):
        table.add_column(col, no_wrap=col != "NAME")
    for k in keys:
        table.add_row(
            str(k.id), escape(k.name or ""), k.prefix or "", str(k.username or k.user_id or ""),
            age(k.created_at), f"[red]{age(k.revoked_at)}[/]" if k.revoked_at else "",
        )
    return table


def users_table(users: Iterable[User]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "USERNAME", "ORG", "ADMIN", "CREATED"):
        table.add_column(col)
    for u in users:
        table.add_row(str(u.id or ""), escape(u.username), escape(u.org or str(u.org_id or "")),
                      "yes" if u.is_admin else "", age(u.created_at))
    return table


def orgs_table(orgs: Iterable[Org]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "NAME", "CREATED"):
        table.add_column(col)
    for o in orgs:
        table.add_row(str(o.id or ""), escape(o.name), age(o.created_at))
    return table
