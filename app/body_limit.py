"""How big a request's body may be: a limit on every route, checked while the body is read.

Every path has a limit: DEFAULT, or a larger one for the paths listed in LARGER (the campaigns'
texts). A request whose Content-Length is already over it is refused (413) at once, before anything
reads it; any other body, chunked ones included, is counted as the app reads it, and the read that
passes the limit raises BodyTooLarge, an HTTP error that FastAPI lets through its body parsing and
app.main's handler answers with 413 (JSON under /api/, the error page elsewhere). Nothing else in
the app limits bodies: FastAPI's own `max_body_size` stays unset, since Starlette then answers a
Content-Length over the limit with a plain-text 413 of its own in place of the app's.

A limit bounds what a request may make the process hold. On the staff routes an anonymous request
does not get even that far: app.staff.gate, inside this middleware, refuses it before a byte of its
body is read.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.i18n import gettext
from app.openapi import ErrorOut
from app.templating import templates

# The citizen's forms and JSON (a submission to 300 deputies, every field at its longest valid
# length, is under 16 KB even with every character escaped), staff JSON and forms other than
# texts, and every route that takes no body.
DEFAULT = 32 * 1024
# The campaigns' staff routes: a text's body of 20,000 characters is up to 120 KB as JSON
# (`\u` escapes) or as a form (percent-encoded UTF-8), its campaign's description half that.
TEXTS = 256 * 1024
LARGER: tuple[tuple[tuple[str, ...], int], ...] = (
    (
        (
            "/api/v1/staff/campaigns",
            "/api/v1/staff/texts/",
            "/api/v1/staff/versions/",
            "/staff/campaigns",
            "/staff/texts/",
            "/staff/versions/",
        ),
        TEXTS,
    ),
)
TOO_LARGE = "Request body too large."


def too_large_message() -> str:
    return gettext(TOO_LARGE)


def limit_for(path: str) -> int:
    """The largest body a request to this path may have, in bytes."""
    for prefixes, limit in LARGER:
        if path.startswith(prefixes):
            return limit
    return DEFAULT


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE)


def too_large(request: Request) -> Response:
    """The 413 as app.main answers any error: JSON under /api/, the error page elsewhere."""
    message = too_large_message()
    if request.url.path.startswith("/api/"):
        body = ErrorOut(error="http_error", message=message)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=413)
    return templates.TemplateResponse(
        request,
        "errors/error.html",
        {"status": 413, "message": message, "details": []},
        status_code=413,
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await too_large(Request(scope, receive))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        await self.app(scope, counted, send)
