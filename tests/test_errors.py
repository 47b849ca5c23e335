"""The one error tree (errors.py) and the one table of HTTP statuses (api/errors.py)."""

from __future__ import annotations

import ast
import pathlib

import pytest

from jobyard import errors
from jobyard.api.errors import STATUS, http_status

SRC = pathlib.Path(errors.__file__).parent


def _all_classes() -> list[type[errors.JobyardError]]:
    found, todo = [], [errors.JobyardError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_lives_in_errors_py():
    """No module outside errors.py defines an exception of the tree."""
    names = {cls.__name__ for cls in _all_classes()}
    elsewhere = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id in names for b in node.bases):
                elsewhere.append(f"{path.relative_to(SRC)}:{node.name}")
    assert elsewhere == []


def test_every_code_names_its_class_for_the_sdk():
    classes = [c for c in _all_classes() if c.__module__ == "jobyard.errors"]
    assert {c.code for c in classes} == set(errors.BY_CODE)
    for cls in classes:
        assert errors.BY_CODE[cls.code] is cls
    assert errors.BY_CODE["QUOTA_EXCEEDED"] is errors.QuotaExceeded


def test_domain_errors_carry_no_http_status():
    for cls in _all_classes():
        assert "status" not in vars(cls), cls
    assert errors.Conflict("x").status is None


@pytest.mark.parametrize("exc, status", [
    (errors.ValidationFailed(), 422), (errors.BadRequest(), 400), (errors.Unauthorized(), 401),
    (errors.Forbidden(), 403), (errors.JobNotFound(), 404), (errors.EndpointNotFound(), 404),
    (errors.IllegalTransition(), 409), (errors.DeletionProtected(), 409),
    (errors.QuotaExceeded(), 409), (errors.Unschedulable(), 422), (errors.RateLimited(), 429),
    (errors.NotSupported(), 501), (errors.JobyardError(), 500),
])
def test_statuses_come_from_the_table_by_code_or_nearest_base(exc, status):
    assert http_status(exc) == status


def test_a_dialect_table_can_differ():
    assert http_status(errors.ValidationFailed(), {**STATUS, "INVALID_INPUT": 400}) == 400


def test_rate_limited_says_when_to_retry():
    assert errors.RateLimited("slow down", {"retry_after": 3.0}).retry_after == 3.0
    assert errors.RateLimited("slow down").retry_after is None
