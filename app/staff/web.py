"""Authentication, roles and CSRF for staff routes (pages and API), as FastAPI dependencies.

Pages authenticate with the session cookie only. The API takes the same cookie or, for scripts,
`Authorization: Bearer apl_…` (a staff member's API token). Every state-changing request that is
authenticated by the cookie must carry the session's CSRF token: the `csrf_token` form field or
the `X-CSRF-Token` header. Bearer requests need none: a browser never adds that header by itself.
Authenticating only reads; a bearer token's last use is noted at most once a minute, on a read in
a write transaction of its own (never by the read's session, whose autoflush would take SQLite's
write lock in the middle of a GET).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import begin_write, utcnow
from app.dependencies import WRITE_METHODS, SessionDep
from app.errors import Forbidden, InvalidInput, Unauthorized
from app.staff import accounts, api_tokens, sessions
from app.staff.models import Role, StaffMember
from app.templating import templates

SESSION_COOKIE = "appeals_staff"
LOGIN_CSRF_COOKIE = "appeals_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
M = TypeVar("M", bound=BaseModel)
logger = logging.getLogger("appeals.staff")


@dataclass
class Auth:
    staff: StaffMember
    session_token: str | None  # None when authenticated by a bearer token
    csrf_token: str | None


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def secure_cookies(request: Request) -> bool:
    return settings_of(request).secure_cookies(request.url.scheme)


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


async def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def optional_auth(request: Request, session: SessionDep) -> Auth | None:
    """The staff member making the request, if any."""
    settings = settings_of(request)
    if request.url.path.startswith("/api/"):
        raw = await _bearer(request)
        if raw is not None:
            return await _bearer_auth(request, session, raw)
    token = request.cookies.get(SESSION_COOKIE, "")
    staff = await sessions.staff_for_session(session, token=token) if token else None
    if staff is None:
        return None
    return Auth(
        staff=staff,
        session_token=token,
        csrf_token=sessions.csrf_token_for(token, settings=settings),
    )


async def _bearer_auth(request: Request, session: AsyncSession, raw: str) -> Auth:
    found = await api_tokens.find_api_token(session, raw=raw)
    if found is None:
        raise Unauthorized("The API token is invalid, expired or revoked.")
    token, staff = found
    now = utcnow()
    if api_tokens.last_use_due(token, now=now):
        await _note_use(request, session, token_id=token.id, now=now)
    return Auth(staff=staff, session_token=None, csrf_token=None)


async def _note_use(
    request: Request, session: AsyncSession, *, token_id: int, now: dt.datetime
) -> None:
    """Write an API token's last use, never through a read's session (A read never writes)."""
    if request.method in WRITE_METHODS:
        # The request's session already holds its write transaction (get_session's begin_write)
        # and is committed by the route: the note goes with it.
        await api_tokens.note_use(session, token_id=token_id, at=now)
        return
    # A read: end its transaction (nothing is pending in it), so that its connection is back in
    # the pool before the write takes one (else a burst of reads could hold every connection
    # while each waits for a second), then write in a session of its own, queued like any write.
    await session.commit()
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    try:
        async with sessionmaker() as writer:
            await begin_write(writer)
            await api_tokens.note_use(writer, token_id=token_id, at=now)
            await writer.commit()
    except (DBAPIError, SQLAlchemyTimeoutError):
        # Bookkeeping: the read goes on without it; the next try comes a minute later.
        logger.warning("could not note the use of API token %s", token_id, exc_info=True)


async def _submitted_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def require_auth(
    request: Request, auth: Annotated[Auth | None, Depends(optional_auth)]
) -> Auth:
    """The authenticated staff member; 401 (pages: a redirect to the login page) otherwise.
    State-changing requests authenticated by the cookie must carry the CSRF token (403)."""
    if auth is None:
        raise Unauthorized("Please log in.")
    if request.method in UNSAFE_METHODS and auth.session_token is not None:
        submitted = await _submitted_csrf(request)
        if not sessions.csrf_valid(auth.session_token, submitted, settings=settings_of(request)):
            raise Forbidden("The form's security token is missing or wrong: reload the page.")
    return auth


AuthDep = Annotated[Auth, Depends(require_auth)]


def role(*roles: Role) -> Any:
    """A dependency: the authenticated member, who must hold one of these roles (else 403)."""

    async def dependency(auth: AuthDep) -> Auth:
        accounts.require(auth.staff, *roles)
        return auth

    return Depends(dependency)


def staff_page(
    request: Request,
    auth: Auth | None,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """A staff page: the template gets the member, their CSRF token and the page's context."""
    values: dict[str, Any] = {
        "staff": auth.staff if auth else None,
        "csrf_token": auth.csrf_token if auth else "",
        "Role": Role,
    }
    values.update(context or {})
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    # Staff pages hold unpublished texts: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def safe_next(target: str | None) -> str | None:
    """A same-site path to return to after login, or None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 32 for c in target) or len(target) > 500:
        return None
    return target


def login_redirect_target(request: Request) -> str:
    login: str = str(request.app.url_path_for("staff_login"))
    path = request.url.path
    if request.method == "GET" and safe_next(path):
        query = f"?{request.url.query}" if request.url.query else ""
        return f"{login}?next={quote(path + query, safe='')}"
    return login


def form_model(model: type[M], **values: Any) -> M:
    """Validate form values with an API schema; a problem is InvalidInput (422), never a 500."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidInput(f"{field or 'form'}: {first['msg']}", field=field) from None
