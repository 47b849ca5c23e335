"""Account commands: ``keys``, ``users``, ``orgs`` (users and orgs are admin-only)."""

from __future__ import annotations

import typer

from jobyard.cli import client, render
from jobyard.cli.render import JSON_OPTION

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Create and list users (admin).", no_args_is_help=True)
orgs_app = typer.Typer(help="Create and list organizations (admin).", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: str | None = typer.Option(None, "--name", help="A label for the key."),
    user: str | None = typer.Option(None, "--user", help="For another user (admin)."),
) -> None:
    """Create an API key and print it (the only time it is shown)."""
    with client(ctx) as c:
        key = c.keys.create(name=name, username=user)
    typer.echo(key.key)
    render.hint(f"key {key.id} ({key.prefix}…) created; it will not be shown again")
    render.hint("use it: jobyard login --key KEY   or   export JOBYARD_API_KEY=KEY")


@keys_app.command("ls")
def keys_ls(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="Only this user's keys (admin)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List API keys: your own (an admin sees all)."""
    with client(ctx) as c:
        keys = c.keys.list(username=user)
    render.show(keys, render.keys_table, as_json)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: int = typer.Argument(..., metavar="ID", help="The key's id.")
) -> None:
    """Revoke an API key; requests with it fail from now on."""
    with client(ctx) as c:
        key = c.keys.revoke(key_id)
    typer.echo(f"revoked key {key.id} ({key.prefix}…)" if key.prefix else f"revoked key {key_id}")


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    username: str = typer.Argument(..., metavar="NAME"),
    org: str = typer.Option(..., "--org", help="The user's organization."),
    admin: bool = typer.Option(False, "--admin", help="Make the user an admin."),
) -> None:
    """Create a user in an organization."""
    with client(ctx) as c:
        user = c.users.create(username, org, is_admin=admin)
    typer.echo(f"created user {user.username} in {user.org or org}"
               + (" (admin)" if user.is_admin else ""))
    render.hint(f"give them a key: jobyard keys create --user {user.username}")


@users_app.command("ls")
def users_ls(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List users."""
    with client(ctx) as c:
        users = c.users.list()
    render.show(users, render.users_table, as_json)


@orgs_app.command("create")
def orgs_create(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME")) -> None:
    """Create an organization."""
    with client(ctx) as c:
        org = c.orgs.create(name)
    typer.echo(f"created org {org.name}")
    render.hint(f"add a user: jobyard users create USERNAME --org {org.name}")


@orgs_app.command("ls")
def orgs_ls(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List organizations."""
    with client(ctx) as c:
        orgs = c.orgs.list()
    render.show(orgs, render.orgs_table, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(users_app, name="users")
    app.add_typer(orgs_app, name="orgs")
