"""``jobyard serve``: the API and the daemon in one process, on the embedded defaults."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import uvicorn
from rich.console import Console

from jobyard.config import load_config

err = Console(stderr=True, soft_wrap=True)  # never break a line meant for copy-paste

if TYPE_CHECKING:
    from jobyard.runtime import Runtime


def serve(
    host: str | None = typer.Option(None, help="Address to listen on [env JOBYARD_HOST]"),
    port: int | None = typer.Option(None, help="Port [env JOBYARD_PORT]"),
    data_dir: Path | None = typer.Option(None, help="Data directory [env JOBYARD_DATA_DIR]"),
) -> None:
    """Start the Jobyard server (API + scheduler + local executor)."""
    from jobyard.api.app import create_app
    from jobyard.runtime import build_runtime

    config = load_config(host=host, port=port, data_dir=data_dir)
    os.umask(0o077)  # what the server writes is its own; jobs get their usual 022
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        rt = build_runtime(config)
    except ValueError as exc:  # a configuration this machine cannot honour
        err.print(f"[bold red]cannot start:[/bold red] {exc}")
        raise typer.Exit(1) from None
    _banner(rt)
    uvicorn.run(
        create_app(rt), host=config.host, port=config.port, log_level="warning",
        access_log=False, timeout_graceful_shutdown=5,
    )


def _banner(rt: Runtime) -> None:
    cfg = rt.config
    inv = rt.inventory
    err.print(f"[bold]Jobyard[/bold] listening on [cyan]{cfg.url}[/cyan]  (data: {cfg.data_dir})")
    err.print(f"inventory: {len(inv.gpus)} GPU(s) ({inv.gpu_source}), {inv.cpus:g} CPUs, "
              f"{inv.memory_mb} MB memory; database: {rt.engines.write.url.get_backend_name()}")
    confined = rt.services.server.enforcement()
    if confined["cgroups"] == "none":
        err.print("[yellow]resource limits are NOT enforced[/yellow]: "
                  f"{confined['cgroups_detail']}")
    else:
        err.print(f"limits enforced by {confined['cgroups_detail']}")
    if confined["isolation"] == "none":
        err.print("[yellow]isolation: none[/yellow] — every job runs as this server's OS user; "
                  "orgs are not a boundary on this machine")
        if confined["namespaces"] == "on":
            err.print("namespaces: each job in its own user, mount and PID namespaces: it sees "
                      "none of the server's files and no process but its own")
        else:
            err.print(f"[yellow]namespaces: none[/yellow] — jobs see what the server sees "
                      f"({confined['namespaces_detail']})")
    else:
        first, last = cfg.job_uid_range
        err.print(f"isolation: each {confined['isolation']}'s jobs run as its own OS user "
                  f"(uids {first}-{last})")
    if rt.new_admin_key:
        err.print("\n[bold yellow]Admin API key (shown once, stored hashed):[/bold yellow]")
        print(rt.new_admin_key, flush=True)
        cli = sys.argv[0] if Path(sys.argv[0]).name == "jobyard" else "jobyard"
        err.print("\nTry it:")
        err.print(f"  export JOBYARD_URL={cfg.url} JOBYARD_API_KEY={rt.new_admin_key}")
        err.print(f"  {cli} run -- echo hello from jobyard")
        err.print(f"  curl -H 'Authorization: Bearer {rt.new_admin_key}' "
                  f"-d '{{\"command\": \"echo hello\"}}' -H 'Content-Type: application/json' "
                  f"{cfg.url}/v1/jobs\n")
