"""``jobyard endpoint ...``: create, list, show and remove endpoints (named job templates that
TensorOne clients run: ``POST /v2/endpoints/ep_<name>/run``)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

import typer
from rich.markup import escape
from rich.table import Table

from jobyard.cli import client, render
from jobyard.cli.jobs import _parse_env
from jobyard.cli.render import JSON_OPTION
from jobyard.sdk.endpoints import Endpoint

endpoint_app = typer.Typer(help="Endpoints: job templates run with an input (TensorOne API).",
                           no_args_is_help=True)


def endpoints_table(endpoints: Iterable[Endpoint]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "COMMAND", "GPUS", "CPUS", "MEMORY MB", "TIME LIMIT", "CREATED"):
        table.add_column(col)
    for ep in endpoints:
        command = ep.command if isinstance(ep.command, str) else shlex.join(ep.command)
        res = ep.resources
        table.add_row(ep.id, escape(command), str(res.get("gpus", 0)),
                      f"{res.get('cpus', 1):g}", str(res.get("memory_mb", 0)),
                      render.duration(ep.time_limit_s) if ep.time_limit_s else "-",
                      ep.created_at.strftime("%Y-%m-%d %H:%M") if ep.created_at else "-")
    return table


@endpoint_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Letters, digits, '_', '-'; the id is ep_NAME."),
    command: list[str] = typer.Argument(
        ..., metavar="CMD",
        help="The command (argv). One argument containing spaces runs as a shell string."),
    gpus: int = typer.Option(0, "--gpus", min=0, help="GPUs each run reserves."),
    cpus: float = typer.Option(1.0, "--cpus", help="CPUs each run reserves."),
    memory_mb: int = typer.Option(0, "--memory-mb", min=0, help="Memory each run reserves."),
    time_limit: float | None = typer.Option(None, "--time-limit",
                                            help="Seconds before a run times out."),
    env: list[str] | None = typer.Option(None, "--env", "-e", help="K=V (repeatable)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create endpoint ep_NAME running CMD; each run gets its input in $TENSORONE_INPUT_FILE."""
    argv = list(command)
    cmd: str | list[str] = argv[0] if len(argv) == 1 and " " in argv[0] else argv
    with client(ctx) as c:
        ep = c.endpoints.create(name, cmd, env=_parse_env(env or []), gpus=gpus, cpus=cpus,
                                memory_mb=memory_mb, time_limit_s=time_limit)
    if as_json:
        render.print_json(ep.raw)
        return
    typer.echo(ep.id)
    render.hint(f"run it: POST {c.url}/v2/endpoints/{ep.id}/run with {{\"input\": {{...}}}}")


@endpoint_app.command("ls")
def ls(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List your org's endpoints."""
    with client(ctx) as c:
        items = c.endpoints.list()
    if not items and not as_json:
        render.hint("no endpoints yet; create one: jobyard endpoint create NAME -- CMD...")
        return
    render.show(items, endpoints_table, as_json)


@endpoint_app.command("show")
def show(ctx: typer.Context, endpoint_id: str = typer.Argument(..., metavar="ID"),
         as_json: bool = JSON_OPTION) -> None:
    """Show one endpoint."""
    with client(ctx) as c:
        ep = c.endpoints.get(endpoint_id)
    render.show_one(ep, endpoints_table, as_json)


@endpoint_app.command("rm")
def rm(ctx: typer.Context, endpoint_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Delete an endpoint (jobs already run of it stay)."""
    with client(ctx) as c:
        c.endpoints.delete(endpoint_id)
    typer.echo(f"{endpoint_id} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(endpoint_app, name="endpoint")
