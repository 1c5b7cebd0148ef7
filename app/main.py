"""The ASGI application: settings, database, routers, error handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy import event, text
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import body_limit, openapi
from app.campaigns import routes as campaigns_routes
from app.config import Settings, get_settings
from app.db import create_sessionmaker, engine_for
from app.delivery import routes as delivery_routes
from app.delivery.embedded import embedded_delivery
from app.deputies import routes as deputies_routes
from app.errors import AppError, Unauthorized, Unavailable
from app.failsafe import RETRY_AFTER, FailsafeMiddleware, OutageLog
from app.i18n import routes as i18n_routes
from app.i18n.middleware import LanguageMiddleware
from app.letters import api as letters_api
from app.letters import pages as letters_pages
from app.letters.cache import IntakeCache
from app.letters.tasks import periodic_purge
from app.methods import AllowMiddleware
from app.ratelimit import RateLimiter
from app.security import SecurityHeadersMiddleware
from app.staff import routes as staff_routes
from app.staff.gate import StaffGateMiddleware
from app.staff.throttle import LoginThrottle
from app.staff.web import login_redirect_target
from app.stats import routes as stats_routes
from app.stats import service as stats_service
from app.templating import STATIC_DIR, templates

logger = logging.getLogger("appeals")


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/healthz", "/metrics")


def _error_response(
    request: Request,
    status: int,
    message: str,
    code: str,
    details: list[dict[str, str]] | None = None,
) -> Response:
    if _wants_json(request):
        body: dict[str, object] = {"error": code, "message": message}
        if details:
            body["details"] = details
        return JSONResponse(body, status_code=status)
    return templates.TemplateResponse(
        request,
        "errors/error.html",
        {"status": status, "message": message, "details": details or []},
        status_code=status,
    )


def _app_error_response(request: Request, exc: AppError) -> Response:
    details = [{"field": exc.field, "message": exc.localized()}] if exc.field else None
    response = _error_response(request, exc.status_code, exc.localized(), exc.code, details)
    retry_after = getattr(exc, "retry_after", None)  # TooManyRequests, Unavailable
    if retry_after:
        response.headers["retry-after"] = str(retry_after)
    if exc.status_code == 503:  # no cache or proxy may keep the answer of an outage
        response.headers["cache-control"] = "no-store"
    return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if isinstance(exc, Unauthorized) and not _wants_json(request):
            # Pages: an anonymous visitor is sent to the login page, and back afterwards.
            return RedirectResponse(login_redirect_target(request), status_code=303)
        return _app_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {
                # Drop the location ("body", "query"...), not a field that happens to be so named.
                "field": ".".join(
                    str(p)
                    for i, p in enumerate(err["loc"])
                    if i > 0 or p not in ("body", "query", "path", "header", "cookie")
                ),
                "message": str(err["msg"]),
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return _error_response(request, 422, f"Invalid input: {summary}", "invalid_input", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {
            404: "Not found.",
            405: "Method not allowed.",
            413: body_limit.too_large_message(),
        }
        message = messages.get(exc.status_code, str(exc.detail))
        response = _error_response(request, exc.status_code, message, "http_error")
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response


def _internal_error(request: Request) -> Response:
    return _error_response(request, 500, "Internal error.", "internal_error")


def _unavailable(request: Request) -> Response:
    error = Unavailable(
        "The service is briefly unavailable. Please try again in a few seconds.",
        retry_after=RETRY_AFTER,
    )
    return _app_error_response(request, error)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine_for(settings)
    sessionmaker = create_sessionmaker(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with (
                embedded_delivery(
                    settings, engine=engine, sessionmaker=sessionmaker, wake=outbox_wake
                ),
                periodic_purge(sessionmaker, settings),
            ):
                yield
        finally:
            await rate_limiter.aclose()
            await engine.dispose()

    # FastAPIOffline serves the API explorer's scripts itself, never from a CDN.
    app = FastAPIOffline(
        title="appeals",
        summary="Citizens send lawyer-vetted letters to their regional deputies.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    # Set after each submission: the embedded worker's confirmation sender wakes at once.
    outbox_wake = app.state.outbox_wake = asyncio.Event()
    app.state.intake_cache = IntakeCache(settings.campaign_cache_seconds)
    # The counter on the citizen's home and campaign pages: statistics sit above letters, so the
    # pages get it from here rather than import it (app.letters.pages.LettersSent).
    app.state.letters_sent = stats_service.letters_sent
    rate_limiter = RateLimiter(settings.redis_url, settings.effective_secret_key)
    app.state.rate_limiter = rate_limiter
    # An outage is logged when a request first meets it, and when a connection opens again.
    outage = app.state.outage = OutageLog()
    event.listen(engine.sync_engine, "connect", outage.connected)
    # The last added is the outermost: failsafe answers inside the language and security layers.
    app.add_middleware(
        FailsafeMiddleware,
        render=_internal_error,
        render_unavailable=_unavailable,
        outage=outage,
        log_traceback=settings.environment == "test",
    )
    app.add_middleware(StaffGateMiddleware)
    app.add_middleware(body_limit.BodyLimitMiddleware)
    app.add_middleware(LanguageMiddleware)
    app.add_middleware(AllowMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, always_hsts=settings.environment == "production")
    app.state.login_throttle = LoginThrottle(rate_limiter, settings)
    app.state.sessionmaker = sessionmaker
    _install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(i18n_routes.router)
    # The citizen flow owns "/" (the home page); the registry keeps /regions.
    app.include_router(letters_api.api)
    app.include_router(letters_pages.pages)
    app.include_router(deputies_routes.api)
    app.include_router(deputies_routes.pages)
    app.include_router(staff_routes.api)
    app.include_router(staff_routes.pages)
    app.include_router(campaigns_routes.api)
    app.include_router(campaigns_routes.pages)
    app.include_router(delivery_routes.service_routes)
    app.include_router(delivery_routes.pages)
    app.include_router(stats_routes.public_api)
    app.include_router(stats_routes.api)
    app.include_router(stats_routes.pages)

    @app.get("/healthz", tags=["service"], responses=openapi.HEALTH)
    async def healthz() -> JSONResponse:
        """Whether the service and its database answer."""
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to reach the database means unhealthy
            outage.down(exc)
            return JSONResponse(
                {"status": "error", "database": "unavailable"},
                status_code=503,
                headers={"retry-after": str(RETRY_AFTER), "cache-control": "no-store"},
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    return app


def app_factory() -> FastAPI:
    """Entry point for uvicorn --factory."""
    return create_app()
