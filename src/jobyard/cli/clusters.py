"""``jobyard cluster ...``: claim, list, show, edit and release clusters (each change is an
operation: ``jobyard request ...``)."""

from __future__ import annotations

from collections.abc import Iterable

import typer
from rich.table import Table

from jobyard.cli import client, render
from jobyard.cli.operations import TIMEOUT_OPTION, WAIT_OPTION, finish
from jobyard.cli.render import JSON_OPTION
from jobyard.sdk.clusters import Cluster

cluster_app = typer.Typer(help="Clusters: claim, list, edit, release.", no_args_is_help=True)


def clusters_table(clusters: Iterable[Cluster]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "NAME", "STATE", "TYPE", "COUNT", "GPUS", "VOLUMES"):
        table.add_column(col)
    for c in clusters:
        gpus = ",".join(str(g) for i in c.instances for g in i.get("gpus", [])) or "-"
        table.add_row(c.id, c.name, c.state, c.instance_type, str(c.instance_count), gpus,
                      ", ".join(c.attachments) or "-")
    return table


@cluster_app.command("claim")
def claim(
    ctx: typer.Context,
    instance_type: str = typer.Argument(..., help="A name from the catalog, e.g. 1xGPU."),
    count: int = typer.Option(1, "--count", "-n", help="How many instances."),
    name: str | None = typer.Option(None, "--name", help="A name for the cluster."),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Claim COUNT instances of INSTANCE_TYPE (refused beyond your org's GPU quota)."""
    with client(ctx) as c:
        finish(c, c.clusters.claim(instance_type, count, name), wait, timeout)


@cluster_app.command("ls")
def ls(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List your org's clusters."""
    with client(ctx) as c:
        clusters = c.clusters.list()
    render.show(clusters, clusters_table, as_json)


@cluster_app.command("show")
def show(ctx: typer.Context, cluster_id: str = typer.Argument(..., metavar="ID"),
         as_json: bool = JSON_OPTION) -> None:
    """Show one cluster and its reserved instances."""
    with client(ctx) as c:
        cluster = c.clusters.get(cluster_id)
    render.show_one(cluster, clusters_table, as_json)


@cluster_app.command("edit")
def edit(
    ctx: typer.Context, cluster_id: str = typer.Argument(..., metavar="ID"),
    name: str | None = typer.Option(None, "--name", help="A new name."),
    count: int | None = typer.Option(None, "--count", "-n", help="Grow or shrink to COUNT."),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Rename and/or resize (grow only while resources are free)."""
    with client(ctx) as c:
        finish(c, c.clusters.edit(cluster_id, name=name, count=count), wait, timeout)


@cluster_app.command("release")
def release(
    ctx: typer.Context, cluster_id: str = typer.Argument(..., metavar="ID"),
    wait: bool = WAIT_OPTION, timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Release a cluster: its resources go back, its volumes are detached."""
    with client(ctx) as c:
        finish(c, c.clusters.release(cluster_id), wait, timeout)


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
