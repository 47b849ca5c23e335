"""The API documentation in a real browser, with no network beyond the server: Swagger UI at
``/docs`` and ReDoc at ``/redoc`` load their assets from the server itself."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from jobyard.testing import ServerProcess
from tests.conftest import screenshot


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("srv")).start()
    yield srv
    srv.stop()


@pytest.fixture
def page(browser, server: ServerProcess):
    """A page whose requests reach only the server; any other is refused and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.elsewhere = []
    ours = urlsplit(server.url).netloc

    def only_ours(route) -> None:
        if urlsplit(route.request.url).netloc == ours:
            route.continue_()
        else:
            page.elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_ours)
    yield page
    context.close()


def test_swagger_ui_renders_every_operation_offline(page, server):
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/jobs" in paths and "/v1/jobs/{ref}/cancel" in paths
    assert len(paths) > 50  # the four APIs' operations
    shot = screenshot(page, "docs-swagger")
    assert page.elsewhere == [] and shot.stat().st_size > 10_000


def test_redoc_renders_offline(page, server):
    page.goto(f"{server.url}/redoc")
    page.wait_for_selector("[data-section-id]", timeout=20_000)
    assert page.locator("h1").first.inner_text().startswith("Jobyard")
    screenshot(page, "docs-redoc")
    assert page.elsewhere == []
