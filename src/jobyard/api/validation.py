"""What every dialect checks of what a client sends, before a route reads it.

One rule for text, everywhere: no NUL character (PostgreSQL cannot store one) and no lone
surrogate (it is not Unicode: no encoder takes it). One rule for numbers: finite (no ``NaN``,
``Infinity``, nor ``1e400``, which overflows to it) and integers within 64 bits. They hold for

- every JSON body (:func:`loads`: keys and values at any depth), the WebSocket frames of
  TensorPool and the form bodies of Integrate.io included;
- every path and query parameter (:func:`check_params`);

and :class:`StrictRoute`, the route class every router uses (the dialects' envelope routes are
built on it), applies them before the route runs, so no route can forget them. Ids in paths
are ASCII digits (:func:`ascii_int`, :func:`job_ref`): ``"²"`` passes ``str.isdigit`` but is
no number. A validation error never fails to render what it echoes (:func:`safe_errors`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from jobyard.api.responses import JSON
from jobyard.errors import JobNotFound, NotFound

INT64 = 2**63
# Row ids are the SQL schema's 32-bit integers: a larger number names no row.
MAX_ROW_ID = 2**31 - 1
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,18}")
_JOB_UID = re.compile(r"job_[A-Za-z0-9_-]{1,36}")
Loc = tuple[str | int, ...]
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class InvalidInput(json.JSONDecodeError):
    """What :func:`loads` refuses, with where (``loc``) and why. A ``JSONDecodeError``, so code
    that only knows the standard library's errors still answers 4xx."""

    def __init__(self, loc: Loc, msg: str, kind: str, doc: str = "", pos: int = 0):
        super().__init__(msg, doc, pos)
        self.loc = loc
        self.reason = msg
        self.kind = kind

    def error(self) -> dict[str, Any]:
        """As one error of a ``RequestValidationError`` (FastAPI's ``{loc, msg, type}``)."""
        return {"loc": list(self.loc), "msg": self.reason, "type": self.kind}


# text ----------------------------------------------------------------------------------------
def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be taken (None: it can)."""
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "text must not contain NUL characters"
    return "text must be valid Unicode: it holds a lone surrogate"


def check_value(value: Any, loc: Loc = ("body",)) -> None:
    """Every text (keys too) and number inside ``value``; raises :class:`InvalidInput`."""
    stack: list[tuple[Any, Loc]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise InvalidInput(where, problem, "string_invalid")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(where, "numbers must be finite", "finite_number")
        elif isinstance(item, int):
            if not -INT64 <= item < INT64:
                raise InvalidInput(where, "integers must fit in 64 bits", "int_too_large")
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and text_problem(key):
                    raise InvalidInput((*where, _printable(key)), f"key: {text_problem(key)}",
                                       "string_invalid")
                stack.append((inner, (*where, _printable(key))))
        elif isinstance(item, list | tuple):
            stack.extend((inner, (*where, n)) for n, inner in enumerate(item))


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput(("body",), f"number {text[:40]} is out of range: numbers must be "
                           "finite", "finite_number")
    return value


def _integer(text: str) -> int:
    if len(text) > 20:  # longer than any 64-bit integer: refused before converting
        raise InvalidInput(("body",), "integers must fit in 64 bits", "int_too_large")
    return int(text)


def _constant(name: str) -> Any:
    raise InvalidInput(("body",), f"{name} is not a number: numbers must be finite",
                       "finite_number")


def loads(raw: bytes | str, loc: Loc = ("body",)) -> Any:
    """JSON as this server accepts it (see the module); raises :class:`InvalidInput`."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_float=_number, parse_int=_integer,
                           parse_constant=_constant)
    except InvalidInput as exc:
        raise InvalidInput(loc, exc.reason, exc.kind) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput((*loc, exc.pos), f"JSON decode error: {exc.msg}",
                           "json_invalid") from None
    except UnicodeDecodeError:
        raise InvalidInput(loc, "the body is not UTF-8", "json_invalid") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(loc, "JSON decode error: the document is too large or too deep",
                           "json_invalid") from exc
    check_value(value, loc)
    return value


# parameters ----------------------------------------------------------------------------------
def check_params(request: Request) -> None:
    """Path and query parameters (names and values) follow the text rule; raises
    :class:`InvalidInput`."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (problem := text_problem(value)):
            raise InvalidInput(("path", name), problem, "string_invalid")
    for name, value in request.query_params.multi_items():
        problem = text_problem(name) or text_problem(value)
        if problem:
            raise InvalidInput(("query", _printable(name)), problem, "string_invalid")


def ascii_int(text: str | None, maximum: int = 10**18 - 1) -> int | None:
    """``text`` as an integer when it is 1 to 18 ASCII digits and at most ``maximum``."""
    if text is None or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None


def job_ref(ref: str) -> int | str:
    """A job's id in a path: its number (ASCII digits) or its uid (``job_...``). Anything else,
    or a number no row can have, is an unknown job (404) without a lookup."""
    if _DIGITS.fullmatch(ref):
        number = int(ref)
        if number <= MAX_ROW_ID:
            return number
    elif _JOB_UID.fullmatch(ref):
        return ref
    raise JobNotFound(f"job {_printable(ref)[:100]} not found")


def row_ref(ref: str, noun: str) -> int | str:
    """An id (ASCII digits) or else a name, as packages are addressed; a number no row can
    have is 404 ``noun`` not found."""
    if not (ref.isascii() and ref.isdigit()):
        return ref
    if len(ref) > 18 or int(ref) > MAX_ROW_ID:
        raise NotFound(f"{noun} {ref[:100]} not found")
    return int(ref)


# rendering -----------------------------------------------------------------------------------
def _printable(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if _BAD_TEXT.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text


def safe(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON can carry it, whatever it is: non-finite numbers and bad text become
    their printed form, other objects their ``str``."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _printable(value)
    if isinstance(value, bytes):
        return _printable(value.decode("utf-8", "replace"))
    if depth > 32:
        return "..."
    if isinstance(value, dict):
        return {_printable(k): safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [safe(v, depth + 1) for v in value]
    return _printable(str(value))


def safe_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """Validation errors (pydantic's or ours) ready to render: ``loc``, ``msg``, ``type`` always,
    ``input`` and ``ctx`` where given, every value JSON-safe."""
    out = []
    for err in errors:
        item = dict(err) if isinstance(err, dict) else {"msg": str(err)}
        clean: dict[str, Any] = {
            "loc": [p if isinstance(p, int) and not isinstance(p, bool) else _printable(p)
                    for p in item.get("loc") or ()],
            "msg": _printable(item.get("msg", "invalid")),
            "type": _printable(item.get("type", "value_error")),
        }
        for key in ("input", "ctx"):
            if key in item:
                clean[key] = safe(item[key])
        out.append(clean)
    return out


def native_invalid(errors: list[dict[str, Any]]) -> Response:
    """The native API's 422: FastAPI's ``HTTPValidationError``."""
    return JSON({"detail": errors}, status_code=422)


# the route class -----------------------------------------------------------------------------
class StrictRequest(Request):
    """A request whose JSON body is read with :func:`loads` (once)."""

    _parsed: Any = None
    _has_parsed = False

    async def json(self) -> Any:
        if not self._has_parsed:
            self._parsed = loads(await self.body())
            self._has_parsed = True
        return self._parsed


def _json_body(request: Request) -> bool:
    """Whether FastAPI will read this request's body as JSON."""
    kind = request.headers.get("content-type")
    if kind is None:
        return True
    main = kind.split(";", 1)[0].strip().lower()
    return main == "application/json" or (main.startswith("application/")
                                          and main.endswith("+json"))


class StrictRoute(APIRoute):
    """The route class of every router: parameters and JSON bodies checked (see the module)
    before the route runs; a validation error answered by :meth:`invalid` with what it
    echoes made safe. The native API's answer is FastAPI's 422; dialects override
    :meth:`invalid` (``dialects/envelope.py``)."""

    def invalid(self, errors: list[dict[str, Any]]) -> Response:
        return native_invalid(errors)

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        reads_body = self.body_field is not None

        async def route(request: Request) -> Response:
            strict = StrictRequest(request.scope, request.receive)
            try:
                check_params(strict)
                if reads_body and _json_body(strict) and await strict.body():
                    await strict.json()
                return await handler(strict)
            except InvalidInput as exc:
                return self.invalid(safe_errors([exc.error()]))
            except RequestValidationError as exc:
                return self.invalid(safe_errors(exc.errors()))

        return route
