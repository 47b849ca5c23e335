import pytest

from jobyard.api.dialects.states import STATUS_TABLE, dialect_status
from jobyard.core.states import JobState, Substate

SEED_VOCABULARY = {
    # GET /job/info page (000)
    "tensorpool": {"pending", "running", "completed", "error", "failed", "canceling",
                   "canceled"},
    # job status page (002)
    "tensorone": {"queued", "initializing", "running", "completed", "failed", "cancelled",
                  "timeout", "paused"},
    # Job schema (003)
    "xplenty": {"idle", "pending", "queued", "running", "completed", "failed",
                "pending_stoppage", "stopping", "stopped"},
}


def test_every_state_has_a_word_in_each_dialect_from_its_own_vocabulary():
    assert set(STATUS_TABLE) == set(JobState)
    for dialect, words in SEED_VOCABULARY.items():
        for state in JobState:
            assert dialect_status(dialect, state) in words, (dialect, state)


@pytest.mark.parametrize("dialect", sorted(SEED_VOCABULARY))
def test_terminal_states_stay_terminal_and_success_is_only_completed(dialect):
    for state in JobState:
        word = dialect_status(dialect, state)
        assert (word == "completed") == (state is JobState.COMPLETED)


def test_integrate_io_tells_a_stop_in_progress_apart():
    assert dialect_status("xplenty", JobState.CANCELING) == "pending_stoppage"
    assert dialect_status("xplenty", JobState.CANCELING, Substate.STOPPING) == "stopping"
