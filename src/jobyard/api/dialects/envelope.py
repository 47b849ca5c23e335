"""Vendor error envelopes on a dialect's routes: one route class per dialect, built here.

A dialect gives how it renders a validation error, a :class:`~jobyard.errors.JobyardError`
and an unexpected crash (its clients print only their own fields, so no answer may leave
them out); it may also render Starlette's HTTP errors and touch every answer on its way out.
The route class is a :class:`~jobyard.api.validation.StrictRoute`: parameters and JSON bodies
are checked the same way on every dialect, and what a validation error echoes is made safe
before the dialect renders it. An error that says when to try again gets ``Retry-After`` in
every dialect; a full disk is answered as :class:`~jobyard.errors.StorageFull`, not as a
crash. The native envelope stays the default everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from starlette.exceptions import HTTPException

from jobyard.api.errors import retry_headers, unexpected
from jobyard.api.relay import relay
from jobyard.api.validation import StrictRoute
from jobyard.core.files import Elsewhere
from jobyard.errors import JobyardError

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def envelope_route(
    dialect: str,
    validation: Callable[[list[dict[str, Any]]], Response],
    error: Callable[[JobyardError], Response],
    crash: Callable[[], Response],
    http: Callable[[HTTPException], Response] | None = None,
    finish: Callable[[Request, Response], Response] | None = None,
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> type[StrictRoute]:
    """A route class whose errors are rendered by the given functions; ``responses``: what
    every route of it documents (its error envelope) in the OpenAPI."""

    class EnvelopeRoute(StrictRoute):
        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            if responses:
                kwargs["responses"] = {**responses, **(kwargs.get("responses") or {})}
            super().__init__(path, endpoint, **kwargs)

        def invalid(self, errors: list[dict[str, Any]]) -> Response:
            return validation(errors)

        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    try:
                        response = await handler(request)
                    except Elsewhere as where:
                        response = await relay(request, where)
                except JobyardError as exc:
                    response = _with_retry(error(exc), exc)
                except HTTPException as exc:
                    if http is None:
                        raise
                    response = http(exc)
                except Exception as exc:
                    fault = unexpected(exc, f"{dialect} route {request.url.path}")
                    response = crash() if fault is None else _with_retry(error(fault), fault)
                return finish(request, response) if finish else response

            return route

    EnvelopeRoute.__name__ = f"{dialect}Route"
    return EnvelopeRoute


def _with_retry(response: Response, exc: JobyardError) -> Response:
    for name, value in retry_headers(exc).items():
        response.headers.setdefault(name, value)
    return response
