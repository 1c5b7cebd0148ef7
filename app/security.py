"""Security headers on every response: nothing may load from, or leak to, another site; and no
copy of a page or answer that a secret link opens is kept by a browser or a proxy."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
# The API explorer's page starts Swagger UI with an inline script; it holds no user data.
DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc"})
COMMON = {
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
HSTS = "max-age=63072000; includeSubDomains"
# What the secret links of the citizen's e-mail open (confirmation, status, cancel, erase), as
# pages and as the JSON API: every answer under these paths, errors included, is `no-store`.
SECRET_PATHS = ("/confirm/", "/status/", "/api/v1/confirmations", "/api/v1/status/")


class SecurityHeadersMiddleware:
    """Pure ASGI middleware, so that streaming responses pass through untouched."""

    def __init__(self, app: ASGIApp, *, always_hsts: bool = False) -> None:
        self.app = app
        # In production TLS usually ends at a proxy, so the scheme seen here says nothing.
        self.always_hsts = always_hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in DOCS_PATHS else CSP
        https = self.always_hsts or scope.get("scheme") == "https"
        secret = scope["path"].startswith(SECRET_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON.items():
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", csp)
                if https:
                    headers.setdefault("strict-transport-security", HSTS)
                if secret:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
