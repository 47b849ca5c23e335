"""The `jobyard` command line, driven through its real entry point against a real server."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

import jobyard
from jobyard.cli.main import app
from jobyard.sdk import settings
from jobyard.testing import ServerProcess, wait_until

JOB_ID = re.compile(r"job_[a-z0-9]+")


@pytest.fixture
def cli(server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[CliRunner]:
    """A runner whose environment points at the server, with a private config directory."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(settings.URL_ENV, server.url)
    monkeypatch.setenv(settings.KEY_ENV, server.admin_key)
    yield CliRunner()


def sdk(server: ServerProcess) -> jobyard.Client:
    return jobyard.Client(server.url, server.admin_key)


def test_run_and_inspect(cli: CliRunner) -> None:
    tag = "t" + uuid.uuid4().hex[:8]
    command = ["sh", "-c", "echo hi; echo oops >&2; exit 3"]
    result = cli.invoke(app, ["run", "--tag", tag, "--", *command])
    assert result.exit_code == 3, result.output
    assert result.stdout == "hi\n"
    assert "oops" in result.stderr and "exit code 3" in result.stderr
    job_id = JOB_ID.search(result.stderr).group()

    # One argument with spaces runs as a shell string; --env sets the job's environment.
    result = cli.invoke(app, ["run", "--tag", tag, "--env", "GREETING=hello", "echo $GREETING x"])
    assert (result.exit_code, result.stdout) == (0, "hello x\n")

    result = cli.invoke(app, ["ls", "--tag", tag])
    assert result.exit_code == 0 and job_id in result.stdout and "error" in result.stdout
    listed = json.loads(cli.invoke(app, ["ls", "--tag", tag, "--json", "--limit", "1"]).stdout)
    assert len(listed) == 1 and listed[0]["tags"] == [tag] and listed[0]["id"] != job_id

    result = cli.invoke(app, ["status", job_id])
    assert result.exit_code == 0
    assert all(word in result.stdout for word in ("error", "exit code", "NONZERO_EXIT"))
    assert json.loads(cli.invoke(app, ["status", "--json", job_id]).stdout)["exit_code"] == 3

    result = cli.invoke(app, ["logs", job_id])
    assert (result.stdout, result.stderr) == ("hi\n", "oops\n")
    assert cli.invoke(app, ["logs", "--tail", "1", job_id]).stderr == "oops\n"
    assert cli.invoke(app, ["logs", "-f", job_id]).stdout == "hi\n"
    result = cli.invoke(app, ["wait", job_id])
    assert result.exit_code == 3 and "error" in result.stdout

    # Errors: one red line, exit 1; usage errors exit 2.
    result = cli.invoke(app, ["cancel", job_id])
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    result = cli.invoke(app, ["status", "job_doesnotexist"])
    assert result.exit_code == 1 and "not found" in result.stderr
    assert cli.invoke(app, ["--api-key", "jy_wrong", "ls"]).exit_code == 1
    assert cli.invoke(app, ["run", "--bogus", "x"]).exit_code == 2


def test_detach_cancel_wait(cli: CliRunner, server: ServerProcess) -> None:
    result = cli.invoke(app, ["run", "--detach", "--name", "nap", "--", "sleep", "30"])
    assert result.exit_code == 0 and "jobyard logs -f" in result.stderr
    job_id = result.stdout.strip()
    assert JOB_ID.fullmatch(job_id)
    with sdk(server) as client:
        wait_until(lambda: client.jobs.get(job_id).state == "running", timeout=20)
    result = cli.invoke(app, ["wait", "--timeout", "0.2", job_id])
    assert result.exit_code == 1 and "error: " in result.stderr
    result = cli.invoke(app, ["cancel", job_id])
    assert result.exit_code == 0 and re.search(r"cancel(ing|ed)", result.stdout)
    result = cli.invoke(app, ["wait", "--timeout", "20", job_id])
    assert (result.exit_code, result.stdout.strip()) == (130, f"{job_id}: canceled")
    result = cli.invoke(app, ["status", job_id])
    assert "cancel receipt" in result.stdout and "SIGTERM" in result.stdout


def test_pause_and_resume(cli: CliRunner, server: ServerProcess) -> None:
    result = cli.invoke(app, ["run", "--detach", "--", "sleep", "30"])
    job_id = result.stdout.strip()
    with sdk(server) as client:
        wait_until(lambda: client.jobs.get(job_id).state == "running", timeout=20)
        result = cli.invoke(app, ["pause", job_id])
        assert (result.exit_code, result.stdout) == (0, f"{job_id}: paused\n")
        assert f"jobyard resume {job_id}" in result.stderr
        assert client.jobs.get(job_id).state == "paused"
        assert "paused" in cli.invoke(app, ["status", job_id]).stdout
        result = cli.invoke(app, ["resume", job_id])
        assert (result.exit_code, result.stdout) == (0, f"{job_id}: running\n")
        result = cli.invoke(app, ["resume", job_id])  # running already: fine
        assert result.exit_code == 0
        client.jobs.cancel(job_id)
        client.jobs.wait(job_id, timeout=20)
    result = cli.invoke(app, ["pause", job_id])
    assert result.exit_code != 0 and "only a running job can be paused" in result.stderr


def test_ctrl_c_cancels_the_job(server: ServerProcess, tmp_path) -> None:
    """SIGINT with no terminal on stdin cancels the job; `run` exits 130."""
    env = {**os.environ, settings.URL_ENV: server.url, settings.KEY_ENV: server.admin_key,
           "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobyard", "run", "--", "sh", "-c", "echo started; sleep 30"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        submitted = proc.stderr.readline()  # printed once the submit answered
        job_id = JOB_ID.search(submitted).group()
        with sdk(server) as client:
            wait_until(lambda: client.jobs.logs(job_id).lines, timeout=20)  # it runs
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 130, err
            assert out == "started\n" and f"job {job_id} canceled" in err
            assert client.jobs.get(job_id).state == "canceled"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_accounts_and_login(cli: CliRunner, server: ServerProcess, monkeypatch, tmp_path) -> None:
    suffix = uuid.uuid4().hex[:8]
    org, user = f"org-{suffix}", f"user-{suffix}"
    assert cli.invoke(app, ["orgs", "create", org]).exit_code == 0
    assert org in cli.invoke(app, ["orgs", "ls"]).stdout
    result = cli.invoke(app, ["users", "create", user, "--org", org])
    assert result.exit_code == 0 and user in result.stdout
    assert user in cli.invoke(app, ["users", "ls"]).stdout
    assert cli.invoke(app, ["users", "create", "nobody"]).exit_code == 2  # --org is required

    result = cli.invoke(app, ["keys", "create", "--name", "laptop", "--user", user])
    assert result.exit_code == 0 and "not be shown again" in result.stderr
    key = result.stdout.strip()
    assert key.startswith("jy_")
    keys = json.loads(cli.invoke(app, ["keys", "ls", "--user", user, "--json"]).stdout)
    assert [k["name"] for k in keys] == ["laptop"]
    assert "laptop" in cli.invoke(app, ["keys", "ls"]).stdout

    # login checks the key, then saves URL and key for later commands, readable by the owner.
    monkeypatch.delenv(settings.KEY_ENV)
    monkeypatch.delenv(settings.URL_ENV)
    assert cli.invoke(app, ["login", "--url", server.url, "--key", "jy_wrong"]).exit_code == 1
    assert not settings.config_path().exists()
    result = cli.invoke(app, ["login", "--url", server.url], input=key + "\n")
    assert result.exit_code == 0 and user in result.stdout
    path = tmp_path / "xdg" / "jobyard" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.read_config(path) == {"url": server.url, "api_key": key}
    result = cli.invoke(app, ["whoami"])
    assert result.exit_code == 0 and user in result.stdout and server.url in result.stdout

    result = cli.invoke(app, ["--api-key", server.admin_key, "keys", "revoke", str(keys[0]["id"])])
    assert result.exit_code == 0 and "revoked" in result.stdout
    result = cli.invoke(app, ["whoami"])
    assert result.exit_code == 1 and "revoked" in result.stderr


# Two reports a moment apart (a rate, so an ETA), then it works on until canceled.
REPORTS = ("jobyard report --progress 10 --step warmup && sleep 0.3 && jobyard report "
           "--progress 45 --step training --items 45/100 --throughput 12.5 --unit img/s "
           "&& sleep 60")


def test_progress_shows_in_status_ls_top_and_run_ends_with_a_summary(
        cli: CliRunner, server: ServerProcess) -> None:
    name = "rep" + uuid.uuid4().hex[:6]
    job_id = cli.invoke(app, ["run", "--detach", "--name", name, "--", "sh", "-c",
                              REPORTS]).stdout.strip()
    with sdk(server) as client:
        wait_until(lambda: client.jobs.get(job_id).progress == 45, timeout=20)
        status = cli.invoke(app, ["status", job_id]).stdout
        for shown in ("45%", "training", "45/100", "12.5 img/s", "cost", "eta"):
            assert shown in status, (shown, status)
        listed = cli.invoke(app, ["ls", "--name", name]).stdout
        assert "PROGRESS" in listed and "45%" in listed
        top = cli.invoke(app, ["top"])  # not a terminal: one look
        assert top.exit_code == 0 and job_id in top.stdout
        assert all(s in top.stdout for s in ("45%", "training", "12.5 img/s")), top.stdout
        client.jobs.cancel(job_id)
        client.jobs.wait(job_id, timeout=20)
    assert job_id not in cli.invoke(app, ["top"]).stdout

    result = cli.invoke(app, ["run", "--", "true"])
    assert result.exit_code == 0
    assert re.search(r"job job_\w+ completed in [\d.]+s · cost 0\.0000 USD", result.stderr)
