"""Property-based fuzzing of the OpenAPI of all four APIs (native, TensorPool, TensorOne,
Integrate.io): schemathesis generates requests for every operation from the app's own OpenAPI
(valid and invalid ones: wrong types, missing fields, NUL characters, odd parameters), sends
them to the real app over HTTP, and checks that no answer is a 5xx (but the 501s the
TensorPool routes of what is not offered document) and that every answer whose schema the
OpenAPI declares matches it (the vendor dialects declare their error envelopes). Each example
is sent a second time with one value of its JSON body replaced by one a client should never
get past validation (``NaN``, ``Infinity``, a 2^63 integer, a lone surrogate, a NUL, ``²``):
that one must be a 4xx in the dialect's shape.

The app runs in this process (uvicorn on a loopback port) with the daemon and a fake executor:
jobs are scheduled, "run" and end, but no fuzzed command is ever executed. SQLite only.

``JOBYARD_FUZZ_EXAMPLES`` (default 3) is the number of examples per operation and mode;
``JOBYARD_FUZZ_DATABASE_URL`` runs it on another database (an empty PostgreSQL one, by hand);
``pytest -s`` prints how many requests were sent and what came back.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from jobyard.api.app import create_app
from jobyard.config import load_config
from jobyard.executors.fake import FakeExecutor
from jobyard.runtime import build_runtime
from jobyard.testing import ADMIN_KEY, free_port, wait_until

EXAMPLES = int(os.environ.get("JOBYARD_FUZZ_EXAMPLES", "3"))
ACCOUNT = "default"  # the admin's org: the Integrate.io account
ENDPOINT = "ep_fuzzed"
# Values no body may carry past validation (see api/validation.py).
NASTY: list[Any] = [math.nan, math.inf, -math.inf, 2**63, -(2**63) - 1, 10**30, "\ud800",
                    "a\udfffb", "nul\x00here", "\x00"]
XPLENTY = {"Accept": "application/vnd.xplenty+json; version=2",
           "Authorization": "Basic " + base64.b64encode(ADMIN_KEY.encode()).decode()}
STATS: Counter[str] = Counter()

pytestmark = pytest.mark.skipif(
    "sqlite" not in os.environ.get("JOBYARD_TEST_BACKENDS", "sqlite,postgresql").split(","),
    reason="the fuzz test runs on SQLite")


class App:
    """The real app (daemon, fake executor) served by uvicorn in a thread."""

    def __init__(self, data_dir: Path):
        self.port = free_port()
        config = load_config(data_dir=data_dir, port=self.port, bootstrap_admin_key=ADMIN_KEY,
                             virtual_gpus=4, tick_interval_s=0.2, sse_heartbeat_s=0.5,
                             database_url=os.environ.get("JOBYARD_FUZZ_DATABASE_URL")
                             or f"sqlite:///{data_dir / 'jobyard.db'}")
        self.runtime = build_runtime(config, executor=FakeExecutor(auto_exit_code=0))
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(self.runtime), host="127.0.0.1", port=self.port, log_level="warning",
            access_log=False, timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, name="fuzzed-app", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> App:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with App(tmp_path_factory.mktemp("fuzz")) as served:
        seed(served)
        yield served
    if STATS:
        print(f"\nfuzz: {dict(sorted(STATS.items()))}")


def seed(served: App) -> None:
    """Things the fuzzed ids can name: a job, an endpoint, a package, a schedule."""
    with httpx.Client(base_url=served.url, timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as api:
        for path, body in (("/v1/jobs", {"command": "true", "tags": ["fuzz"]}),
                           ("/v1/endpoints", {"name": ENDPOINT[3:], "command": "true"}),
                           ("/v1/packages", {"name": "fuzzed", "command": "true"}),
                           ("/v1/schedules", {"name": "fuzzed", "package": "fuzzed",
                                              "interval_amount": 1, "interval_unit": "days",
                                              "enabled": False})):
            r = api.post(path, json=body)
            assert r.status_code == 201, r.text


def steer(case: Any) -> None:
    """Send the fuzzed request as a client of its dialect would: with its credentials, and
    for about half of the examples naming things that exist (the generated ids mostly name
    nothing, which stops a request at its lookup)."""
    path = case.path
    headers = dict(case.headers or {})
    if path.startswith("/{account_id}/api"):
        case.path_parameters = {**(case.path_parameters or {}), "account_id": ACCOUNT}
        headers.update(XPLENTY)
    else:
        headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    case.headers = headers
    params = dict(case.path_parameters or {})
    real = {"ref": "1", "job_id": "1", "endpoint_id": ENDPOINT, "package_id": "1",
            "schedule_id": "1"}
    for name, value in params.items():
        if name in real and hash(repr(value)) % 2 == 0:
            params[name] = real[name]
    if params:
        case.path_parameters = params


def spares_the_fuzzer(case: Any) -> bool:
    """Requests that would take the fuzzer's own key away (and so end the run early)."""
    return case.method.upper() == "DELETE" and case.path == "/v1/keys/{key_id}"


def mutated(body: Any, rng: random.Random) -> Any | None:
    """``body`` with one value (or an added one) replaced by a nasty one; None if it has no
    JSON object or array to change."""
    if not isinstance(body, dict | list):
        return None
    copy = json.loads(json.dumps(body))
    nodes: list[Any] = [copy]
    stack: list[Any] = [copy]
    while stack:
        node = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                nodes.append(child)
                stack.append(child)
    target = rng.choice(nodes)
    value = rng.choice(NASTY)
    if isinstance(target, dict):
        keys = list(target)
        if keys and rng.random() < 0.8:
            target[rng.choice(keys)] = value
        elif isinstance(value, str):
            target[value] = 1  # a nasty key
        else:
            target["extra"] = value
    elif target:
        target[rng.randrange(len(target))] = value
    else:
        target.append(value)
    return copy


def documented_501(case: Any, status: int) -> bool:
    return status == 501 and "501" in (case.operation.definition.raw.get("responses") or {})


def check_shape(path: str, status: int, body: Any) -> None:
    """A 4xx carries its dialect's error fields."""
    assert isinstance(body, dict), body
    if path.startswith("/v2/"):
        assert {"error", "message", "details"} <= set(body), body
    elif path.startswith("/{account_id}/api"):
        assert isinstance(body.get("message"), str), body
    elif path.startswith("/v1/") or path.startswith("/metrics") or path == "/healthz":
        assert "detail" in body if status == 422 else "error" in body, body
    else:  # TensorPool
        assert isinstance(body.get("message"), str), body


@pytest.mark.timeout(120 + EXAMPLES * 60)
def test_no_request_gets_a_server_error(app: App) -> None:
    loaded = schemathesis.openapi.from_url(f"{app.url}/openapi.json")
    loaded.config.update(base_url=app.url)
    failures: list[str] = []
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) > 100  # all four APIs
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])
            def fuzz(case: Any) -> None:
                exercise(app, case)

            try:
                fuzz()
            except Unsatisfiable:  # nothing in it to make invalid (no parameters, no body)
                STATS["unsatisfiable"] += 1
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}"[:2000])
    STATS["operations"] = len(operations)
    assert failures == [], "\n\n".join(failures)


def exercise(app: App, case: Any) -> None:
    """Send one generated request (and its mutated twin) and check the answers."""
    if spares_the_fuzzer(case):
        return
    steer(case)
    response = case.call(timeout=30)
    STATS["requests"] += 1
    status = response.status_code
    STATS["501 (documented)" if documented_501(case, status) else f"{status // 100}xx"] += 1
    assert status < 500 or documented_501(case, status), (
        f"{case.method} {case.formatted_path}: {status} {response.text[:500]}")
    if status != 501:
        case.validate_response(response, checks=[response_schema_conformance])
    if 400 <= status < 500 and "json" in response.headers.get("content-type", ""):
        check_shape(case.path, status, response.json())

    # The same request with a value no client should get past validation.
    rng = random.Random(repr((case.method, case.formatted_path, case.body)))
    body = mutated(case.body, rng)
    if body is None:
        return
    raw = json.dumps(body, allow_nan=True)  # NaN, Infinity; surrogates as \ud800
    headers = {k: v for k, v in (case.headers or {}).items()
               if k.lower() not in ("content-type", "content-length")}
    headers["Content-Type"] = "application/json"
    with httpx.Client(base_url=app.url, timeout=30) as client:
        nasty = client.request(case.method, case.formatted_path, params=case.query,
                               headers=headers, content=raw.encode())
    STATS["requests"] += 1
    STATS["mutated"] += 1
    if documented_501(case, nasty.status_code):
        STATS["501 (documented)"] += 1
        return
    STATS[f"{nasty.status_code // 100}xx"] += 1
    assert 400 <= nasty.status_code < 500, (
        f"{case.method} {case.formatted_path} {raw[:300]}: {nasty.status_code} "
        f"{nasty.text[:500]}")
    check_shape(case.path, nasty.status_code, nasty.json())
