"""Packages and schedules (Integrate.io's concepts, usable from every API).

A **package** is a named command of an org with default ``variables`` and the resources each
run needs. Running it makes an ordinary job; the job's environment is built by one rule
(:func:`job_env`): the package's default variables, overridden by the run's ``variables``,
overridden by its ``dynamic_variables``; each value becomes an environment variable of the
same name, a value written as an Integrate.io string literal (``'hello'``) losing its quotes.
The run's facts are kept in ``job.dialect["xplenty"]`` (:data:`DIALECT_KEY`), so every API
shows them.

A **schedule** runs a package every ``interval_amount`` ``interval_unit`` from ``start_at``
(runs fall on ``start_at + k·interval``; months are calendar months, the day clamped to the
month's length). The leading daemon submits the run when ``next_run_at`` is due
(``daemon/schedules.py``); runs missed while the server was down are not made up (one run,
then the next future time), and a run is skipped while the previous run of the schedule is
still queued or running (Integrate.io's default, no overlap).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobyard.core.inputs import CreatePackage, CreateSchedule, RunPackage, SubmitJob
from jobyard.core.jobs import JobService
from jobyard.core.models import Job, Principal, Resources
from jobyard.core.ports import PackageStore
from jobyard.errors import NotFound, ValidationFailed

DIALECT_KEY = "xplenty"  # job.dialect[DIALECT_KEY]: package, variables, Integrate.io cluster id
# kv key prefix (+ the cluster's integer id): what an Integrate.io cluster create asked for
# that clusters have no column for (type, description, terminate_on_idle, time_to_idle).
CLUSTER_META = "xplenty.cluster."
UNITS: dict[str, int] = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400,
                         "months": 0}  # months: calendar months
ENABLED, DISABLED = "enabled", "disabled"
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_VARIABLES = 200
MAX_VALUE_CHARS = 8192
MAX_DESCRIPTION = 2000
MAX_PAGE = 100


@dataclass(slots=True)
class Package:
    id: int
    org_id: int
    user_id: int
    name: str
    description: str
    command: str | list[str]
    variables: dict[str, str]  # defaults, as given (see job_env)
    resources: Resources
    created_at: float
    updated_at: float


@dataclass(slots=True)
class Schedule:
    id: int
    org_id: int
    user_id: int
    package_id: int
    name: str
    description: str
    variables: dict[str, str]
    status: str  # enabled | disabled
    interval_amount: int
    interval_unit: str  # minutes | hours | days | weeks | months
    start_at: float
    next_run_at: float | None
    created_at: float
    updated_at: float
    last_run_at: float | None = None
    last_run_status: str | None = None  # the last run's job state (canonical), kept fresh
    last_job_id: int | None = None
    execution_count: int = 0
    package_name: str | None = None  # the package's name when the schedule was read


# rules -------------------------------------------------------------------------------------


def _invalid(loc: tuple[str, ...], msg: str) -> ValidationFailed:
    return ValidationFailed(msg, {"loc": ["body", *loc], "type": "value_error"})


def check_variables(values: Any, loc: str = "variables") -> dict[str, str]:
    """Variables as stored: names usable as environment variables, values strings (numbers
    and booleans are written as JSON writes them)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise _invalid((loc,), f"{loc} must be an object of names to values")
    if len(values) > MAX_VARIABLES:
        raise _invalid((loc,), f"{loc}: at most {MAX_VARIABLES} variables")
    out: dict[str, str] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not VARIABLE_NAME.match(name) or name.startswith(
                "JOBYARD_"):
            raise _invalid((loc, str(name)), f"{loc}: '{name}' is not a usable variable name "
                           "(letters, digits and '_', not starting with a digit or JOBYARD_)")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float) and math.isfinite(value):
            value = repr(value) if isinstance(value, float) else str(value)
        if not isinstance(value, str):
            raise _invalid((loc, name), f"{loc}.{name} must be a string, a number or a boolean")
        if len(value) > MAX_VALUE_CHARS or "\0" in value:
            raise _invalid((loc, name), f"{loc}.{name}: at most {MAX_VALUE_CHARS} characters, "
                           "no NUL")
        out[name] = value
    return out


def env_value(value: str) -> str:
    """A variable's value as its environment variable: an Integrate.io string literal
    (``'it''s'`` or ``'it\\'s'``) loses its quotes; anything else is passed verbatim."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("\\'", "'").replace("''", "'")
    return value


def job_env(defaults: dict[str, str], variables: dict[str, str],
            dynamic_variables: dict[str, str]) -> dict[str, str]:
    """The one rule for a run's environment: package defaults < variables < dynamic
    variables (later wins), each value through :func:`env_value`."""
    merged = {**defaults, **variables, **dynamic_variables}
    return {name: env_value(value) for name, value in merged.items()}


def check_command(command: Any) -> str | list[str]:
    if isinstance(command, str) and command.strip():
        return command
    if (isinstance(command, list) and command
            and all(isinstance(a, str) for a in command) and command[0]):
        return list(command)
    raise _invalid(("command",), "command must be a non-empty shell string or argv list")


def check_resources(values: Any) -> Resources:
    values = values or {}
    if not isinstance(values, dict) or set(values) - {"gpus", "cpus", "memory_mb"}:
        raise _invalid(("resources",), "resources: an object of gpus, cpus, memory_mb")
    try:
        res = Resources(int(values.get("gpus", 0)), float(values.get("cpus", 1.0)),
                        int(values.get("memory_mb", 0)))
    except (TypeError, ValueError) as exc:
        raise _invalid(("resources",), "resources must be numbers") from exc
    if res.gpus < 0 or res.cpus <= 0 or res.memory_mb < 0:
        raise _invalid(("resources",), "resources: gpus and memory_mb >= 0, cpus > 0")
    return res


def check_label(name: Any, loc: str = "name") -> str:
    """A package's or schedule's name: 1-100 printable characters (spaces allowed), not all
    digits (a number names the id)."""
    if not isinstance(name, str) or not (text := name.strip()) or len(text) > 100:
        raise _invalid((loc,), f"{loc} must be 1 to 100 characters")
    if not text.isprintable() or text.isdigit():
        raise _invalid((loc,), f"{loc} must be printable and not only digits")
    return text


def check_description(text: str | None) -> str:
    text = text or ""
    if len(text) > MAX_DESCRIPTION:
        raise _invalid(("description",), f"description: at most {MAX_DESCRIPTION} characters")
    return text


def check_interval(amount: Any, unit: Any) -> tuple[int, str]:
    if unit not in UNITS:
        raise _invalid(("interval_unit",), f"interval_unit must be one of {', '.join(UNITS)}")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= 10000:
        raise _invalid(("interval_amount",), "interval_amount must be an integer from 1 to 10000")
    return amount, unit


def page(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"offset must be >= 0 and limit between 1 and {MAX_PAGE}",
                               {"loc": ["query"], "type": "value_error"})
    return offset, limit


# schedule times ----------------------------------------------------------------------------


def run_time(start_at: float, amount: int, unit: str, k: int) -> float:
    """The k-th run time (k = 0 is ``start_at``)."""
    if unit != "months":
        return start_at + k * amount * UNITS[unit]
    start = datetime.fromtimestamp(start_at, UTC)
    months = start.month - 1 + k * amount
    year, month = start.year + months // 12, months % 12 + 1
    last_day = _month_days(year, month)
    return start.replace(year=year, month=month, day=min(start.day, last_day)).timestamp()


def next_run(start_at: float, amount: int, unit: str, bound: float,
             inclusive: bool = False) -> float:
    """The first run time after ``bound`` (at or after it with ``inclusive``)."""
    def early(t: float) -> bool:
        return t < bound if inclusive else t <= bound

    if not early(start_at):
        return start_at
    if unit == "months":  # from the calendar: a little below, then step up
        first = datetime.fromtimestamp(start_at, UTC)
        then = datetime.fromtimestamp(bound, UTC)
        k = max(0, ((then.year - first.year) * 12 + then.month - first.month) // amount - 1)
    else:
        k = max(0, int((bound - start_at) // (amount * UNITS[unit])) - 1)
    while early(run_time(start_at, amount, unit, k)):
        k += 1
    return run_time(start_at, amount, unit, k)


def _month_days(year: int, month: int) -> int:
    nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return (nxt - datetime(year, month, 1, tzinfo=UTC)).days


# the service -------------------------------------------------------------------------------


class PackageService:
    """Packages and schedules of the caller's org, and runs of packages as jobs.

    ``store`` is the SQL store (``store/packages.py``); jobs go through ``jobs`` (the one
    submit use-case), so a package's run is checked like any job.
    """

    def __init__(self, packages: PackageStore, jobs: JobService,
                 clock: Callable[[], float] = time.time):
        self._packages = packages
        self.jobs = jobs
        self.clock = clock

    # packages --------------------------------------------------------------------------------
    def create_package(self, who: Principal, new: CreatePackage) -> Package:
        res = check_resources(new.resources)
        if not res.fits_in(self.jobs.capacity):
            raise _invalid(("resources",), f"resources exceed this server's capacity "
                           f"({self.jobs.capacity})")
        now = self.clock()
        return self._packages.create_package(Package(
            0, who.org_id, who.user_id, check_label(new.name), check_description(new.description),
            check_command(new.command), check_variables(new.variables), res, now, now))

    def get_package(self, who: Principal, ref: int | str) -> Package:
        """By integer id, or by name within the caller's org; 404 for another org's."""
        if isinstance(ref, int):
            package = self._packages.get_package(ref)
        else:
            package = self._packages.package_by_name(who.org_id, ref)
        if package is None or package.org_id != who.org_id:
            raise NotFound(f"package {ref} not found")
        return package

    def list_packages(self, who: Principal, offset: int = 0, limit: int = 20
                      ) -> tuple[list[Package], int]:
        """A page of the org's packages, newest first, and how many there are."""
        return self._packages.list_packages(who.org_id, *page(offset, limit))

    def delete_package(self, who: Principal, ref: int | str) -> Package:
        """409 while a schedule runs it; jobs it ran keep their facts."""
        package = self.get_package(who, ref)
        self._packages.delete_package(package.id)
        return package

    # schedules -------------------------------------------------------------------------------
    def create_schedule(self, who: Principal, new: CreateSchedule) -> Schedule:
        package = self.get_package(who, new.package)
        amount, unit = check_interval(new.interval_amount, new.interval_unit)
        now = self.clock()
        start = now if new.start_at is None else float(new.start_at)
        schedule = Schedule(
            0, who.org_id, who.user_id, package.id, check_label(new.name),
            check_description(new.description), check_variables(new.variables),
            ENABLED if new.enabled else DISABLED, amount, unit, start,
            next_run(start, amount, unit, now, inclusive=True), now, now)
        return self._packages.create_schedule(schedule)

    def get_schedule(self, who: Principal, schedule_id: int) -> Schedule:
        schedule = self._packages.get_schedule(schedule_id)
        if schedule is None or schedule.org_id != who.org_id:
            raise NotFound(f"schedule {schedule_id} not found")
        return schedule

    def list_schedules(self, who: Principal, offset: int = 0, limit: int = 20
                       ) -> tuple[list[Schedule], int]:
        return self._packages.list_schedules(who.org_id, *page(offset, limit))

    def delete_schedule(self, who: Principal, schedule_id: int) -> Schedule:
        schedule = self.get_schedule(who, schedule_id)
        self._packages.delete_schedule(schedule.id)
        return schedule

    def set_enabled(self, who: Principal, schedule_id: int, enabled: bool) -> Schedule:
        """Enabling plans the next run from now (runs missed while disabled are not made)."""
        schedule = self.get_schedule(who, schedule_id)
        s = schedule
        upcoming = next_run(s.start_at, s.interval_amount, s.interval_unit, self.clock(),
                            inclusive=True) if enabled else s.next_run_at
        self._packages.set_schedule_status(s.id, ENABLED if enabled else DISABLED, upcoming)
        return self.get_schedule(who, schedule_id)

    # runs ------------------------------------------------------------------------------------
    def run(self, who: Principal, package: Package, run: RunPackage) -> tuple[Job, bool]:
        """Submit ``package`` as a job (on one instance of the run's cluster, else on its own
        allocation); returns ``(job, created)`` like :meth:`JobService.submit`."""
        given = check_variables(run.variables)
        dynamic = check_variables(run.dynamic_variables, "dynamic_variables")
        cluster, schedule_id = run.cluster, run.schedule_id
        facts: dict[str, Any] = {
            "package_id": package.id, "package_name": package.name,
            "variables": given, "dynamic_variables": dynamic,
            "cluster_id": cluster.id if cluster is not None else None,
        }
        if schedule_id is not None:
            facts["schedule_id"] = schedule_id
        cmd = SubmitJob(command=package.command, name=package.name,
                        env=job_env(package.variables, given, dynamic),
                        resources=package.resources,
                        cluster_id=cluster.uid if cluster is not None else None,
                        dialect={DIALECT_KEY: facts})
        return self.jobs.submit(who, cmd, run.idempotency)
