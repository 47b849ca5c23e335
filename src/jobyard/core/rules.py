"""Rules clusters and volumes share: their names, and deletion protection."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from jobyard.errors import Conflict, DeletionProtected, NotFound, ValidationFailed

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ProtectionStore(Protocol):
    def set_protection(self, uid: str, on: bool, states: Sequence[str]) -> str | None:
        """Set it on the locked row if its state is one of ``states``; returns its state
        (None: it does not exist)."""


def invalid(loc: tuple[str, ...], msg: str) -> ValidationFailed:
    return ValidationFailed(msg, {"loc": list(loc), "type": "value_error"})


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise invalid(("body", "name"), "name: 1-100 of letters, digits, '_', '.', '-'; starts "
                      "with a letter or digit")
    return name


def refuse_if_protected(what: str, uid: str, protected: bool) -> None:
    """The one deletion-protection rule: a protected cluster or volume is never released or
    destroyed (409 DELETION_PROTECTED); checked on its locked row, when the operation is made."""
    if protected:
        raise DeletionProtected(
            f"{what} {uid} has deletion protection enabled; turn it off before destroying it",
            {"deletion_protection": True})


def set_protection(store: ProtectionStore, uid: str, on: bool, noun: str,
                   allowed: Sequence[str]) -> None:
    """Set deletion protection of a cluster or volume (``store``: their repository) in one of
    the ``allowed`` states; 404 if it is gone, 409 if it is on its way out."""
    state = store.set_protection(uid, on, allowed)
    if state is None:
        raise NotFound(f"{noun} {uid} not found")
    if state not in allowed:
        raise Conflict(f"{noun} {uid} is {state}; its deletion protection cannot change now")
