"""The hostile-tenant modules' shared parts: each module starts its own ``server``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from jobyard.testing import ServerProcess
from tests.api.test_auth import make_user


@pytest.fixture(scope="module")
def orgs(server: ServerProcess) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients of org A (the attacker, mallory) and org B (the victim, bob)."""
    with server.client() as admin:
        a_key = make_user(admin, "mallory", "org-a")["key"]
        b_key = make_user(admin, "bob", "org-b")["key"]
    with server.client(a_key) as a, server.client(b_key) as b:
        yield a, b
