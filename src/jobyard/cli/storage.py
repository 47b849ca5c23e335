"""``jobyard storage ...`` (volumes) and ``jobyard request ...`` (async requests).

Every change is an async request: the command prints its id, or with ``--wait`` polls it
(honouring the server's ``Retry-After``) and exits 1 if it FAILED.
"""

from __future__ import annotations

from collections.abc import Iterable

import typer
from rich.table import Table

from jobyard.cli import client, render
from jobyard.errors import JobyardError
from jobyard.sdk.client import Client
from jobyard.sdk.clusters import ClusterAccepted
from jobyard.sdk.storage import Accepted, Request, Volume

storage_app = typer.Typer(help="Storage volumes: create, list, edit, destroy.",
                          no_args_is_help=True)
request_app = typer.Typer(help="Async requests: show one, or wait for it.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print the API's JSON.")
WAIT_OPTION = typer.Option(False, "--wait", help="Wait until the request completes or fails.")
TIMEOUT_OPTION = typer.Option(None, "--timeout", help="With --wait: give up after SECONDS.")


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


def request_line(r: Request) -> str:
    return f"{r.id} {r.type} {r.status}" + (f": {r.external_message}"
                                              if r.external_message else "")


def finish(c: Client, accepted: Accepted | ClusterAccepted, wait: bool,
           timeout: float | None) -> None:
    """Print the request, or with ``wait`` wait for it (exit 1 if it did not complete)."""
    if not wait:
        typer.echo(f"{accepted.request_id} {accepted.request.type} for "
                   f"{accepted.request.object_id}")
        render.hint(f"follow it: jobyard request wait {accepted.request_id}")
        return
    done = c.requests.wait(accepted.request_id, timeout=timeout)
    typer.echo(request_line(done))
    if done.status != "COMPLETED":
        raise JobyardError(f"request {done.id} {done.status.lower()}")


@storage_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Unique in your org."),
    size_gb: int = typer.Option(..., "--size-gb", "-s", help="Size in GB (10^9 bytes)."),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Create a volume (a directory on the server, of at most SIZE GB)."""
    with client(ctx) as c:
        finish(c, c.storage.create(name, size_gb), wait, timeout)


@storage_app.command("ls")
def ls(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List your org's volumes."""
    with client(ctx) as c:
        vols = c.storage.list()
    render.show(vols, volumes_table, as_json)


@storage_app.command("show")
def show(ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
         as_json: bool = JSON_OPTION) -> None:
    """Show one volume, with its usage."""
    with client(ctx) as c:
        vol = c.storage.get(volume_id)
    render.show_one(vol, volumes_table, as_json)


@storage_app.command("edit")
def edit(
    ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
    name: str | None = typer.Option(None, "--name", help="A new name."),
    size_gb: int | None = typer.Option(None, "--size-gb", "-s", help="A larger size, GB."),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Rename a volume and/or grow it (volumes never shrink)."""
    with client(ctx) as c:
        finish(c, c.storage.edit(volume_id, name=name, size_gb=size_gb), wait, timeout)


@storage_app.command("destroy")
def destroy(
    ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Destroy a volume and its files (refused while it is attached to a cluster)."""
    with client(ctx) as c:
        finish(c, c.storage.destroy(volume_id), wait, timeout)


@storage_app.command("attach")
def attach(
    ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
    cluster_id: str = typer.Argument(..., metavar="CLUSTER_ID"),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Attach a volume to a ready cluster of your org."""
    with client(ctx) as c:
        finish(c, c.storage.attach(volume_id, cluster_id), wait, timeout)


@storage_app.command("detach")
def detach(
    ctx: typer.Context, volume_id: str = typer.Argument(..., metavar="ID"),
    cluster_id: str = typer.Argument(..., metavar="CLUSTER_ID"),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Detach a volume from a cluster."""
    with client(ctx) as c:
        finish(c, c.storage.detach(volume_id, cluster_id), wait, timeout)


@request_app.command("show")
def request_show(ctx: typer.Context, request_id: str = typer.Argument(..., metavar="ID"),
                 as_json: bool = JSON_OPTION) -> None:
    """Show an async request."""
    with client(ctx) as c:
        req = c.requests.get(request_id)
    if as_json:
        render.print_json(req.raw)
    else:
        typer.echo(request_line(req))


@request_app.command("wait")
def request_wait(ctx: typer.Context, request_id: str = typer.Argument(..., metavar="ID"),
                 timeout: float | None = TIMEOUT_OPTION) -> None:
    """Wait for an async request; exit 1 if it failed."""
    with client(ctx) as c:
        done = c.requests.wait(request_id, timeout=timeout)
    typer.echo(request_line(done))
    if done.status != "COMPLETED":
        raise JobyardError(f"request {done.id} {done.status.lower()}")


def register(app: typer.Typer) -> None:
    app.add_typer(storage_app, name="storage")
    app.add_typer(request_app, name="request")
