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
     ("running", "queued"), ("running", "paused"), ("paused", "running"),
     ("paused", "canceling"), ("paused", "error"), ("paused", "completed")],
)
def test_allowed_moves(src, dst):
    check_transition(JobState(src), JobState(dst))


@pytest.mark.parametrize(
    ("src", "dst"),
    [("queued", "running"), ("completed", "running"), ("canceled", "queued"),
     ("error", "canceling"), ("queued", "completed"), ("canceling", "running"),
     ("queued", "paused"), ("launching", "paused"), ("canceling", "paused"),
     ("paused", "launching")],
)
def test_illegal_moves_are_refused_with_a_clear_error(src, dst):
    with pytest.raises(IllegalTransition) as info:
        check_transition(JobState(src), JobState(dst))
    assert src in info.value.message and dst in info.value.message
    assert info.value.details == {"from": src, "to": dst}
