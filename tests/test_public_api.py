"""The public API, pinned: what ``jobyard`` and each SDK module export, and the namespaces and
methods of the two clients. A name dropped or renamed by accident fails here; a deliberate
change updates the lists below (and, for a rename, keeps the old name as an alias)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import jobyard

JOBYARD = [
    "AsyncClient",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "JobyardError",
    "NotFound",
    "RateLimited",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
]

# Every SDK module and its ``__all__``: one module per resource (models, ``...Calls``, the
# blocking namespace and its asyncio twin), plus the machinery they share.
SDK_MODULES = {
    "jobyard.sdk": [
        "ApiKey", "AsyncClient", "Client", "Cluster", "ClusterAccepted", "ConnectionFailed",
        "Endpoint", "Event", "Job", "JobRef", "LogLine", "LogPage", "Me", "Operation", "Org",
        "Package", "Page", "Schedule", "SubmitOptions", "User", "Volume", "VolumeAccepted",
    ],
    "jobyard.sdk.client": ["AsyncClient", "Client", "ConnectionFailed", "JobRef",
                           "SubmitOptions"],
    "jobyard.sdk.calls": ["Call", "Calls", "error_from_response", "raise_for_response"],
    "jobyard.sdk.models": ["Page", "parse_time"],
    "jobyard.sdk.sse": ["SSEPlan"],
    "jobyard.sdk.settings": ["DEFAULT_URL", "KEY_ENV", "URL_ENV", "Settings", "config_path",
                             "read_config", "resolve", "resolve_url", "write_config"],
    "jobyard.sdk.job": ["flush", "metric", "output", "progress", "substate"],
    "jobyard.sdk.jobs": [
        "TERMINAL_STATES", "AsyncJobs", "Event", "EventFollow", "Job", "JobCalls", "JobRef",
        "Jobs", "LogFollow", "LogLine", "LogPage", "SubmitOptions",
    ],
    "jobyard.sdk.accounts": [
        "ApiKey", "AsyncKeys", "AsyncOrgs", "AsyncUsers", "KeyCalls", "Keys", "Me", "Org",
        "OrgCalls", "Orgs", "User", "UserCalls", "Users",
    ],
    "jobyard.sdk.volumes": ["AsyncVolumes", "Volume", "VolumeAccepted", "VolumeCalls",
                            "Volumes"],
    "jobyard.sdk.operations": ["TERMINAL_STATUSES", "AsyncOperations", "Operation",
                               "OperationCalls", "Operations"],
    "jobyard.sdk.clusters": ["AsyncClusters", "Cluster", "ClusterAccepted", "ClusterCalls",
                             "Clusters"],
    "jobyard.sdk.endpoints": ["AsyncEndpoints", "Endpoint", "EndpointCalls", "Endpoints"],
    "jobyard.sdk.packages": [
        "AsyncPackages", "AsyncSchedules", "Package", "PackageCalls", "Packages", "Schedule",
        "ScheduleCalls", "Schedules",
    ],
}

# ``client.<namespace>.<method>``, the same on Client and AsyncClient.
NAMESPACES = {
    "jobs": ["cancel", "get", "list", "list_page", "logs", "metrics", "pause", "resume", "stream",
             "submit", "wait"],
    "users": ["create", "list"],
    "orgs": ["create", "list"],
    "keys": ["create", "list", "revoke"],
    "volumes": ["attach", "create", "destroy", "detach", "edit", "get", "list"],
    "operations": ["get", "list", "wait"],
    "clusters": ["claim", "edit", "get", "list", "release"],
    "endpoints": ["create", "delete", "get", "list"],
    "packages": ["create", "delete", "get", "list"],
    "schedules": ["create", "delete", "disable", "enable", "get", "list"],
}
OLDER_NAMES = {"storage": "volumes", "requests": "operations"}  # aliases, the same objects


def test_jobyard_exports_exactly_these_names_and_each_resolves() -> None:
    assert sorted(jobyard.__all__) == sorted(JOBYARD)
    for name in JOBYARD:
        assert getattr(jobyard, name) is not None, name
    assert jobyard.Client is importlib.import_module("jobyard.sdk.client").Client
    with pytest.raises(AttributeError):
        jobyard.NoSuchName  # noqa: B018


@pytest.mark.parametrize("module", sorted(SDK_MODULES))
def test_each_sdk_module_exports_exactly_these_names_and_each_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(SDK_MODULES[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is in __all__ but not defined"


def test_every_sdk_module_is_pinned() -> None:
    import jobyard.sdk

    found = {f"jobyard.sdk.{m.name}" for m in pkgutil.iter_modules(jobyard.sdk.__path__)}
    assert found | {"jobyard.sdk"} == set(SDK_MODULES)


def _methods(obj: object) -> list[str]:
    return sorted(n for n, _ in inspect.getmembers(type(obj), inspect.isfunction)
                  if not n.startswith("_"))


def test_both_clients_have_the_same_namespaces_and_methods() -> None:
    client = jobyard.Client("http://jobyard.test", "k")
    aclient = jobyard.AsyncClient("http://jobyard.test", "k")
    for c in (client, aclient):
        for name, methods in NAMESPACES.items():
            assert _methods(getattr(c, name)) == methods, name
        for old, new in OLDER_NAMES.items():
            assert getattr(c, old) is getattr(c, new)
        public = {n for n in vars(c) if not n.startswith("_")}
        assert public == {*NAMESPACES, *OLDER_NAMES, "url", "api_key", "timeout"}
    assert _methods(client) == ["close", "health", "me"]
    assert _methods(aclient) == ["aclose", "health", "me"]
    client.close()


def test_the_sdk_imports_nothing_of_the_server() -> None:
    # The SDK knows the server only over HTTP: importing it loads no server module (which also
    # keeps it unaffected by refactors of the server's packages).
    code = ("import sys, jobyard.sdk; "
            "print(sorted(m for m in sys.modules if m.startswith('jobyard')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    loaded = set(ast.literal_eval(out))
    assert {m for m in loaded if not m.startswith("jobyard.sdk")} == {"jobyard", "jobyard.errors"}
