"""The API documentation pages, whole without a network: Swagger UI at ``/docs`` and ReDoc at
``/redoc``, their JavaScript and CSS served from the copies the ``fastapi-offline`` package
ships (under :data:`STATIC`), never a CDN. Each page carries a Content-Security-Policy that
lets it load only from this server (ReDoc's footer would fetch its vendor's logo otherwise).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from jobyard.api.validation import StrictRoute

STATIC = "/static-offline-docs"
ASSETS = Path(fastapi_offline.__file__).parent / "static"
# Inline scripts and styles: both pages start from a small inline script; ReDoc's search runs
# in a worker made from a blob.
POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
          "'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
          "worker-src 'self' blob:; connect-src 'self'")


def install(app: FastAPI) -> None:
    """Serve the assets and both pages (``app`` made with ``docs_url=None, redoc_url=None``)."""
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi = app.openapi_url or "/openapi.json"
    router = APIRouter(route_class=StrictRoute, include_in_schema=False)

    @router.get("/docs")
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _confined(get_swagger_ui_html(
            openapi_url=root + openapi, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC}/favicon.png"))

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _confined(get_redoc_html(
            openapi_url=root + openapi, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC}/favicon.png", with_google_fonts=False))

    app.include_router(router)


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = POLICY
    return page
