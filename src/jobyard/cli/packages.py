"""``jobyard package ...`` and ``jobyard schedule ...``: Integrate.io's packages (a named
command with default variables) and schedules (run a package every N units)."""

from __future__ import annotations

from collections.abc import Iterable

import typer
from rich.table import Table

from jobyard.cli import client, render
from jobyard.cli.render import JSON_OPTION
from jobyard.sdk.packages import Package, Schedule

package_app = typer.Typer(help="Packages: named commands with default variables.",
                          no_args_is_help=True)
schedule_app = typer.Typer(help="Schedules: run a package every N minutes/hours/days/...",
                           no_args_is_help=True)
VAR_OPTION = typer.Option(None, "--var", "-v", help="NAME=VALUE (repeatable).")


def _vars(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        out[name] = value
    return out


def _ref(ref: str) -> int | str:
    return int(ref) if ref.isascii() and ref.isdigit() else ref


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if hasattr(value, "strftime") else "-"


def packages_table(items: Iterable[Package]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "NAME", "COMMAND", "VARIABLES", "RESOURCES"):
        table.add_column(col)
    for p in items:
        command = p.command if isinstance(p.command, str) else " ".join(p.command or [])
        res = p.resources
        table.add_row(str(p.id), p.name, command,
                      " ".join(f"{k}={v}" for k, v in p.variables.items()) or "-",
                      f"{res.get('gpus', 0)} GPU, {res.get('cpus', 1):g} CPU")
    return table


def schedules_table(items: Iterable[Schedule]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "NAME", "PACKAGE", "EVERY", "STATUS", "NEXT RUN", "RUNS", "LAST"):
        table.add_column(col)
    for s in items:
        table.add_row(str(s.id), s.name, str(s.package.get("name") or s.package.get("id")),
                      f"{s.interval_amount} {s.interval_unit}", s.status, _when(s.next_run_at),
                      str(s.execution_count), s.last_run_state or "-")
    return table


# packages ----------------------------------------------------------------------------------
@package_app.command("create")
def create_package(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Unique in your org."),
    command: list[str] = typer.Argument(
        ..., metavar="-- CMD",
        help="The command (argv). One argument containing spaces runs as a shell string."),
    var: list[str] | None = VAR_OPTION,
    gpus: int = typer.Option(0, "--gpus", min=0, help="GPUs each run needs."),
    cpus: float = typer.Option(1.0, "--cpus", help="CPUs each run needs."),
    memory_mb: int = typer.Option(0, "--memory-mb", min=0, help="Memory each run needs (MB)."),
    description: str | None = typer.Option(None, "--description", help="What it does."),
) -> None:
    """Define a package; runs get its variables as environment variables."""
    argv = list(command)
    cmd: str | list[str] = argv[0] if len(argv) == 1 and " " in argv[0] else argv
    with client(ctx) as c:
        p = c.packages.create(name, cmd, _vars(var), gpus=gpus, cpus=cpus,
                              memory_mb=memory_mb, description=description)
    typer.echo(f"package {p.id} {p.name}")
    render.hint(f"schedule it: jobyard schedule create NAME --package {p.id} --every 1 "
                "--unit days")


@package_app.command("ls")
def ls_packages(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List your org's packages, newest first."""
    with client(ctx) as c:
        items = c.packages.list()
    render.show(items, packages_table, as_json)


@package_app.command("show")
def show_package(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID|NAME"),
                 as_json: bool = JSON_OPTION) -> None:
    """Show one package."""
    with client(ctx) as c:
        p = c.packages.get(_ref(ref))
    render.show_one(p, packages_table, as_json)


@package_app.command("rm")
def rm_package(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID|NAME")) -> None:
    """Delete a package (refused while a schedule runs it)."""
    with client(ctx) as c:
        gone = c.packages.delete(_ref(ref))
    typer.echo(f"package {gone['id']} deleted")


# schedules ---------------------------------------------------------------------------------
@schedule_app.command("create")
def create_schedule(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    package: str = typer.Option(..., "--package", "-p", help="The package's id or name."),
    every: int = typer.Option(..., "--every", min=1, help="Run every N units."),
    unit: str = typer.Option("hours", "--unit",
                             help="minutes, hours, days, weeks or months."),
    start: str | None = typer.Option(None, "--start",
                                     help="First run, ISO 8601 \\[default: now]."),
    var: list[str] | None = VAR_OPTION,
    description: str | None = typer.Option(None, "--description"),
    disabled: bool = typer.Option(False, "--disabled", help="Create it disabled."),
) -> None:
    """Run a package every N units from START (variables override the package's)."""
    with client(ctx) as c:
        s = c.schedules.create(name, _ref(package), every, unit, start, _vars(var),
                               description, enabled=not disabled)
    typer.echo(f"schedule {s.id} {s.name}: next run {_when(s.next_run_at)}")


@schedule_app.command("ls")
def ls_schedules(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List your org's schedules, newest first."""
    with client(ctx) as c:
        items = c.schedules.list()
    render.show(items, schedules_table, as_json)


@schedule_app.command("show")
def show_schedule(ctx: typer.Context, schedule_id: int = typer.Argument(..., metavar="ID"),
                  as_json: bool = JSON_OPTION) -> None:
    """Show one schedule and its last run."""
    with client(ctx) as c:
        s = c.schedules.get(schedule_id)
    render.show_one(s, schedules_table, as_json)


@schedule_app.command("rm")
def rm_schedule(ctx: typer.Context, schedule_id: int = typer.Argument(..., metavar="ID")
                ) -> None:
    """Delete a schedule (the jobs it ran stay)."""
    with client(ctx) as c:
        gone = c.schedules.delete(schedule_id)
    typer.echo(f"schedule {gone['id']} deleted")


@schedule_app.command("enable")
def enable(ctx: typer.Context, schedule_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Enable a schedule (its next run is planned from now)."""
    with client(ctx) as c:
        s = c.schedules.enable(schedule_id)
    typer.echo(f"schedule {s.id} enabled: next run {_when(s.next_run_at)}")


@schedule_app.command("disable")
def disable(ctx: typer.Context, schedule_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Disable a schedule (no runs until it is enabled again)."""
    with client(ctx) as c:
        s = c.schedules.disable(schedule_id)
    typer.echo(f"schedule {s.id} disabled")


def register(app: typer.Typer) -> None:
    app.add_typer(package_app, name="package")
    app.add_typer(schedule_app, name="schedule")
