"""Vendor error envelopes on a dialect's routes: one route class per dialect, built here.

A dialect gives how it renders a validation error, a :class:`~jobyard.errors.JobyardError`
and an unexpected crash (its clients print only their own fields, so no answer may leave
them out); it may also render Starlette's HTTP errors and touch every answer on its way out.
The native envelope stays the default everywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from jobyard.errors import JobyardError

log = logging.getLogger(__name__)
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def envelope_route(
    dialect: str,
    validation: Callable[[list[dict[str, Any]]], Response],
    error: Callable[[JobyardError], Response],
    crash: Callable[[], Response],
    http: Callable[[HTTPException], Response] | None = None,
    finish: Callable[[Request, Response], Response] | None = None,
) -> type[APIRoute]:
    """An APIRoute class whose errors are rendered by the given functions."""

    class EnvelopeRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    response = await handler(request)
                except RequestValidationError as exc:
                    response = validation(jsonable_encoder(exc.errors()))
                except JobyardError as exc:
                    response = error(exc)
                except HTTPException as exc:
                    if http is None:
                        raise
                    response = http(exc)
                except Exception:
                    log.exception("%s route %s failed", dialect, request.url.path)
                    response = crash()
                return finish(request, response) if finish else response

            return route

    EnvelopeRoute.__name__ = f"{dialect}Route"
    return EnvelopeRoute
