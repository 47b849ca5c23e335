from jobyard.core.jobs import cancel_transition
from jobyard.core.ports import NewJob, Transition
from jobyard.core.states import JobState
from tests.store.test_sql import new_job, owner


def test_a_guarded_update_applies_only_in_that_state(store):
    user = owner(store)
    job, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_g")))
    for state in (JobState.LAUNCHING, JobState.RUNNING):
        store.jobs.apply([Transition(job.id, state, {})])
    [canceling] = store.jobs.apply([cancel_transition(store.jobs.get_job(job.id), 1.0, "ann")])
    assert canceling.state is JobState.CANCELING and canceling.substate is None  # requested
    done = store.jobs.update_fields(job.id, {"substate": "stopping"}, None, JobState.CANCELING)
    assert done is not None and done.substate == "stopping"  # the daemon sent the stop
    store.jobs.apply([Transition(job.id, JobState.CANCELED, {"substate": None})])
    assert store.jobs.update_fields(job.id, {"substate": "stopping"}, None,
                               JobState.CANCELING) is None
    assert store.jobs.get_job(job.id).substate is None  # a late write does not stick to the end
