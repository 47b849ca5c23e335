"""The SDK's :class:`~jobyard.sdk.jobs.Job` mirrors the native API's job object by hand; these
tests hold the two together against a real server, so that a key added to (or dropped from)
either side fails here rather than going silently unparsed (or staying forever None)."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import datetime
from typing import Any

from jobyard.core.states import TERMINAL
from jobyard.sdk.jobs import TERMINAL_STATES, Job
from tests.api.helpers import scratch, submit, wait_state

# Keys of the job JSON that the SDK leaves in ``Job.raw`` on purpose. None today: every key is a
# typed field. Add one here only with the reason it is not worth a field.
JSON_ONLY: dict[str, str] = {}

# Fields of ``Job`` that are not keys of the JSON. ``raw`` is the JSON itself, not a key of it.
SDK_ONLY: dict[str, str] = {"raw": "the whole JSON the job was parsed from"}

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")

# A job that fills in what it can: progress, step, metadata, a metric and an output.
REPORTING_JOB = (
    "import jobyard.job as j; open('out.txt', 'w').write('x'); "
    "j.progress(50, step='half', metadata={'n': 1}, items_done=1, items_total=2); "
    "j.metric('loss', 0.5); j.output('out', 'out.txt', records=1); j.flush()"
)


def _sdk_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(Job)}


def _job_objects(api: Any, tag: str, tmp_path: Any) -> list[dict[str, Any]]:
    """The job object as each native call that returns one shows it: the submit answer, the
    job while it may still be queued, once it ended, and as an item of the listing."""
    created = submit(api, ["python3", "-c", REPORTING_JOB], tags=[tag],
                     workdir=str(scratch(tmp_path)), webhook={"url": "https://hooks.example.com/x"})
    early = api.get(f"/v1/jobs/{created['id']}").json()
    ended = wait_state(api, created["id"], timeout=30)
    assert ended["state"] == "completed", ended
    listed = api.get("/v1/jobs", params={"tag": tag}).json()["items"]
    assert [j["id"] for j in listed] == [created["id"]]
    return [created, early, ended, listed[0]]


def test_the_sdk_job_parses_every_key_of_the_native_job_and_nothing_else(api, tmp_path):
    objects = _job_objects(api, "shape" + uuid.uuid4().hex[:8], tmp_path)
    fields = _sdk_fields()
    for obj in objects:
        unparsed = set(obj) - fields - set(JSON_ONLY)
        assert not unparsed, (
            f"the native job has keys the SDK's Job does not parse: {sorted(unparsed)}; "
            "add them to jobyard.sdk.jobs.Job (or to JSON_ONLY, saying why)")
    sent = set().union(*objects)
    missing = fields - sent - set(SDK_ONLY)
    assert not missing, (
        f"the SDK's Job has fields the native job never sends: {sorted(missing)}; "
        "remove them from jobyard.sdk.jobs.Job (or add them to SDK_ONLY, saying why)")
    assert not set(JSON_ONLY) & fields, "a key in JSON_ONLY is parsed after all"
    assert not set(SDK_ONLY) & sent, "a field in SDK_ONLY is sent after all"


def test_times_in_the_native_job_are_parsed_to_datetimes(api, tmp_path):
    ended = _job_objects(api, "times" + uuid.uuid4().hex[:8], tmp_path)[2]
    job = Job.from_dict(ended)
    times = {k for k, v in ended.items() if isinstance(v, str) and ISO_TIME.match(v)}
    assert {"created_at", "started_at", "finished_at"} <= times
    for key in times:
        assert isinstance(getattr(job, key), datetime), f"Job.{key} is not parsed as a time"
    assert job.raw == ended and job.is_terminal and job.succeeded


def test_terminal_states_are_the_servers():
    # The SDK writes them out (it knows the server only over HTTP); they must stay the same.
    assert {str(s) for s in TERMINAL} == TERMINAL_STATES
