"""How the CLI shows things: Rich tables for listings, a fact sheet for one job, and the
one-line red error. Tables and facts go to stdout; hints and errors go to stderr."""

from __future__ import annotations

import json
import shlex
import sys
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


PIPED_WIDTH = 240  # tables written to a pipe or file are not cut to a terminal's width


def out() -> Console:
    # Made per call: the console picks up sys.stdout as it is now (tests swap it).
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)


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


def size(nbytes: float | None) -> str | None:
    """Bytes as people read them (``734.0 MB``)."""
    if nbytes is None:
        return None
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} B"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def bar(value: float | None, width: int = 20) -> str:
    """A progress bar in markup: ``████░░░░ 45%``."""
    if value is None:
        return "-"
    done = round(max(0.0, min(100.0, value)) / 100 * width)
    return f"[green]{'█' * done}[/][dim]{'░' * (width - done)}[/] {percent(value)}"


def eta(job: Job) -> str | None:
    """When the job should be done, from its progress rate (running jobs only)."""
    if job.estimated_completion is None or job.is_terminal:
        return None
    left = (job.estimated_completion - datetime.now(UTC)).total_seconds()
    clock = f"{job.estimated_completion.astimezone():%H:%M:%S}"
    return f"in {duration(left)} ({clock})" if left > 0 else f"any moment ({clock})"


def rate(job: Job) -> str | None:
    """The throughput it reports (``43.1 img/s``)."""
    throughput = job.throughput
    if not throughput or throughput.get("value") is None:
        return None
    return f"{throughput['value']:g} {throughput.get('unit') or '/s'}"


def items(job: Job) -> str | None:
    done, total = (job.items or {}).get("done"), (job.items or {}).get("total")
    if done is None and total is None:
        return None
    return f"{'?' if done is None else done}/{'?' if total is None else total}"


def money(cost: dict[str, Any] | None) -> str | None:
    """What it cost so far (``accrued``), or in all once it ended (``total``)."""
    if not cost:
        return None
    amount = cost.get("total") if cost.get("total") is not None else cost.get("accrued")
    return None if amount is None else f"{amount:.4f} {cost.get('currency') or 'USD'}"


def peaks(job: Job, metrics: dict[str, Any] | None = None) -> str | None:
    """Peak CPU, memory and GPU use: the metrics' (live) or the efficiency report's."""
    parts = []
    found = (metrics or {}).get("peaks") or {}
    report = job.efficiency or {}
    cpu = found.get("cpu_percent", (report.get("cpu") or {}).get("peak_percent"))
    rss = found.get("rss_bytes", (report.get("memory") or {}).get("peak_rss_bytes"))
    if cpu is not None:
        parts.append(f"CPU {cpu:.0f}%")
    if rss is not None:
        parts.append(f"memory {size(rss)}")
    for gpu in found.get("gpus") or report.get("gpus") or []:
        use = gpu.get("utilization", gpu.get("peak_utilization"))
        if use is not None:
            parts.append(f"GPU {gpu.get('index')} {use:.0f}%")
    return ", ".join(parts) or None


def summary(job: Job) -> str:
    """One line for a job that ended: state, how long, cost, peak memory."""
    parts = [f"job {job.id} {job.state} in {duration(job.duration_s)}"]
    if cost := money(job.cost):
        parts.append(f"cost {cost}")
    rss = (job.efficiency or {}).get("memory", {}).get("peak_rss_bytes")
    if rss is not None:
        parts.append(f"peak memory {size(rss)}")
    return " · ".join(parts)


def state(job: Job) -> str:
    style = STATE_STYLES.get(job.state, "")
    return f"[{style}]{job.state}[/]" if style else job.state


def jobs_table(jobs: Iterable[Job]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("#", justify="right")
    table.add_column("NAME", overflow="fold")
    table.add_column("STATE", no_wrap=True)
    table.add_column("PROGRESS", justify="right", no_wrap=True)
    table.add_column("AGE", no_wrap=True)
    table.add_column("DURATION", no_wrap=True)
    table.add_column("EXIT", justify="right")
    table.add_column("GPUS", justify="right")
    for job in jobs:
        table.add_row(
            job.id, str(job.number or ""), escape(job.name or ""), state(job),
            percent(job.progress), age(job.created_at), duration(job.duration_s),
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


def top_table(rows: Iterable[tuple[Job, dict[str, Any] | None]]) -> Table:
    """Running jobs with what they report and use now (``jobyard top``)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "NAME", "STATE", "PROGRESS", "STEP", "RATE", "ETA", "CPU", "MEMORY",
                "COST"):
        table.add_column(col, no_wrap=col not in ("NAME", "STEP"),
                         justify="right" if col in ("CPU", "MEMORY", "COST") else "left")
    for job, metrics in rows:
        latest = (metrics or {}).get("latest") or {}
        cpu = latest.get("cpu_percent")
        table.add_row(
            job.id, escape(job.name or ""), state(job), bar(job.progress, 12),
            escape(job.current_step or ""), rate(job) or items(job) or "",
            eta(job) or "", "" if cpu is None else f"{cpu:.0f}%",
            size(latest.get("rss_bytes")) or "", money((metrics or {}).get("cost") or job.cost)
            or "")
    return table


def job_facts(job: Job, metrics: dict[str, Any] | None = None) -> Table:
    """The key facts of one job, as a two-column grid (``metrics``: its live peaks)."""
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
    if job.progress is not None:
        row("progress", bar(job.progress))
    row("step", escape(job.current_step or ""))
    row("items", items(job))
    row("rate", rate(job))
    row("eta", eta(job))
    row("cost", money(job.cost))
    row("peaks", peaks(job, metrics))
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
