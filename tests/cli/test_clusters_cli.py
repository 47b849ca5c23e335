"""`jobyard cluster ...` and `jobyard storage attach|detach` against a real server."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from jobyard.cli.main import app
from tests.cli.test_cli import cli  # noqa: F401  (the fixture)

CLU = re.compile(r"clu_[a-z0-9]+")
VOL = re.compile(r"vol_[a-z0-9]+")


def test_cluster_commands_with_wait(cli: CliRunner) -> None:  # noqa: F811
    result = cli.invoke(app, ["cluster", "claim", "1xGPU", "-n", "2", "--name", "c1", "--wait"])
    assert result.exit_code == 0, result.output
    assert "CLUSTER_CLAIM COMPLETED" in result.stdout
    cid = CLU.search(result.stdout).group()
    result = cli.invoke(app, ["cluster", "ls"])
    assert result.exit_code == 0 and cid in result.stdout and "ready" in result.stdout
    result = cli.invoke(app, ["cluster", "edit", cid, "--count", "1", "--wait"])
    assert result.exit_code == 0 and "CLUSTER_EDIT COMPLETED" in result.stdout
    result = cli.invoke(app, ["cluster", "show", cid, "--json"])
    assert result.exit_code == 0 and '"instance_count": 1' in result.stdout
    result = cli.invoke(app, ["storage", "create", "cli-att", "--size-gb", "1", "--wait"])
    vol = VOL.search(result.stdout).group()
    result = cli.invoke(app, ["storage", "attach", vol, cid, "--wait"])
    assert result.exit_code == 0 and "STORAGE_ATTACH COMPLETED" in result.stdout
    result = cli.invoke(app, ["storage", "destroy", vol])
    assert result.exit_code == 1 and "attached" in result.stderr
    result = cli.invoke(app, ["storage", "detach", vol, cid, "--wait"])
    assert result.exit_code == 0 and "STORAGE_DETACH COMPLETED" in result.stdout
    result = cli.invoke(app, ["cluster", "release", cid, "--wait"])
    assert result.exit_code == 0 and "CLUSTER_RELEASE COMPLETED" in result.stdout
    result = cli.invoke(app, ["cluster", "claim", "nope"])
    assert result.exit_code == 1 and "unknown instance_type" in result.stderr


def test_run_on_an_unknown_cluster_says_so(server, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from jobyard.cli.main import app

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["--url", server.url, "--api-key", server.admin_key,
                                      "run", "--cluster", "cl_nope", "--", "true"])
    assert result.exit_code == 1 and "cl_nope" in result.output
