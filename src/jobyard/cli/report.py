"""``jobyard report``: a shell job reports its progress (see :mod:`jobyard.telemetry.report`,
which parses and sends; the same code serves jobs that only have the reporting client)."""

from __future__ import annotations

import typer

from jobyard.cli import Globals
from jobyard.telemetry.report import main

_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True,
                "help_option_names": []}


def report(ctx: typer.Context) -> None:
    """Report progress from inside a job (it never fails the job); --help for its options."""
    g = ctx.find_object(Globals) or Globals()
    raise typer.Exit(main(ctx.args, g.url))


def register(app: typer.Typer) -> None:
    app.command(context_settings=_PASSTHROUGH, add_help_option=False)(report)
