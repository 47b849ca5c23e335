"""Endpoints (core/endpoints.py) on a real store: the rules of creating one, who sees it, and
the job a run of it is."""

from __future__ import annotations

import pytest

from jobyard.core.endpoints import EndpointService
from jobyard.core.inputs import NewEndpoint, RunEndpoint
from jobyard.core.jobs import JobService
from jobyard.core.models import Principal, Resources, RetryPolicy
from jobyard.core.states import JobState
from jobyard.errors import Conflict, EndpointNotFound, Unschedulable, ValidationFailed
from jobyard.store.sql import SqlStore


def people(store: SqlStore) -> tuple[Principal, Principal, Principal]:
    """A user of org a, another user of org a, a user of org b."""
    out = []
    for org, name in (("a", "ann"), ("a", "abe"), ("b", "bob")):
        if org not in {o["name"] for o in store.accounts.list_orgs()}:
            store.accounts.create_org(org)
        user = store.accounts.create_user(name, org)
        out.append(Principal(user["id"], user["org_id"], name))
    return out[0], out[1], out[2]


@pytest.fixture
def service(store: SqlStore) -> EndpointService:
    jobs = JobService(store.jobs, store.kv, Resources(gpus=2, cpus=8, memory_mb=4096))
    return EndpointService(store.endpoints, jobs)


def test_create_read_list_delete(store: SqlStore, service: EndpointService) -> None:
    ann, abe, bob = people(store)
    ep = service.create(ann, NewEndpoint("img-proc_1", ["python", "x.py"], {"M": "1"},
                                         Resources(gpus=1, cpus=2.0, memory_mb=512), 60.0))
    assert (ep.uid, ep.name, ep.org_id, ep.user_id) == ("ep_img-proc_1", "img-proc_1",
                                                        ann.org_id, ann.user_id)
    assert ep.command == ["python", "x.py"] and ep.env == {"M": "1"}
    assert ep.resources == Resources(gpus=1, cpus=2.0, memory_mb=512)
    assert ep.time_limit_s == 60.0 and ep.created_at == ep.updated_at > 0

    assert service.get(abe, "ep_img-proc_1") == ep  # the same org sees it
    with pytest.raises(EndpointNotFound):
        service.get(bob, "ep_img-proc_1")
    assert service.get_any("ep_img-proc_1") == ep and not bob.sees(ep.org_id)
    assert [e.uid for e in service.list(abe)] == ["ep_img-proc_1"]
    assert service.list(bob) == []
    admin = Principal(bob.user_id, bob.org_id, "bob", is_admin=True)
    assert [e.uid for e in service.list(admin)] == ["ep_img-proc_1"]

    with pytest.raises(Conflict):  # ids are the server's: another org cannot take it either
        service.create(bob, NewEndpoint("img-proc_1", "true"))
    with pytest.raises(EndpointNotFound):
        service.delete(bob, "ep_img-proc_1")
    assert service.delete(abe, "ep_img-proc_1") == ep
    with pytest.raises(EndpointNotFound):
        service.get_any("ep_img-proc_1")


REFUSED = [
    (NewEndpoint("", "true"), ValidationFailed),
    (NewEndpoint("-x", "true"), ValidationFailed),
    (NewEndpoint("a b", "true"), ValidationFailed),
    (NewEndpoint("x" * 101, "true"), ValidationFailed),
    (NewEndpoint("ok", ""), ValidationFailed),
    (NewEndpoint("ok", [""]), ValidationFailed),
    (NewEndpoint("ok", "true", {"JOBYARD_X": "1"}), ValidationFailed),
    (NewEndpoint("ok", "true", {"TENSORONE_INPUT": "1"}), ValidationFailed),
    (NewEndpoint("ok", "true", {"A=B": "1"}), ValidationFailed),
    (NewEndpoint("ok", "true", time_limit_s=0), ValidationFailed),
    (NewEndpoint("ok", "true", resources=Resources(gpus=3)), Unschedulable),
    (NewEndpoint("ok", "true", resources=Resources(memory_mb=5000)), Unschedulable),
]


def test_refused_endpoints(store: SqlStore, service: EndpointService) -> None:
    ann, _, _ = people(store)
    for new, error in REFUSED:
        with pytest.raises(error):
            service.create(ann, new)
    assert service.list(ann) == []


def test_a_run_is_a_job_of_the_template(store: SqlStore, service: EndpointService) -> None:
    ann, abe, bob = people(store)
    ep = service.create(ann, NewEndpoint("gen", "python gen.py", {"MODE": "a", "KEEP": "1"},
                                         Resources(gpus=1, cpus=1.5), 120.0))
    run = RunEndpoint(env={"MODE": "b", "TENSORONE_INPUT": "{}"}, workdir="/tmp/ws",
                      priority=10, tags=("team:x",), webhook={"url": "https://h/x",
                                                              "events": ["job.completed"]},
                      retry=RetryPolicy(max_retries=2, backoff_s=1.0), outputs=("output.json",),
                      dialect={"tensorone": {"endpointId": ep.uid}})
    job = service.run(abe, ep, run)
    assert job.state is JobState.QUEUED and (job.user_id, job.org_id) == (abe.user_id,
                                                                          abe.org_id)
    assert (job.name, job.command, job.resources) == ("gen", "python gen.py", ep.resources)
    assert job.env == {"MODE": "b", "KEEP": "1", "TENSORONE_INPUT": "{}"}  # the run wins
    assert (job.workdir, job.priority, job.tags) == ("/tmp/ws", 10, ["team:x"])
    assert job.time_limit_s == 120.0  # the endpoint's, as the run set none
    assert job.retry == RetryPolicy(max_retries=2, backoff_s=1.0)
    assert job.webhook == {"url": "https://h/x", "events": ["job.completed"]}
    assert job.dialect == {"tensorone": {"endpointId": "ep_gen"}}
    assert job.output_patterns == ["output.json"]
    assert store.jobs.get_job(job.uid) == job

    faster = service.run(ann, ep, RunEndpoint(time_limit_s=5.0))
    assert faster.time_limit_s == 5.0
    with pytest.raises(EndpointNotFound):  # another org cannot run it
        service.run(bob, ep, RunEndpoint())
