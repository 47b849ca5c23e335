"""Reads progress out of tqdm bars, as a job prints them on its stderr.

Stdlib only (the per-job supervisor imports it; see :mod:`jobyard.executors.launcher`). Both of
tqdm's standard layouts are understood, with or without a description, with unicode or ascii
bars, ``it/s`` or ``s/it`` rates, scaled units (``4.29M/9.54M``, ``433kB/s``) and a postfix::

    Epoch 1:  45%|████▌     | 450/1000 [00:10<00:12, 43.27it/s, loss=0.5]
    450it [00:10, 43.27it/s]

A custom ``bar_format`` or a bar cut short by a narrow terminal is not recognised (None).
"""

from __future__ import annotations

import re
from typing import Any

_NUM = r"\d+(?:\.\d+)?[kMGTPEZY]?"
_RATE = rf"(?P<rate>\?|{_NUM})(?P<rate_unit>[^\s,\]]*)"
_TAIL = rf"(?P<elapsed>[\d:]+)(?:<(?P<remaining>[\d:]+|\?))?, *{_RATE}(?:, (?P<postfix>.*))?\]"
_WITH_TOTAL = re.compile(
    rf"^(?:(?P<desc>.*?): )?\s*(?P<pct>\d{{1,3}})%\|(?P<bar>[^|]*)\|\s*"
    rf"(?P<n>{_NUM})/(?P<total>{_NUM}) \[{_TAIL}$"
)
_NO_TOTAL = re.compile(rf"^(?:(?P<desc>.*?): )?(?P<n>{_NUM})(?P<unit>[^\s\[]*) \[{_TAIL}$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SCALE = {c: 1000.0 ** (i + 1) for i, c in enumerate("kMGTPEZY")}


def parse(text: str) -> dict[str, Any] | None:
    """The progress a tqdm bar shows, or None if ``text`` is not a bar.

    Keys: ``percent`` (float or None without a total), ``items_done``, ``items_total``
    (None without a total), ``throughput`` (``{"value", "unit"}`` or None while unknown),
    ``desc``, ``elapsed_s``, ``remaining_s``.
    """
    if "[" not in text or not text.rstrip().endswith("]"):
        return None  # cheap rejection of ordinary output
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = text.strip()
    m = _WITH_TOTAL.match(text) or _NO_TOTAL.match(text)
    if m is None:
        return None
    groups = m.groupdict()
    done = _number(groups["n"])
    total = _number(groups["total"]) if groups.get("total") else None
    if total is not None and total > 0:
        percent: float | None = min(100.0, max(0.0, 100.0 * done / total))
    elif groups.get("pct") is not None:
        percent = float(groups["pct"])
    else:
        percent = None
    return {
        "percent": None if percent is None else round(percent, 3),
        "items_done": _integral(done),
        "items_total": None if total is None else _integral(total),
        "throughput": _throughput(groups["rate"], groups["rate_unit"]),
        "desc": (groups.get("desc") or "").strip() or None,
        "elapsed_s": _seconds(groups["elapsed"]),
        "remaining_s": _seconds(groups.get("remaining")),
    }


def could_be(raw: bytes) -> bool:
    """A cheap pre-check on raw output: could ``raw`` be a tqdm bar at all?"""
    return raw.rstrip().endswith(b"]")


def _number(token: str) -> float:
    scale = _SCALE.get(token[-1], 1.0)
    return float(token[:-1] if scale != 1.0 else token) * scale


def _integral(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def _throughput(rate: str, unit: str) -> dict[str, Any] | None:
    if rate == "?" or not unit:
        return None
    value = _number(rate)
    if unit.startswith("s/"):  # "3.47s/it": seconds per item
        if value <= 0:
            return None
        return {"value": round(1.0 / value, 6), "unit": f"{unit[2:]}/s"}
    return {"value": value, "unit": unit}


def _seconds(text: str | None) -> float | None:
    if not text or text == "?":
        return None
    total = 0.0
    for part in text.split(":"):
        if not part.isdigit():
            return None
        total = total * 60 + int(part)
    return total
