"""A TensorPool project: its ``.tp.toml`` job file, and the job that runs it.

The CLI never parses the file (``tp job init`` writes the server's template, ``tp job push``
sends the text back), so its format is the server's: three top-level arrays, as TensorPool
documents them. Unknown keys are refused so that a typo does not go unnoticed.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from jobyard.core.jobs import output_pattern_problem
from jobyard.errors import ValidationFailed

TEMPLATE = '''\
# A Jobyard job file for `tp job push <this file> <cluster id>` (see `tp cluster list`).
# Your current directory is uploaded (minus `ignore`) and `commands` run there, in order, on
# one instance of the cluster; with a requirements.txt they run in a fresh virtual environment.

commands = [
    "pip install -r requirements.txt",
    "python main.py",
]

# Files to keep for `tp job pull <job id>`: paths or globs relative to the project,
# a directory keeps everything in it.
outputs = [
    # "checkpoints/",
    # "model.pth",
]

# Not uploaded.
ignore = [".venv", "venv", "__pycache__/", ".git", "*.pyc", "*.tp.toml"]
'''

KEYS = ("commands", "outputs", "ignore")
MAX_COMMANDS = 100
MAX_PATTERNS = 200


@dataclass(frozen=True, slots=True)
class Project:
    commands: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()


def _bad(msg: str) -> ValidationFailed:
    return ValidationFailed(f"invalid job file: {msg}",
                            {"loc": ["tp_config"], "type": "value_error"})


def parse_project(text: str) -> Project:
    """Parse and check a ``.tp.toml`` text; raises ValidationFailed with what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise _bad(f"unknown key(s) {', '.join(unknown)}; the keys are {', '.join(KEYS)}")
    lists: dict[str, tuple[str, ...]] = {}
    for key in KEYS:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(f"'{key}' must be a list of strings")
        limit = MAX_COMMANDS if key == "commands" else MAX_PATTERNS
        if len(value) > limit:
            raise _bad(f"'{key}' has more than {limit} entries")
        lists[key] = tuple(v for v in value if v.strip())
    if not lists["commands"]:
        raise _bad("'commands' is empty: give at least one command to run")
    for pattern in lists["outputs"]:
        problem = output_pattern_problem(pattern)
        if problem:
            raise _bad(problem)
    return Project(lists["commands"], lists["outputs"], lists["ignore"])


def job_script(project: Project, workspace: Path, python: str = "python3") -> str:
    """The job's shell script: a fresh venv (made by ``python``, found on the job's ``PATH``:
    the server's own interpreter may be closed to the job's uid) when the project has a
    requirements.txt, then each command in order (echoed first), stopping at the first that
    fails."""
    q = shlex.quote
    lines = ["set -e"]
    if (workspace / "project" / "requirements.txt").is_file():
        venv = workspace / "venv"
        lines += [
            "echo '[jobyard] requirements.txt found: creating a fresh virtual environment'",
            f"{q(python)} -m venv {q(str(venv))}",
            f". {q(str(venv / 'bin' / 'activate'))}",
        ]
    for command in project.commands:
        lines += [f"printf '%s\\n' {q('$ ' + command)}", command]
    return "\n".join(lines) + "\n"
