"""Packages and schedules in the SDK: ``client.packages`` and ``client.schedules`` (blocking
and asyncio). A package is a named command with default variables that Integrate.io clients
run as jobs (``POST /{account}/api/jobs``); a schedule runs one every N minutes, hours, days,
weeks or months.

>>> pkg = client.packages.create("etl", "python etl.py --day $DAY", variables={"DAY": "'mon'"})
>>> client.schedules.create("nightly", pkg.id, every=1, unit="days",
...                         start_at="2030-01-01T02:00:00Z")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobyard.sdk.calls import Call, segment
from jobyard.sdk.models import _Model

if TYPE_CHECKING:
    from jobyard.sdk.client import AsyncClient, Client

__all__ = ["AsyncPackages", "AsyncSchedules", "Package", "PackageCalls", "Packages",
           "Schedule", "ScheduleCalls", "Schedules"]

Value = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Package(_Model):
    id: int
    name: str
    description: str = ""
    command: str | list[str] | None = None
    variables: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    owner: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Schedule(_Model):
    id: int
    name: str
    status: str
    interval_amount: int
    interval_unit: str
    package: dict[str, Any] = field(default_factory=dict)  # {"id", "name"}
    description: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    start_at: datetime | None = None
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_run_state: str | None = None
    last_job_number: int | None = None
    execution_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class PackageCalls:
    """Request building and answer parsing for /v1/packages."""

    @staticmethod
    def create(name: str, command: str | list[str], variables: Mapping[str, Value] | None,
               gpus: int, cpus: float, memory_mb: int, description: str | None
               ) -> Call[Package]:
        body: dict[str, Any] = {"name": name, "command": command, "variables": variables or {},
                                "resources": {"gpus": gpus, "cpus": cpus,
                                              "memory_mb": memory_mb}}
        if description is not None:
            body["description"] = description
        return Call("POST", "/v1/packages", lambda r: Package.from_dict(r.json()), json=body)

    @staticmethod
    def list(offset: int = 0, limit: int = 100) -> Call[list[Package]]:
        return Call("GET", "/v1/packages",
                    lambda r: [Package.from_dict(p) for p in r.json()["items"]],
                    params={"offset": offset, "limit": limit})

    @staticmethod
    def get(ref: int | str) -> Call[Package]:
        return Call("GET", f"/v1/packages/{segment(ref)}", lambda r: Package.from_dict(r.json()))

    @staticmethod
    def delete(ref: int | str) -> Call[dict[str, Any]]:
        return Call("DELETE", f"/v1/packages/{segment(ref)}", lambda r: r.json())


class ScheduleCalls:
    """Request building and answer parsing for /v1/schedules."""

    @staticmethod
    def create(name: str, package: int | str, every: int, unit: str,
               start_at: datetime | str | None, variables: Mapping[str, Value] | None,
               description: str | None, enabled: bool) -> Call[Schedule]:
        body: dict[str, Any] = {"name": name, "package": package, "interval_amount": every,
                                "interval_unit": unit, "variables": variables or {},
                                "enabled": enabled}
        if start_at is not None:
            body["start_at"] = _time(start_at)
        if description is not None:
            body["description"] = description
        return Call("POST", "/v1/schedules", lambda r: Schedule.from_dict(r.json()), json=body)

    @staticmethod
    def list(offset: int = 0, limit: int = 100) -> Call[list[Schedule]]:
        return Call("GET", "/v1/schedules",
                    lambda r: [Schedule.from_dict(s) for s in r.json()["items"]],
                    params={"offset": offset, "limit": limit})

    @staticmethod
    def get(schedule_id: int) -> Call[Schedule]:
        return Call("GET", f"/v1/schedules/{int(schedule_id)}",
                    lambda r: Schedule.from_dict(r.json()))

    @staticmethod
    def delete(schedule_id: int) -> Call[dict[str, Any]]:
        return Call("DELETE", f"/v1/schedules/{int(schedule_id)}", lambda r: r.json())

    @staticmethod
    def enable(schedule_id: int, on: bool) -> Call[Schedule]:
        word = "enable" if on else "disable"
        return Call("POST", f"/v1/schedules/{int(schedule_id)}/{word}",
                    lambda r: Schedule.from_dict(r.json()))


class Packages:
    """``client.packages``: create, list, get (by id or name), delete."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, command: str | list[str],
               variables: Mapping[str, Value] | None = None, gpus: int = 0, cpus: float = 1.0,
               memory_mb: int = 0, description: str | None = None) -> Package:
        return self._c._send(PackageCalls.create(name, command, variables, gpus, cpus,
                                                 memory_mb, description))

    def list(self, offset: int = 0, limit: int = 100) -> list[Package]:
        return self._c._send(PackageCalls.list(offset, limit))

    def get(self, ref: int | str) -> Package:
        return self._c._send(PackageCalls.get(ref))

    def delete(self, ref: int | str) -> dict[str, Any]:
        return self._c._send(PackageCalls.delete(ref))


class AsyncPackages:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, command: str | list[str],
                     variables: Mapping[str, Value] | None = None, gpus: int = 0,
                     cpus: float = 1.0, memory_mb: int = 0,
                     description: str | None = None) -> Package:
        return await self._c._send(PackageCalls.create(name, command, variables, gpus, cpus,
                                                       memory_mb, description))

    async def list(self, offset: int = 0, limit: int = 100) -> list[Package]:
        return await self._c._send(PackageCalls.list(offset, limit))

    async def get(self, ref: int | str) -> Package:
        return await self._c._send(PackageCalls.get(ref))

    async def delete(self, ref: int | str) -> dict[str, Any]:
        return await self._c._send(PackageCalls.delete(ref))


class Schedules:
    """``client.schedules``: create, list, get, delete, enable, disable."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, package: int | str, every: int, unit: str,
               start_at: datetime | str | None = None,
               variables: Mapping[str, Value] | None = None, description: str | None = None,
               enabled: bool = True) -> Schedule:
        return self._c._send(ScheduleCalls.create(name, package, every, unit, start_at,
                                                  variables, description, enabled))

    def list(self, offset: int = 0, limit: int = 100) -> list[Schedule]:
        return self._c._send(ScheduleCalls.list(offset, limit))

    def get(self, schedule_id: int) -> Schedule:
        return self._c._send(ScheduleCalls.get(schedule_id))

    def delete(self, schedule_id: int) -> dict[str, Any]:
        return self._c._send(ScheduleCalls.delete(schedule_id))

    def enable(self, schedule_id: int) -> Schedule:
        return self._c._send(ScheduleCalls.enable(schedule_id, True))

    def disable(self, schedule_id: int) -> Schedule:
        return self._c._send(ScheduleCalls.enable(schedule_id, False))


class AsyncSchedules:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, package: int | str, every: int, unit: str,
                     start_at: datetime | str | None = None,
                     variables: Mapping[str, Value] | None = None,
                     description: str | None = None, enabled: bool = True) -> Schedule:
        return await self._c._send(ScheduleCalls.create(name, package, every, unit, start_at,
                                                        variables, description, enabled))

    async def list(self, offset: int = 0, limit: int = 100) -> list[Schedule]:
        return await self._c._send(ScheduleCalls.list(offset, limit))

    async def get(self, schedule_id: int) -> Schedule:
        return await self._c._send(ScheduleCalls.get(schedule_id))

    async def delete(self, schedule_id: int) -> dict[str, Any]:
        return await self._c._send(ScheduleCalls.delete(schedule_id))

    async def enable(self, schedule_id: int) -> Schedule:
        return await self._c._send(ScheduleCalls.enable(schedule_id, True))

    async def disable(self, schedule_id: int) -> Schedule:
        return await self._c._send(ScheduleCalls.enable(schedule_id, False))
