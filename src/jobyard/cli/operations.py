"""``jobyard request ...``: show an operation (the API's async request), or wait for it; and
how every command that starts one (``storage``, ``cluster``) prints it or, with ``--wait``,
polls it (honouring the server's ``Retry-After``) and exits 1 if it FAILED.
"""

from __future__ import annotations

import typer

from jobyard.cli import client, render
from jobyard.cli.render import JSON_OPTION
from jobyard.errors import JobyardError
from jobyard.sdk.client import Client
from jobyard.sdk.clusters import ClusterAccepted
from jobyard.sdk.operations import Operation
from jobyard.sdk.volumes import VolumeAccepted

operation_app = typer.Typer(help="Async requests: show one, or wait for it.", no_args_is_help=True)

WAIT_OPTION = typer.Option(False, "--wait", help="Wait until the request completes or fails.")
TIMEOUT_OPTION = typer.Option(None, "--timeout", help="With --wait: give up after SECONDS.")


def operation_line(op: Operation) -> str:
    return f"{op.id} {op.type} {op.status}" + (f": {op.external_message}"
                                                 if op.external_message else "")


def _ended(op: Operation) -> None:
    typer.echo(operation_line(op))
    if op.status != "COMPLETED":
        raise JobyardError(f"request {op.id} {op.status.lower()}")


def finish(c: Client, accepted: VolumeAccepted | ClusterAccepted, wait: bool,
           timeout: float | None) -> None:
    """Print the operation, or with ``wait`` wait for it (exit 1 if it did not complete)."""
    if not wait:
        typer.echo(f"{accepted.request_id} {accepted.request.type} for "
                   f"{accepted.request.object_id}")
        render.hint(f"follow it: jobyard request wait {accepted.request_id}")
        return
    _ended(c.operations.wait(accepted.request_id, timeout=timeout))


@operation_app.command("show")
def show(ctx: typer.Context, operation_id: str = typer.Argument(..., metavar="ID"),
         as_json: bool = JSON_OPTION) -> None:
    """Show an async request."""
    with client(ctx) as c:
        op = c.operations.get(operation_id)
    if as_json:
        render.print_json(op.raw)
    else:
        typer.echo(operation_line(op))


@operation_app.command("wait")
def wait(ctx: typer.Context, operation_id: str = typer.Argument(..., metavar="ID"),
         timeout: float | None = TIMEOUT_OPTION) -> None:
    """Wait for an async request; exit 1 if it failed."""
    with client(ctx) as c:
        op = c.operations.wait(operation_id, timeout=timeout)
    _ended(op)


def register(app: typer.Typer) -> None:
    app.add_typer(operation_app, name="request")
