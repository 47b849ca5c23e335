"""The package and schedule rules: variables, the environment of a run, schedule times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobyard.core.models import Resources
from jobyard.core.packages import (
    check_command,
    check_interval,
    check_label,
    check_resources,
    check_variables,
    env_value,
    job_env,
    next_run,
    run_time,
)
from jobyard.errors import ValidationFailed

HOUR = 3600.0


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def test_the_environment_of_a_run_is_defaults_then_variables_then_dynamic_variables():
    env = job_env({"A": "'pkg'", "B": "pkg", "C": "pkg"}, {"B": "'run'", "C": "run"},
                  {"C": "'dynamic'"})
    assert env == {"A": "pkg", "B": "run", "C": "dynamic"}


@pytest.mark.parametrize(("value", "env"), [
    ("'hello'", "hello"), ("''", ""), ("'it''s'", "it's"), ("'it\\'s'", "it's"),
    ("plain", "plain"), ("'half", "'half"), ("x'y'", "x'y'"), ("'", "'"), ("", ""),
    ("CurrentTime()", "CurrentTime()"), ("'a b' ", "'a b' "),
])
def test_string_literals_lose_their_quotes_and_the_rest_is_verbatim(value, env):
    assert env_value(value) == env


def test_variables_are_named_like_env_vars_and_valued_as_strings():
    assert check_variables({"A": 1, "B": 2.5, "C": True, "D": False, "_e": "x"}) == {
        "A": "1", "B": "2.5", "C": "true", "D": "false", "_e": "x"}
    assert check_variables(None) == {}
    for bad in ({"1A": "x"}, {"A-B": "x"}, {"": "x"}, {"JOBYARD_X": "x"}, {"A": None},
                {"A": ["x"]}, {"A": {"b": 1}}, {"A": float("nan")}, ["A"], "A=1",
                {"A": "x" * 9000}):
        with pytest.raises(ValidationFailed):
            check_variables(bad)
    with pytest.raises(ValidationFailed) as info:
        check_variables({"ok": "1", "9": "x"}, "dynamic_variables")
    assert info.value.details["loc"] == ["body", "dynamic_variables", "9"]


def test_commands_resources_names_and_intervals_are_checked():
    assert check_command("echo hi") == "echo hi" and check_command(["a", "b"]) == ["a", "b"]
    assert check_resources({"gpus": 1, "cpus": 2}) == Resources(1, 2.0, 0)
    assert check_resources(None) == Resources()
    assert check_label("  My ETL  ") == "My ETL"
    assert check_interval(3, "weeks") == (3, "weeks")
    for call in (lambda: check_command(""), lambda: check_command([]),
                 lambda: check_command(["", "x"]), lambda: check_resources({"cpus": 0}),
                 lambda: check_resources({"disk": 1}), lambda: check_label("42"),
                 lambda: check_label(""), lambda: check_label("x" * 101),
                 lambda: check_interval(0, "days"), lambda: check_interval(1, "years"),
                 lambda: check_interval(True, "days"), lambda: check_interval("2", "days")):
        with pytest.raises(ValidationFailed):
            call()


@pytest.mark.parametrize("unit", ["minutes", "hours", "days", "weeks"])
def test_fixed_intervals_fall_on_start_plus_k_steps(unit):
    step = {"minutes": 60, "hours": HOUR, "days": 24 * HOUR, "weeks": 7 * 24 * HOUR}[unit] * 2
    start = ts("2030-03-01T09:30:00")
    assert next_run(start, 2, unit, start - 1) == start
    assert next_run(start, 2, unit, start, inclusive=True) == start
    assert next_run(start, 2, unit, start) == start + step
    assert next_run(start, 2, unit, start + 2.5 * step) == start + 3 * step
    assert next_run(start, 2, unit, start + 3 * step) == start + 4 * step
    assert next_run(start, 2, unit, start + 3 * step, inclusive=True) == start + 3 * step
    far = start + 100_000 * step + 1
    assert next_run(start, 2, unit, far) == start + 100_001 * step


def test_months_are_calendar_months_with_the_day_clamped():
    start = ts("2024-01-31T10:00:00")
    assert [iso(run_time(start, 1, "months", k)) for k in range(5)] == [
        "2024-01-31 10:00", "2024-02-29 10:00", "2024-03-31 10:00", "2024-04-30 10:00",
        "2024-05-31 10:00"]
    assert iso(next_run(start, 1, "months", ts("2024-02-29T10:00:00"))) == "2024-03-31 10:00"
    assert iso(next_run(start, 1, "months", ts("2024-02-29T09:59:00"))) == "2024-02-29 10:00"
    assert iso(next_run(start, 3, "months", ts("2025-01-01T00:00:00"))) == "2025-01-31 10:00"
    assert iso(next_run(start, 12, "months", ts("2031-06-01T00:00:00"))) == "2032-01-31 10:00"
    assert iso(run_time(start, 1, "months", 13)) == "2025-02-28 10:00"
