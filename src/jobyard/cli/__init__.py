"""The ``jobyard`` command line (Typer + Rich); the app is :data:`jobyard.cli.main.app`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from jobyard.sdk.client import Client


@dataclass(frozen=True, slots=True)
class Globals:
    """The global ``--url`` / ``--api-key`` options (already merged with the env)."""

    url: str | None = None
    api_key: str | None = None


def client(ctx: typer.Context) -> Client:
    """An SDK client for the global options, env, or ``jobyard login``'s config file."""
    from jobyard.sdk.client import Client

    g = ctx.find_object(Globals) or Globals()
    return Client(url=g.url, api_key=g.api_key)
