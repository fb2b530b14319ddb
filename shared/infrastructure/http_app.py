"""The common shape of a WIMS HTTP service (FastAPI): probes created in the lifespan, and
the HTTP surface every service shares.

Every answer, errors included, carries the security headers of ``SecurityHeaders``. The
API documentation (/docs, /redoc, /openapi.json) is served only when
``WIMS_API_DOCS_ENABLED`` (default: in development and test), and /metrics only when
``WIMS_METRICS_ENABLED``.
"""

import asyncio
import base64
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from shared.infrastructure.db import database_ready, make_async_engine, make_sessionmaker
from shared.infrastructure.kafka import KafkaProbe
from shared.infrastructure.observability import fastapi_health_router, sample_event_loop_lag
from shared.infrastructure.settings import Settings

# Fit for a same-origin web console: its own scripts, styles and images only, no inline
# script, no plugin, never framed (clickjacking), forms post back to the API only.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The documentation pages load Swagger UI / ReDoc from FastAPI's CDN defaults.
_CDN = "https://cdn.jsdelivr.net"
_FAVICON = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


class SecurityHeaders:
    """Outermost ASGI layer of every WIMS HTTP service (``WimsFastAPI``).

    Adds the headers a browser needs to treat the answers safely (a CSP a route set itself,
    such as the docs pages', is kept), and makes every redirect relative: an absolute
    ``Location`` is built from the request's Host header, which the client chooses, so a
    redirect must never repeat it (our services only ever redirect to themselves)."""

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", STRICT_CSP.encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
    )

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, _relative(v) if k.lower() == b"location" else v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"server"
                ]
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _relative(location: bytes) -> bytes:
    parts = urlsplit(location.decode("latin-1"))
    if not (parts.scheme or parts.netloc):
        return location
    # One leading slash: "//host/x" would be read by a browser as another site.
    path = "/" + parts.path.lstrip("/")
    return urlunsplit(("", "", path, parts.query, parts.fragment)).encode("latin-1")


class WimsFastAPI(FastAPI):
    def build_middleware_stack(self) -> Any:
        # Outside everything, ServerErrorMiddleware's 500 included, whatever middleware a
        # service adds later.
        return SecurityHeaders(super().build_middleware_stack())


def _script_hashes(html: bytes) -> str:
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )


def _with_csp(page: HTMLResponse, csp: str) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = csp
    page.headers["Cache-Control"] = "no-store"
    return page


def _add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with CSPs of their own: the strict one would block
    their CDN scripts. The one inline script of each Swagger page is allowed by its hash,
    computed from the page served, so no inline script other than ours can run."""
    redirect_url = "/docs/oauth2-redirect"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=root(request) + str(app.openapi_url),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root(request) + redirect_url,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _with_csp(
            page,
            f"default-src 'self'; script-src {_CDN} {_script_hashes(page.body)}; "
            f"style-src {_CDN}; img-src 'self' data: {_FAVICON}; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        page = get_swagger_ui_oauth2_redirect_html()
        return _with_csp(
            page,
            f"default-src 'none'; script-src {_script_hashes(page.body)}; "
            "base-uri 'none'; frame-ancestors 'none'",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=root(request) + str(app.openapi_url), title=f"{app.title} - ReDoc"
        )
        return _with_csp(
            page,
            # ReDoc's page has an inline <style> and ReDoc renders with inline styles and
            # a web worker from a blob; styles cannot run code.
            f"default-src 'self'; script-src {_CDN}; worker-src blob:; "
            "style-src 'unsafe-inline' https://fonts.googleapis.com; "
            f"font-src https://fonts.gstatic.com; img-src 'self' data: https://cdn.redoc.ly "
            f"{_FAVICON}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'",
        )


def make_http_app(
    title: str,
    settings: Settings,
    *,
    startup: Callable[[FastAPI], Any] | None = None,
    shutdown: Callable[[FastAPI], Any] | None = None,
    **fastapi_kw: Any,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = make_async_engine(settings, pool_size=10)
        app.state.sessionmaker = make_sessionmaker(app.state.engine)
        app.state.kafka_probe = KafkaProbe(settings.kafka_bootstrap)
        lag_sampler = asyncio.create_task(sample_event_loop_lag(), name="event-loop-lag")
        if startup is not None:
            await startup(app)
        try:
            yield
        finally:
            lag_sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_sampler
            if shutdown is not None:
                await shutdown(app)
            await app.state.kafka_probe.close()
            await app.state.engine.dispose()

    app = WimsFastAPI(
        title=title,
        lifespan=lifespan,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        docs_url=None,
        redoc_url=None,
        **fastapi_kw,
    )
    if settings.docs_enabled:
        _add_docs(app)

    def probes() -> dict[str, Any]:
        return {
            "kafka": app.state.kafka_probe.ready,
            "database": lambda: database_ready(app.state.engine),
        }

    health = fastapi_health_router(probes)
    if not settings.metrics_enabled:
        health.routes = [r for r in health.routes if getattr(r, "path", None) != "/metrics"]
    app.include_router(health)
    return app
