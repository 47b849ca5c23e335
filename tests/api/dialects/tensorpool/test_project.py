import subprocess

import pytest

from jobyard.api.dialects.tensorpool.clientside import ignored, project_files
from jobyard.api.dialects.tensorpool.project import TEMPLATE, job_script, parse_project
from jobyard.api.dialects.tensorpool.tables import tsv_table
from jobyard.errors import ValidationFailed


def test_the_template_is_a_valid_job_file():
    project = parse_project(TEMPLATE)
    assert project.commands and ".git" in project.ignore


@pytest.mark.parametrize(("text", "why"), [
    ('commands = ["a"\n', "not valid TOML"),
    ('commands = ["a"]\ngpu = "H100"\n', "unknown key(s) gpu"),
    ('commands = "python x.py"\n', "'commands' must be a list of strings"),
    ('commands = []\n', "'commands' is empty"),
    ('commands = ["a"]\noutputs = ["../etc"]\n', "without '..'"),
    ('commands = ["a"]\noutputs = ["/abs"]\n', "relative"),
])
def test_bad_job_files_say_what_is_wrong(text, why):
    with pytest.raises(ValidationFailed, match=None) as exc:
        parse_project(text)
    assert why in exc.value.message


def test_the_job_script_runs_commands_in_order_and_stops_at_a_failure(tmp_path):
    ws = tmp_path
    (ws / "project").mkdir()
    script = job_script(parse_project('commands = ["echo one", "false", "echo two"]'), ws,
                        "python3")
    assert "venv" not in script  # no requirements.txt
    run = subprocess.run(["/bin/sh", "-c", script], cwd=ws / "project", capture_output=True,
                         text=True)
    assert run.returncode == 1
    assert run.stdout.splitlines() == ["$ echo one", "one", "$ false"]
    (ws / "project" / "requirements.txt").write_text("")
    assert "-m venv" in job_script(parse_project('commands = ["x"]'), ws, "python3")


def test_ignore_patterns_are_gitignore_like(tmp_path):
    for rel in ("a.py", "b.pyc", ".git/HEAD", "data/x.csv", "src/data/y.csv", ".venv/bin/py",
                "logs/keep.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "logs" / "link").symlink_to(tmp_path / "a.py")
    files = project_files(str(tmp_path), ["*.pyc", ".git", "data/", ".venv"])
    assert files == ["a.py", "logs/keep.txt"]
    assert ignored("src/data", True, ["data/"]) and not ignored("data", False, ["data/"])
    assert ignored("x/y.log", False, ["x/*.log"])


def test_tables_line_up_and_split_on_tabs():
    table = tsv_table(("ID", "STATUS"), [("job_1", "running"), ("j2", None)])
    lines = table.splitlines()
    assert [line.split("\t")[0].rstrip() for line in lines] == ["ID", "job_1", "j2"]
    assert len({line.index("\t") for line in lines}) == 1  # aligned
    assert lines[2].split("\t")[1] == "-"
