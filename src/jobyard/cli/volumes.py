"""``jobyard storage ...``: create, list, show, edit, destroy, attach and detach volumes.

The command group keeps the API's (and TensorPool's ``tp storage``) name. Every change is an
operation (``jobyard request ...``, :mod:`jobyard.cli.operations`): the command prints its id,
or with ``--wait`` polls it and exits 1 if it FAILED.
"""

from __future__ import annotations

from collections.abc import Iterable

import typer
from rich.table import Table

from jobyard.cli import client, render
from jobyard.cli.operations import TIMEOUT_OPTION, WAIT_OPTION, finish
from jobyard.cli.render import JSON_OPTION
from jobyard.sdk.volumes import Volume

volume_app = typer.Typer(help="Storage volumes: create, list, edit, destroy.",
                          no_args_is_help=True)


def _gb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.2f} GB"


def volumes_table(vols: Iterable[Volume]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "NAME", "STATE", "SIZE", "USED", "ATTACHED"):
        table.add_column(col)
    for v in vols:
        used = _gb(v.used_bytes) + (" [red](over quota)[/red]" if v.over_quota else "")
        table.add_row(v.id, v.name, v.state, f"{v.size_gb} GB", used,
                      ", ".join(v.attachments) or "-")
    return table


@volume_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Unique in your org."),
    size_gb: int = typer.Option(..., "--size-gb", "-s", help="Size in GB (10^9 bytes)."),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Create a volume (a directory on the server, of at most SIZE GB)."""
    with client(ctx) as c:
        finish(c, c.volumes.create(name, size_gb), wait, timeout)


@volume_app.command("ls")
def ls(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List your org's volumes."""
    with client(ctx) as c:
        vols = c.volumes.list()
    render.show(vols, volumes_table, as_json)


@volume_app.command("show")
def show(ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
         as_json: bool = JSON_OPTION) -> None:
    """Show one volume, with its usage."""
    with client(ctx) as c:
        vol = c.volumes.get(volume_id)
    render.show_one(vol, volumes_table, as_json)


@volume_app.command("edit")
def edit(
    ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
    name: str | None = typer.Option(None, "--name", help="A new name."),
    size_gb: int | None = typer.Option(None, "--size-gb", "-s", help="A larger size, GB."),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Rename a volume and/or grow it (volumes never shrink)."""
    with client(ctx) as c:
        finish(c, c.volumes.edit(volume_id, name=name, size_gb=size_gb), wait, timeout)


@volume_app.command("destroy")
def destroy(
    ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Destroy a volume and its files (refused while it is attached to a cluster)."""
    with client(ctx) as c:
        finish(c, c.volumes.destroy(volume_id), wait, timeout)


@volume_app.command("attach")
def attach(
    ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
    cluster_id: str = typer.Argument(..., metavar="CLUSTER_ID"),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Attach a volume to a ready cluster of your org."""
    with client(ctx) as c:
        finish(c, c.volumes.attach(volume_id, cluster_id), wait, timeout)


@volume_app.command("detach")
def detach(
    ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
    cluster_id: str = typer.Argument(..., metavar="CLUSTER_ID"),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Detach a volume from a cluster."""
    with client(ctx) as c:
        finish(c, c.volumes.detach(volume_id, cluster_id), wait, timeout)


def register(app: typer.Typer) -> None:
    app.add_typer(volume_app, name="storage")
