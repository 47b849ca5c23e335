"""Job commands: ``run``, ``ls``, ``status``, ``top``, ``logs``, ``cancel``, ``pause``,
``resume``, ``wait``.

On a terminal, ``run`` shows a live progress bar (percent, step, rate, ETA: what the job
reports, or its tqdm bar as the server reads it) under the streamed log, and ``top`` a live
table; piped, both print plain text.

``run`` and ``wait`` exit with the job's outcome: completed → 0, error → the job's own exit
code (128+N when a signal N killed it), failed → 1, timeout → 124 (like ``timeout(1)``),
canceled → 130 (like Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from jobyard.cli import client, render
from jobyard.errors import Conflict
from jobyard.sdk.client import Client
from jobyard.sdk.jobs import Job, LogLine

POLL_S = 0.5  # how often run's bar and top look at the server
EXIT_FAILED = 1
EXIT_TIMEOUT = 124
EXIT_CANCELED = 130


def exit_code_for(job: Job) -> int:
    """The process exit code that stands for the job's outcome (see module docs)."""
    if job.state == "completed":
        return 0
    if job.state == "error":
        code = job.exit_code
        if code is None or code == 0 or code > 255:
            return EXIT_FAILED
        return min(128 - code, 255) if code < 0 else code
    return {"timeout": EXIT_TIMEOUT, "canceled": EXIT_CANCELED}.get(job.state, EXIT_FAILED)


def _emit(line: LogLine) -> None:
    typer.echo(line.text, err=line.stream == "stderr")


def _outcome(job: Job) -> None:
    detail = f" (exit code {job.exit_code})" if job.exit_code not in (None, 0) else ""
    if job.error and job.error.get("message"):
        detail += f": {job.error['message']}"
    typer.secho(f"job {job.id} {job.state}{detail}", err=True,
                fg=None if job.state == "completed" else "red")


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:  # --env NAME passes this shell's value, like docker run -e NAME
            if key not in os.environ:
                raise typer.BadParameter(f"{key!r} is not K=V and not set here", param_hint="--env")
            value = os.environ[key]
        env[key] = value
    return env


def _should_cancel(job_id: str) -> bool:
    if not sys.stdin.isatty():
        return True  # nobody to ask: Ctrl-C / SIGINT means cancel
    try:
        return typer.confirm(f"\nCancel job {job_id}?", default=False, err=True)
    except typer.Abort:
        return False


def interactive() -> bool:
    """Whether a person watches (stdout and stderr are terminals): bars and live tables."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class ProgressBar:
    """A job's progress as a Rich bar on stderr, fed by :meth:`show` with the job as the
    server reports it; log lines printed meanwhile go above it (Rich redirects them)."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"),
            console=console or Console(stderr=True), transient=True)
        self.task: TaskID | None = None

    def emit(self, line: LogLine) -> None:
        """A log line, above the bar (both streams share the terminal the bar is on)."""
        self.progress.console.print(line.text, markup=False, highlight=False, soft_wrap=True,
                                    style="red" if line.stream == "stderr" else None)

    def show(self, job: Job) -> None:
        if job.progress is None:
            return
        step = job.current_step or job.id
        speed = render.rate(job) or render.items(job) or ""
        eta = ("ETA " + e) if (e := render.eta(job)) else ""
        if self.task is None:
            self.task = self.progress.add_task(step, total=100, completed=int(job.progress),
                                               rate=speed, eta=eta)
        else:
            self.progress.update(self.task, completed=job.progress, description=step,
                                 rate=speed, eta=eta)


def _watch(ctx: typer.Context, job_id: str, bar: ProgressBar, stop: threading.Event) -> None:
    """Feed ``bar`` with the job until ``stop`` (its own client: this runs in a thread)."""
    with client(ctx) as c:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a bar is a nicety: a failed look is no end
                bar.show(c.jobs.get(job_id))
            stop.wait(POLL_S)


def _follow_to_end(c: Client, job_id: str, ctx: typer.Context | None = None) -> Job:
    """Print the job's log as it is written (with a live progress bar under it when a person
    watches: ``ctx`` given); on Ctrl-C offer to cancel. Returns the ended job."""
    bar = ProgressBar() if ctx is not None and interactive() else None
    stop = threading.Event()
    if bar is not None:
        threading.Thread(target=_watch, args=(ctx, job_id, bar, stop), daemon=True).start()
    shown: AbstractContextManager[object] = bar.progress if bar is not None else nullcontext()
    with shown:
        try:
            return _follow(c, job_id, bar.emit if bar is not None else _emit)
        finally:
            stop.set()


def _follow(c: Client, job_id: str, emit: Callable[[LogLine], None]) -> Job:
    offset = 0
    canceling = False
    while True:
        try:
            for line in c.jobs.logs(job_id, offset=offset, follow=True):
                emit(line)
                offset = line.n + 1
            return c.jobs.wait(job_id)
        except KeyboardInterrupt:
            if canceling or not _should_cancel(job_id):
                render.hint(f"job {job_id} goes on; follow it: jobyard logs -f {job_id}")
                raise typer.Exit(EXIT_CANCELED) from None
            canceling = True
            try:
                c.jobs.cancel(job_id)
                render.hint(f"canceling job {job_id}…")
            except Conflict:
                pass  # it ended meanwhile: show the rest and its real outcome


def run(
    ctx: typer.Context,
    command: list[str] = typer.Argument(
        ..., metavar="CMD",
        help="The command (argv). One argument containing spaces runs as a shell string.",
    ),
    gpus: int = typer.Option(0, "--gpus", min=0, help="GPUs to reserve."),
    cpus: float = typer.Option(1.0, "--cpus", help="CPUs to reserve."),
    memory_mb: int = typer.Option(0, "--memory-mb", min=0, help="Memory to reserve (MB)."),
    name: str | None = typer.Option(None, "--name", help="Job name \\[default: the program]."),
    priority: int = typer.Option(0, "--priority", help="Higher runs first."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Seconds before timeout."),
    tag: list[str] | None = typer.Option(None, "--tag", help="A tag (repeatable)."),
    env: list[str] | None = typer.Option(None, "--env", "-e", help="K=V (repeatable)."),
    workdir: str | None = typer.Option(None, "--workdir", help="Working directory of the job."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Print the job id and return."),
    cluster: str | None = typer.Option(None, "--cluster",
                                       help="Run on one instance of this claimed cluster."),
    output: list[str] | None = typer.Option(
        None, "--output", help="A file, glob or dir/ to keep when it ends (repeatable)."),
) -> None:
    """Submit a job, stream its output, and exit with its exit code.

    Ctrl-C asks whether to cancel the job (cancels at once when stdin is not a terminal).
    Exit codes: completed 0, error: the job's own, failed 1, timeout 124, canceled 130.
    """
    argv = list(command)
    cmd: str | list[str] = argv[0] if len(argv) == 1 and " " in argv[0] else argv
    with client(ctx) as c:
        job = c.jobs.submit(
            cmd, name=name, env=_parse_env(env or []), workdir=workdir, gpus=gpus, cpus=cpus,
            memory_mb=memory_mb, priority=priority, time_limit_s=time_limit, tags=tag or [],
            cluster_id=cluster, outputs=output or [],
        )
        if detach:
            typer.echo(job.id)
            render.hint(f"follow it: jobyard logs -f {job.id}")
            render.hint(f"status:    jobyard status {job.id}")
            return
        render.hint(f"job {job.id} submitted ({job.state})")
        job = _follow_to_end(c, job.id, ctx)
    if job.state != "completed":
        _outcome(job)
    typer.secho(render.summary(job), err=True, dim=True)
    raise typer.Exit(exit_code_for(job))


def ls(
    ctx: typer.Context,
    state: str | None = typer.Option(None, "--state", help="Only jobs in this state."),
    tag: str | None = typer.Option(None, "--tag", help="Only jobs with this tag."),
    name: str | None = typer.Option(None, "--name", help="Only jobs with this name."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=500, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON."),
) -> None:
    """List jobs, newest first."""
    with client(ctx) as c:
        page = c.jobs.list_page(state=state, tag=tag, name=name, limit=limit)
    if as_json:
        render.print_json([j.raw for j in page.items])
        return
    if not page.items:
        render.hint("no jobs found; submit one: jobyard run -- echo hello")
        return
    render.out().print(render.jobs_table(page.items))
    if page.next_cursor:
        render.hint(f"the newest {limit} shown; more with --limit")


def status(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="job_... id or number"),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON."),
) -> None:
    """Show one job: state, progress, step, rate, ETA, cost, peaks, resources, why it waits,
    how it ended or was canceled."""
    with client(ctx) as c:
        job = c.jobs.get(job_id)
        if as_json:
            render.print_json(job.raw)
            return
        metrics = c.jobs.metrics(job.id) if job.started_at else None
    render.out().print(render.job_facts(job, metrics))
    if not job.is_terminal:
        render.hint(f"follow it: jobyard logs -f {job.id}")


TOP_STATES = ("running", "paused", "launching", "canceling")


def top(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=100, help="How many jobs."),
) -> None:
    """Running jobs, live: progress, step, rate, ETA, CPU, memory, cost (Ctrl-C ends it).
    Piped, one look."""
    with client(ctx) as c:
        if not interactive():
            render.out().print(render.top_table(_top_rows(c, limit)))
            return
        with Live(render.top_table(_top_rows(c, limit)), console=render.out(),
                  auto_refresh=False) as live:
            try:
                while True:
                    time.sleep(POLL_S * 2)
                    live.update(render.top_table(_top_rows(c, limit)), refresh=True)
            except KeyboardInterrupt:
                pass


def _top_rows(c: Client, limit: int) -> list[tuple[Job, dict[str, Any] | None]]:
    jobs = [j for s in TOP_STATES for j in c.jobs.list_page(state=s, limit=limit).items]
    jobs.sort(key=lambda j: j.created_at or 0, reverse=True)
    return [(j, c.jobs.metrics(j.id) if j.started_at else None) for j in jobs[:limit]]


def logs(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="job_... id or number"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream until the job ends."),
    tail: int | None = typer.Option(None, "--tail", min=1, max=10000, help="Last N lines."),
) -> None:
    """Print a job's output (stdout lines to stdout, stderr lines to stderr)."""
    with client(ctx) as c:
        if follow:
            try:
                for line in c.jobs.logs(job_id, tail=tail, follow=True):
                    _emit(line)
            except KeyboardInterrupt:
                raise typer.Exit(EXIT_CANCELED) from None
            return
        if tail is not None:
            for line in c.jobs.logs(job_id, tail=tail).lines:
                _emit(line)
            return
        offset = 0
        while True:
            page = c.jobs.logs(job_id, offset=offset)
            for line in page.lines:
                _emit(line)
            if page.eof or not page.lines:
                return
            offset = page.next_offset


def cancel(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="job_... id or number"),
) -> None:
    """Cancel a job (SIGTERM, then SIGKILL after the grace period)."""
    job = _change(ctx, job_id, "cancel")
    if not job.is_terminal:
        render.hint(f"wait for it: jobyard wait {job.id}")


def pause(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="job_... id or number"),
) -> None:
    """Pause a running job: its processes stop, its time limit stops running, it keeps its
    GPUs (and its cost keeps accruing)."""
    job = _change(ctx, job_id, "pause")
    render.hint(f"resume it: jobyard resume {job.id}")


def resume(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="job_... id or number"),
) -> None:
    """Resume a paused job where it stopped."""
    job = _change(ctx, job_id, "resume")
    render.hint(f"follow it: jobyard logs -f {job.id}")


def _change(ctx: typer.Context, job_id: str, action: str) -> Job:
    """Ask the server to ``action`` (cancel, pause, resume) a job; print its state."""
    with client(ctx) as c:
        job: Job = getattr(c.jobs, action)(job_id)
    typer.echo(f"{job.id}: {job.state}")
    return job


def wait(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="job_... id or number"),
    timeout: float | None = typer.Option(None, "--timeout", help="Give up after N seconds."),
) -> None:
    """Wait for a job to end; exit with its exit code (as `run` does)."""
    with client(ctx) as c:
        job = c.jobs.wait(job_id, timeout=timeout)
    code = f" (exit code {job.exit_code})" if job.exit_code is not None else ""
    typer.echo(f"{job.id}: {job.state}{code}")
    raise typer.Exit(exit_code_for(job))


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(run)
    app.command("ls")(ls)
    for command in (status, top, logs, cancel, pause, resume, wait):
        app.command()(command)
