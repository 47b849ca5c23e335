import pytest

from jobyard.core.states import TERMINAL, TRANSITIONS, JobState, check_transition
from jobyard.errors import IllegalTransition


def test_every_state_has_a_row_and_terminal_states_are_dead_ends():
    assert set(TRANSITIONS) == set(JobState)
    for state in TERMINAL:
        assert state.is_terminal
        assert TRANSITIONS[state] == frozenset()
    assert {s for s in JobState if s.is_terminal} == {
        JobState.COMPLETED, JobState.ERROR, JobState.FAILED, JobState.TIMEOUT, JobState.CANCELED,
    }


@pytest.mark.parametrize(
    ("src", "dst"),
    [("queued", "launching"), ("launching", "running"), ("running", "completed"),
     ("running", "canceling"), ("canceling", "canceled"), ("queued", "canceled"),
     ("running", "queued")],
)
def test_allowed_moves(src, dst):
    check_transition(JobState(src), JobState(dst))


@pytest.mark.parametrize(
    ("src", "dst"),
    [("queued", "running"), ("completed", "running"), ("canceled", "queued"),
     ("error", "canceling"), ("queued", "completed"), ("canceling", "running")],
)
def test_illegal_moves_are_refused_with_a_clear_error(src, dst):
    with pytest.raises(IllegalTransition) as info:
        check_transition(JobState(src), JobState(dst))
    assert src in info.value.message and dst in info.value.message
    assert info.value.details == {"from": src, "to": dst}


def test_core_imports_no_framework():
    """Layers point one way: core/ knows nothing of HTTP, SQL or processes."""
    import ast
    import pathlib

    import jobyard.core

    banned = {"fastapi", "starlette", "sqlalchemy", "httpx", "subprocess", "jobyard.api",
              "jobyard.store", "jobyard.daemon", "jobyard.executors", "uvicorn"}
    for path in pathlib.Path(jobyard.core.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not any(name == b or name.startswith(b + ".") for b in banned), (path, name)
