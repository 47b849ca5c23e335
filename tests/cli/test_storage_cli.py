"""`jobyard storage ...` and `jobyard request ...` against a real server."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from jobyard.cli.main import app
from tests.cli.test_cli import cli  # noqa: F401  (the fixture)

REQ = re.compile(r"req_[a-z0-9]+")
VOL = re.compile(r"vol_[a-z0-9]+")


def test_storage_commands_with_wait(cli: CliRunner) -> None:  # noqa: F811
    result = cli.invoke(app, ["storage", "create", "cli-vol", "--size-gb", "1", "--wait"])
    assert result.exit_code == 0, result.output
    assert "STORAGE_CREATE COMPLETED" in result.stdout
    vol_id = VOL.search(result.stdout).group()

    result = cli.invoke(app, ["storage", "ls"])
    assert result.exit_code == 0 and vol_id in result.stdout and "cli-vol" in result.stdout
    result = cli.invoke(app, ["storage", "edit", vol_id, "--size-gb", "0"])
    assert result.exit_code == 1 and "size_gb" in result.stderr
    result = cli.invoke(app, ["storage", "edit", vol_id, "--name", "cli-vol2", "--size-gb", "3"])
    assert result.exit_code == 0, result.output
    req_id = REQ.search(result.stdout).group()
    result = cli.invoke(app, ["request", "wait", req_id, "--timeout", "20"])
    assert result.exit_code == 0 and "COMPLETED" in result.stdout
    result = cli.invoke(app, ["request", "show", req_id, "--json"])
    assert result.exit_code == 0 and '"STORAGE_EDIT"' in result.stdout
    result = cli.invoke(app, ["storage", "show", vol_id])
    assert "cli-vol2" in result.stdout and "3 GB" in result.stdout
    result = cli.invoke(app, ["storage", "destroy", vol_id, "--wait"])
    assert result.exit_code == 0 and "STORAGE_DESTROY COMPLETED" in result.stdout
    result = cli.invoke(app, ["storage", "show", vol_id])
    assert result.exit_code == 1 and "not found" in result.stderr
