"""Request parameters of the Integrate.io API: bodies (JSON, as the SDK sends them, or the
vendor docs' form encoding ``job[cluster_id]=52&job[variables][A]=1``) and pages."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from jobyard.api.validation import MAX_ROW_ID, InvalidInput, check_value, loads
from jobyard.errors import ValidationFailed

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_INTEGER = re.compile(r"-?[0-9]{1,18}")
MAX_OFFSET = 10**9


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"invalid request: {field}: {message}",
                            {"loc": ["body", field], "type": "value_error"})


async def body(request: Request, wrapper: str) -> dict[str, Any]:
    """The request's parameters as a dict; a body wrapped as ``{wrapper: {...}}`` (or form
    keys ``wrapper[...]``) is unwrapped."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if not raw.strip():
            data: Any = {}
        elif kind == "application/x-www-form-urlencoded":
            data = _form(raw.decode("utf-8", "replace"))
            check_value(data)
        else:
            data = loads(raw)
    except InvalidInput as exc:
        what = "the body is not valid JSON" if exc.kind == "json_invalid" else exc.reason
        raise ValidationFailed(f"invalid request: {what}",
                               {"loc": list(exc.loc), "type": exc.kind}) from None
    if not isinstance(data, dict):
        raise ValidationFailed("invalid request: the body must be a JSON object",
                               {"loc": ["body"], "type": "value_error"})
    inner = data.get(wrapper)
    return dict(inner) if isinstance(inner, dict) else data


def _form(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        found = _KEY.match(key)
        if not found:
            continue
        path = [found.group(1), *re.findall(r"\[([^\[\]]*)\]", found.group(2))]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return out


def integer(data: dict[str, Any], field: str, default: int | None = None,
            required: bool = False) -> int | None:
    """An integer field (a numeric string too, as form bodies carry them)."""
    value = data.get(field)
    if value is None or value == "":
        if required:
            raise invalid(field, "is required")
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    raise invalid(field, "must be an integer")


def row_id(data: dict[str, Any], field: str) -> int:
    """A required id field: an integer from 1 to the largest row id."""
    value = integer(data, field, required=True)
    if value is None or not 1 <= value <= MAX_ROW_ID:
        raise invalid(field, f"must be an id from 1 to {MAX_ROW_ID}")
    return value


def flag(data: dict[str, Any], field: str, default: bool = False) -> bool:
    value = data.get(field)
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def text(data: dict[str, Any], field: str, max_chars: int = 2000) -> str:
    value = data.get(field)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_chars:
        raise invalid(field, f"must be a string of at most {max_chars} characters")
    return value


def page(request: Request) -> tuple[int, int]:
    """``offset`` (default 0) and ``limit`` (default 20, at most 100) from the query."""
    q = request.query_params
    values = {}
    for name, default in (("offset", 0), ("limit", DEFAULT_LIMIT)):
        text = (q.get(name) or "").strip()
        if text and not _INTEGER.fullmatch(text):
            raise ValidationFailed("invalid request: offset and limit must be integers",
                                   {"loc": ["query", name], "type": "int_parsing"})
        values[name] = int(text) if text else default
    offset, limit = values["offset"], values["limit"]
    if not 0 <= offset <= MAX_OFFSET or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"invalid request: offset must be from 0 to {MAX_OFFSET} and "
                               f"limit from 1 to {MAX_LIMIT}",
                               {"loc": ["query"], "type": "value_error"})
    return offset, limit
