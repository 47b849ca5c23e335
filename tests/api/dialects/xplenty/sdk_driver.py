"""Drives the published ``xplenty`` 2.0.0 SDK, unmodified, in its own virtual environment.

``python sdk_driver.py URL ACCOUNT KEY ACTION [ARGS_JSON]`` prints one JSON line: the result
(models as their attributes, dates as ISO strings or null, ``missing`` naming the attributes
the SDK did not create) or ``{"error": message, "status": code}``. Only the Python 3 shims of
docs/compat/xplenty-sdk.md section 7 are applied; ``wait_*`` actions poll until a status is
reached (the SDK has no wait of its own).
"""

from __future__ import annotations

import base64
import collections
import collections.abc
import datetime
import importlib
import json
import sys
import time
import urllib.request

collections.Callable = collections.abc.Callable  # type: ignore[attr-defined]  # dateutil 2.4.2
if not hasattr(base64, "encodestring"):  # removed in Python 3.9; the SDK passes a str
    base64.encodestring = lambda s: base64.encodebytes(  # type: ignore[attr-defined]
        s.encode() if isinstance(s, str) else s).decode()

api = importlib.import_module("xplenty.xplenty_api")
exceptions = importlib.import_module("xplenty.exceptions")


class _BytesRequest(urllib.request.Request):
    """The SDK passes str POST bodies; Request.__init__, not super() (see section 7)."""

    def __init__(self, url, data=None, headers=None, *args, **kwargs):
        if isinstance(data, str):
            data = data.encode("utf-8")
        urllib.request.Request.__init__(self, url, data, headers or {}, *args, **kwargs)


api.Request = _BytesRequest

MODEL_KEYS = ("_strs", "_ints", "_floats", "_dates", "_bools", "_dicts")


def plain(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, api.BaseModel):
        out, missing = {}, []
        for group in MODEL_KEYS:
            for key in getattr(value, group, []):
                if hasattr(value, key):
                    out[key] = plain(getattr(value, key))
                else:
                    missing.append(key)
        out["missing"] = missing
        return out
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def wait(fetch, wanted, timeout):
    deadline = time.monotonic() + timeout
    while True:
        item = fetch()
        if item.status in wanted or time.monotonic() > deadline:
            return item
        time.sleep(0.05)


def main(url, account, key, action, args):
    api.API_URL = url.rstrip("/") + "/%s/api/"
    client = importlib.import_module("xplenty").XplentyClient(account, key)
    calls = {
        "limits": lambda: client.get_account_limits(),
        "create_cluster": lambda: client.create_cluster(**args),
        "get_cluster": lambda: client.get_cluster(args["id"]),
        "clusters": lambda: client.get_clusters(**args),
        "terminate_cluster": lambda: client.terminate_cluster(args["id"]),
        "wait_cluster": lambda: wait(lambda: client.get_cluster(args["id"]), args["status"],
                                     args.get("timeout", 30)),
        "add_job": lambda: client.add_job(**args),
        "get_job": lambda: client.get_job(args["id"]),
        "jobs": lambda: client.get_jobs(),
        "stop_job": lambda: client.stop_job(args["id"]),
        "wait_job": lambda: wait(lambda: client.get_job(args["id"]), args["status"],
                                 args.get("timeout", 30)),
        "packages": lambda: client.get_packages(**args),
        "package": lambda: client.get_package(args["id"]),
        "schedules": lambda: client.get_schedules(),
        "schedule": lambda: client.get_schedule(args["id"]),
    }
    try:
        result = plain(calls[action]())
    except exceptions.XplentyAPIException as exc:
        result = {"error": str(exc), "status": exc.http_error.code}
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:5], json.loads(sys.argv[5]) if len(sys.argv) > 5 else {})
