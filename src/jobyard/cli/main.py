"""``jobyard``: the command line (``python -m jobyard`` runs it too).

The server URL and API key come from ``--url`` / ``--api-key``, else ``JOBYARD_URL`` /
``JOBYARD_API_KEY``, else the file ``jobyard login`` writes. Errors print one red line and
exit 1; usage errors exit 2.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from jobyard import __version__
from jobyard.cli import (
    Globals,
    accounts,
    clusters,
    endpoints,
    jobs,
    operations,
    packages,
    render,
    report,
    volumes,
)
from jobyard.cli import client as make_client
from jobyard.cli.server import serve
from jobyard.errors import JobyardError
from jobyard.sdk import settings
from jobyard.sdk.client import Client


class _Group(TyperGroup):
    """Turns expected errors, from any command, into one red line and exit code 1."""

    # ``ctx`` is typer's own (vendored) click Context, which it does not export by name.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (JobyardError, TimeoutError, OSError) as exc:  # OSError: e.g. the config file
            render.error(str(exc) or type(exc).__name__)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="jobyard",
    cls=_Group,
    help="Jobyard: run and watch jobs on a self-hosted job service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jobyard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: str | None = typer.Option(
        None, "--url", envvar=settings.URL_ENV,
        help=f"Server URL \\[default: from `jobyard login`, else {settings.DEFAULT_URL}]",
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar=settings.KEY_ENV,
        help="API key \\[default: from `jobyard login`]",
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Show the version and exit.",
    ),
) -> None:
    ctx.obj = Globals(url=url, api_key=api_key)


@app.command()
def login(
    ctx: typer.Context,
    url: str | None = typer.Option(None, "--url", help="Server URL."),
    key: str | None = typer.Option(None, "--key", help="API key \\[default: prompted for]."),
) -> None:
    """Check an API key against the server, then save URL and key (file mode 0600)."""
    g = ctx.find_object(Globals) or Globals()
    url = settings.resolve_url(url or g.url)
    key = key or g.api_key or typer.prompt("API key", hide_input=True, err=True)
    with Client(url=url, api_key=key) as c:
        me = c.me()
    path = settings.write_config(url, key)
    typer.echo(f"logged in to {url} as {me.username}" + (" (admin)" if me.is_admin else ""))
    render.hint(f"saved to {path}; try: jobyard run -- echo hello")


@app.command()
def whoami(ctx: typer.Context) -> None:
    """Show who the API key belongs to, and on which server."""
    with make_client(ctx) as c:
        me = c.me()
    role = ", admin" if me.is_admin else ""
    typer.echo(f"{me.username} (user {me.user_id}, org {me.org_id}{role}) at {c.url}")


app.command("serve")(serve)
jobs.register(app)
accounts.register(app)
report.register(app)
volumes.register(app)
operations.register(app)
clusters.register(app)
endpoints.register(app)
packages.register(app)
