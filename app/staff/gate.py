"""The staff routes' gate: a request that brings no credentials at all is refused before any part of
its body is read.

FastAPI reads and parses a request's body before it solves the dependencies that authenticate
(app.staff.web), so without this an anonymous 100 MB post to the staff API was read whole before
its 401. Here, ahead of every route, a request to the staff API without an API token or a session
cookie gets the same 401 as the API's own, and one to a staff page without the session cookie the
same redirect to the login page; the login page itself stays open. Credentials that are present are
checked by the routes, as before, on a body bounded by app.body_limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Unauthorized
from app.openapi import ErrorOut
from app.staff.web import SESSION_COOKIE, login_redirect_target

API = "/api/v1/staff"
PAGES = "/staff"
OPEN_PAGES = frozenset({"/staff/login"})


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def has_credentials(headers: Headers, *, api: bool) -> bool:
    """A session cookie (any value), or for the API a bearer token (any value): not yet checked."""
    if cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE):
        return True
    if not api:
        return False
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def refusal(request: Request, *, api: bool) -> Response:
    """What the routes answer an anonymous request: 401 (API), the login page (pages)."""
    if not api:
        return RedirectResponse(login_redirect_target(request), status_code=303)
    error = Unauthorized("Please log in.")
    body = ErrorOut(error=error.code, message=error.localized())
    return JSONResponse(body.model_dump(exclude_none=True), status_code=error.status_code)


class StaffGateMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            api = _under(path, API)
            if (api or (_under(path, PAGES) and path not in OPEN_PAGES)) and not has_credentials(
                Headers(scope=scope), api=api
            ):
                await refusal(Request(scope), api=api)(scope, receive, send)
                return
        await self.app(scope, receive, send)
