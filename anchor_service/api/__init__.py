"""The HTTP API of the anchor service: an app factory, no module globals.

    app = create_app(ServiceSettings())          # reads MICROCRED_* now, not at import
    app = create_app(components=my_components)   # tests: wire your own
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from anchor_service import __version__
from anchor_service.api import (
    admin,
    batches,
    credentials,
    did,
    docs,
    ops,
    portfolios,
    recognitions,
    registry,
    status_lists,
    vcapi,
    verify,
    web,
)
from anchor_service.api.deps import DirectRoutes, direct_routes
from anchor_service.api.errors import install_error_handlers
from anchor_service.api.limits import BodySizeLimit, Buckets, RateLimit
from anchor_service.api.openapi import install_openapi
from anchor_service.logs import Redactor
from anchor_service.server import BodyTimeout
from anchor_service.service import Components, build_components
from anchor_service.settings import ServiceSettings

__all__ = ["create_app"]


def create_app(settings: ServiceSettings | None = None, *,
               components: Components | None = None, run_pipeline: bool = True,
               rate_buckets: Buckets | None = None) -> FastAPI:
    """The FastAPI app. Components are built (database opened, chain connected, keys
    decrypted) when the app starts, and the pipeline runs in the background unless
    ``run_pipeline`` is False; the status list watcher (reads only) runs either way. The rate
    limits count in ``rate_buckets`` (shared by the workers of one service), else in a table
    of the app's own."""
    if components is not None:
        settings = components.settings
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = components or build_components(settings)
        app.state.components = built
        if components is None:  # a service's own: large submissions are signed on two cores
            built.signing_helper.start()
        if run_pipeline:
            built.pipeline.start(settings.poll_interval)
        # Reads only: published status lists are rendered again when the chain changes them.
        built.start_status_watcher()
        try:
            yield
        finally:
            if components is None:
                built.close()
            else:
                built.stop_status_watcher()
                built.pipeline.stop()

    app = FastAPI(
        title="microcred-anchor",
        version=__version__,
        description="Anchors micro-credentials on an Ethereum-compatible chain and hands "
        "out RFC 9162 inclusion receipts.",
        lifespan=lifespan,
        # /docs is served by the docs router (local assets, strict CSP); FastAPI's own pages
        # load Swagger UI and ReDoc from a CDN and run inline scripts.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # The service exports no OpenTelemetry data (its metrics are /metrics): without
        # this, FastAPI looks for a configured provider, in the environment, at every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.redact = Redactor(settings.secrets())  # applied to every error message
    # The public verification routes (a portfolio is one of them) share the smaller limit.
    public = (verify.PATH, *vcapi.VERIFY_PATHS, portfolios.PATH)
    routers = [module.router for module in (
        credentials, batches, registry, admin, recognitions, verify, portfolios, vcapi, did,
        status_lists, ops, web, docs)]
    # Added first, so it runs last of the service's own: limits and timeouts still apply.
    app.add_middleware(DirectRoutes, routes=direct_routes(routers))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       path_limits=dict.fromkeys(public, settings.verify_max_body_bytes))
    # Added last, so it runs first: a limited client is turned away before anything else.
    app.add_middleware(RateLimit, rate=settings.rate_limit, burst=settings.rate_limit_burst,
                       public_rate=settings.public_rate_limit,
                       public_burst=settings.public_rate_limit_burst, buckets=rate_buckets)
    # Outermost: a body that does not arrive in time ends the request whoever is reading it.
    app.add_middleware(BodyTimeout, seconds=settings.body_timeout)
    install_error_handlers(app)
    install_openapi(app)
    for router in routers:
        app.include_router(router)
    return app
