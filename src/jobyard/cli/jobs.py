"""Job commands: ``run``, ``ls``, ``status``, ``logs``, ``cancel``, ``pause``, ``resume``,
``wait``.

``run`` and ``wait`` exit with the job's outcome: completed → 0, error → the job's own exit
code (128+N when a signal N killed it), failed → 1, timeout → 124 (like ``timeout(1)``),
canceled → 130 (like Ctrl-C).
"""

from __future__ import annotations

import os
import sys

import typer

from jobyard.cli import client, render
from jobyard.errors import Conflict
from jobyard.sdk.client import Client
from jobyard.sdk.jobs import Job, LogLine

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


def _follow_to_end(c: Client, job_id: str) -> Job:
    """Print the job's log as it is written; on Ctrl-C offer to cancel. Returns the ended job."""
    offset = 0
    canceling = False
    while True:
        try:
            for line in c.jobs.logs(job_id, offset=offset, follow=True):
                _emit(line)
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
        job = _follow_to_end(c, job.id)
    if job.state != "completed":
        _outcome(job)
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
    """Show one job: state, resources, why it waits, how it ended or was canceled."""
    with client(ctx) as c:
        job = c.jobs.get(job_id)
    if as_json:
        render.print_json(job.raw)
        return
    render.out().print(render.job_facts(job))
    if not job.is_terminal:
        render.hint(f"follow it: jobyard logs -f {job.id}")


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
    for command in (status, logs, cancel, pause, resume, wait):
        app.command()(command)
