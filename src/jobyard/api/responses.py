"""Fast JSON responses (orjson) used by every dialect."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def dumps(content: Any) -> str:
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS).decode()
