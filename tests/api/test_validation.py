"""The rules of ``api/validation.py`` on their own: strict JSON, the text rule, ids, rendering
what an error echoes; and that every route of the app applies them (its route class)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from jobyard.api.validation import (
    MAX_ROW_ID,
    InvalidInput,
    StrictRoute,
    ascii_int,
    job_ref,
    loads,
    row_ref,
    safe,
    safe_errors,
    text_problem,
)
from jobyard.errors import JobNotFound, NotFound


@pytest.mark.parametrize(("text", "kind", "loc"), [
    ("NaN", "finite_number", ["body"]), ("[Infinity]", "finite_number", ["body"]),
    ('{"a": -Infinity}', "finite_number", ["body"]), ("1e400", "finite_number", ["body"]),
    ('{"a": [1, -1e999]}', "finite_number", ["body"]),
    (str(2**63), "int_too_large", ["body"]), (str(-(2**63) - 1), "int_too_large", ["body"]),
    ("1" * 5000, "int_too_large", ["body"]),
    ('"\\ud800"', "string_invalid", ["body"]), ('{"a": ["x", "\\udfff"]}', "string_invalid",
                                                  ["body", "a", 1]),
    ('{"\\u0000": 1}', "string_invalid", ["body", "\\x00"]),
    ('{"a": {"b": "c\\u0000"}}', "string_invalid", ["body", "a", "b"]),
    ("{", "json_invalid", ["body", 1]), ("[" * 100000, "json_invalid", ["body"]),
])
def test_loads_refuses_what_the_api_does_not_take(text, kind, loc) -> None:
    with pytest.raises(InvalidInput) as refused:
        loads(text.encode())
    assert refused.value.kind == kind and refused.value.error()["loc"][:len(loc)] == loc
    assert isinstance(refused.value, json.JSONDecodeError)  # what FastAPI knows as a 4xx


def test_loads_takes_what_is_fine() -> None:
    text = '{"a": [1.5, -2, 9223372036854775807, -9223372036854775808, "\\ud83d\\ude00", "é"]}'
    assert loads(text.encode()) == {"a": [1.5, -2, 2**63 - 1, -(2**63), "😀", "é"]}
    assert loads(b"1e308") == 1e308 and loads(b"0.0") == 0.0


def test_the_text_rule() -> None:
    assert text_problem("plain é 😀") is None
    assert "NUL" in (text_problem("a\x00") or "")
    assert "surrogate" in (text_problem("\udc00") or "")


@pytest.mark.parametrize(("ref", "found"), [("1", 1), ("0012", 12), (str(MAX_ROW_ID), MAX_ROW_ID),
                                            ("job_k3n9x2m4p7q8", "job_k3n9x2m4p7q8"),
                                            ("job_doesnotexist", "job_doesnotexist")])
def test_job_refs(ref, found) -> None:
    assert job_ref(ref) == found


@pytest.mark.parametrize("ref", ["²", "1²", "٣", str(MAX_ROW_ID + 1), str(2**63), "9" * 40,
                                 "-1", "1e3", " 1", "jobs_x", "job_", "x", "job_a b"])
def test_other_job_refs_are_not_found(ref) -> None:
    with pytest.raises(JobNotFound):
        job_ref(ref)


def test_row_refs_and_ascii_ints() -> None:
    assert row_ref("7", "package") == 7 and row_ref("²", "package") == "²"
    assert row_ref("etl", "package") == "etl"
    with pytest.raises(NotFound):
        row_ref(str(2**63), "package")
    assert ascii_int("42") == 42 and ascii_int("²") is None and ascii_int("9" * 19) is None
    assert ascii_int(str(2**31), MAX_ROW_ID) is None and ascii_int(None) is None


def test_what_an_error_echoes_is_always_json() -> None:
    odd = {"input": {"n": math.nan, "i": -math.inf, "s": "\ud800\x00", b"k": b"\xff",
                     "o": object(), "deep": [[[[1]]]]},
           "loc": ("body", 3, "\udfff"), "msg": "bad \ud800", "type": "x",
           "ctx": {"error": ValueError("no")}}
    [clean] = safe_errors([odd])
    text = json.dumps(clean, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert json.loads(text)["loc"] == ["body", 3, "\\udfff"]
    assert clean["input"]["n"] == "nan" and clean["ctx"] == {"error": "no"}
    assert safe(float("inf")) == "inf" and safe(2**70) == 2**70


def test_every_route_of_the_app_is_strict(tmp_path: Path) -> None:
    from jobyard.api.app import create_app
    from jobyard.config import load_config
    from jobyard.executors.fake import FakeExecutor
    from jobyard.runtime import build_runtime

    config = load_config(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'j.db'}")
    rt = build_runtime(config, with_daemon=False, executor=FakeExecutor())
    try:
        routes = [r for r in _routes(create_app(rt).routes) if isinstance(r, APIRoute)]
        loose = [r.path for r in routes if not isinstance(r, StrictRoute)]
        assert len(routes) > 100 and loose == []
    finally:
        rt.engines.dispose()


def _routes(routes: list[Any]) -> list[Any]:
    """Every route, also inside included routers (newer FastAPI keeps them as branches)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(_routes(inner.routes) if inner is not None else [route])
    return out
