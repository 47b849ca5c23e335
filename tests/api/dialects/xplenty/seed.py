"""The Integrate.io seed page's OpenAPI block (docs/seeds/), as JSON Schemas that check
answers: ``check_job`` for every job, ``check_error`` for 401/404 bodies.

OpenAPI 3.0's ``nullable: true`` becomes a ``null`` alternative; ``date-time`` and ``uri``
formats are checked. The job schema is made strict on top of the seed: no property outside
it (plus ``completed_at``, which the SDK reads and the seed lacks), and the properties a job
always carries are required.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

SEEDS = Path(__file__).resolve().parents[4] / "docs" / "seeds"  # the vendor pages, verbatim
BLOCK = re.compile(r"````yaml \S+ (\w+) (\S+)\n(.*?)````", re.S)
TITLE = "Integrate.io (Xplenty) ETL API"
ALWAYS = ("id", "status", "owner_id", "progress", "outputs_count", "outputs", "variables",
          "dynamic_variables", "started_at", "created_at", "failed_at", "updated_at",
          "completed_at", "errors", "runtime_in_seconds", "url", "html_url", "log_url",
          "creator")


def seed_document() -> dict[str, Any]:
    for page in sorted(SEEDS.glob("*.txt")):
        for method, path, text in BLOCK.findall(page.read_text()):
            doc = yaml.safe_load(text)
            if doc.get("info", {}).get("title") == TITLE and (method, path) == (
                    "get", "/jobs/{job_id}"):
                return doc
    raise LookupError("the Integrate.io seed page (GET /jobs/{job_id}) is missing")


def json_schema(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: ``nullable: true`` → ``type: [T, "null"]``."""
    if isinstance(node, list):
        return [json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    return out


def _date_time(value: object) -> bool:
    if not isinstance(value, str):  # formats apply to strings only (null is typed apart)
        return True
    if "T" not in value:
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time", raises=ValueError)(_date_time)
FORMATS.checks("uri")(_uri)
DOC = seed_document()
COMPONENTS = json_schema(DOC["components"])
SEED_JOB = {"$ref": "#/components/schemas/Job", "components": COMPONENTS}
_job = COMPONENTS["schemas"]["Job"]
STRICT_JOB = {
    **_job, "additionalProperties": False, "required": list(ALWAYS),
    "properties": {**_job["properties"],
                   "completed_at": {"type": ["string", "null"], "format": "date-time"}},
    "components": COMPONENTS,
}
STRICT_JOB["properties"]["outputs"] = {"type": "array", "items": {
    **COMPONENTS["schemas"]["JobOutput"], "additionalProperties": False}}
ERROR = {**COMPONENTS["schemas"]["Error"], "required": ["message"],
         "additionalProperties": False}


def check_job(body: Any) -> dict[str, Any]:
    """``body`` is the seed's Job (and strictly so); returns it."""
    jsonschema.validate(body, SEED_JOB, format_checker=FORMATS)
    jsonschema.validate(body, STRICT_JOB, format_checker=FORMATS)
    return body


def check_error(body: Any) -> str:
    """``body`` is the seed's Error (only ``message``); returns the message."""
    jsonschema.validate(body, ERROR)
    return body["message"]


def seed_statuses() -> set[str]:
    return set(DOC["components"]["schemas"]["Job"]["properties"]["status"]["enum"])
