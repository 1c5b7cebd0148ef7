"""Staff routes: login and logout, the staff's own account (TOTP, API tokens), staff management
and the audit log, as pages under /staff and as JSON under /api/v1/staff."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.dependencies import SessionDep
from app.errors import AppError, Forbidden
from app.staff import accounts, api_tokens, audit_log, sessions, totp
from app.staff.models import Role
from app.staff.schemas import (
    AuditOut,
    AuditPage,
    StaffIn,
    StaffOut,
    StaffUpdate,
    TokenCreated,
    TokenIn,
    TokenOut,
)
from app.staff.throttle import LoginThrottle
from app.staff.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Auth,
    AuthDep,
    form_model,
    role,
    safe_next,
    set_cookie,
    settings_of,
    staff_page,
)
from app.text import ONE_LINE, SECRET

api = APIRouter(prefix="/api/v1/staff", tags=["staff"])
pages = APIRouter(prefix="/staff", include_in_schema=False)

IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
Admin = Annotated[Auth, role(Role.admin)]
# Every field passes app.text's gate (a password as typed, but never a control character).
PasswordField = Annotated[str, Form(max_length=1024), SECRET]
EmailField = Annotated[str, Form(max_length=254), ONE_LINE]
CodeField = Annotated[str, Form(max_length=10), ONE_LINE]
NextField = Annotated[str, Form(max_length=500), ONE_LINE]


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _see_other(request: Request, name: str, **params: object) -> RedirectResponse:
    return RedirectResponse(str(request.app.url_path_for(name, **params)), status_code=303)


# --- login and logout --------------------------------------------------------------------------


def _login_form(
    request: Request, *, next_path: str | None, error: str = "", email: str = "", status: int = 200
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = staff_page(
        request,
        None,
        "staff/login.html",
        {"login_csrf": token, "next": next_path or "", "error": error, "email": email},
        status_code=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@pages.get("/login", response_class=HTMLResponse, name="staff_login")
async def login_page(
    request: Request, next: Annotated[str | None, Query(max_length=500), ONE_LINE] = None
) -> HTMLResponse:
    return _login_form(request, next_path=safe_next(next))


@pages.post("/login", name="staff_login_submit")
async def login_submit(
    request: Request,
    session: SessionDep,
    email: EmailField,
    password: PasswordField,
    csrf_token: Annotated[str, Form(max_length=100), ONE_LINE] = "",
    code: CodeField = "",
    next: NextField = "",
) -> Response:
    # Login CSRF: the form must come from our own page (double-submit cookie). Compared as bytes:
    # compare_digest refuses str with characters beyond ASCII.
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if (
        not cookie
        or not csrf_token
        or not secrets.compare_digest(cookie.encode(), csrf_token.encode())
    ):
        raise Forbidden("The form's security token is missing or wrong: reload the page.")
    settings = settings_of(request)
    try:
        staff = await sessions.authenticate(
            session,
            email=email,
            password=password,
            totp_code=code,
            client_address=_client_address(request),
            throttle=_throttle(request),
            settings=settings,
        )
    except AppError as exc:
        await session.commit()  # a replayed or consumed TOTP step is kept even on failure
        return _login_form(
            request,
            next_path=safe_next(next),
            error=exc.localized(),
            email=email,
            status=exc.status_code,
        )
    token = await sessions.start_session(session, staff=staff, settings=settings)
    await session.commit()
    response = RedirectResponse(
        safe_next(next) or str(request.app.url_path_for("staff_home")), status_code=303
    )
    set_cookie(
        request, response, SESSION_COOKIE, token, max_age=settings.staff_session_hours * 3600
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@pages.post("/logout", name="staff_logout")
async def logout(request: Request, session: SessionDep, auth: AuthDep) -> Response:
    assert auth.session_token is not None  # pages never take bearer tokens
    await sessions.end_session(session, token=auth.session_token, staff=auth.staff)
    await session.commit()
    response = _see_other(request, "staff_login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@pages.get("", response_class=HTMLResponse, name="staff_home")
async def home(request: Request, auth: AuthDep) -> HTMLResponse:
    return staff_page(request, auth, "staff/home.html")


# --- own account: TOTP and API tokens ----------------------------------------------------------


@pages.get("/account", response_class=HTMLResponse, name="staff_account")
async def account_page(request: Request, session: SessionDep, auth: AuthDep) -> HTMLResponse:
    tokens = await api_tokens.list_api_tokens(session, staff=auth.staff)
    uri = (
        totp.totp_uri(auth.staff) if auth.staff.totp_secret and not auth.staff.totp_enabled else ""
    )
    return staff_page(
        request,
        auth,
        "staff/account.html",
        {"tokens": tokens, "totp_uri": uri, "new_token": None},
    )


@pages.post("/account/totp", name="staff_totp_begin")
async def totp_begin(request: Request, session: SessionDep, auth: AuthDep) -> Response:
    await totp.begin_totp(session, staff=auth.staff)
    await session.commit()
    return _see_other(request, "staff_account")


@pages.post("/account/totp/confirm", name="staff_totp_confirm")
async def totp_confirm(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    code: CodeField,
) -> Response:
    await totp.confirm_totp(session, staff=auth.staff, code=code)
    await session.commit()
    return _see_other(request, "staff_account")


@pages.post("/account/totp/disable", name="staff_totp_disable")
async def totp_disable(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    code: CodeField,
) -> Response:
    await totp.disable_totp(session, staff=auth.staff, code=code)
    await session.commit()
    return _see_other(request, "staff_account")


@pages.post("/account/tokens", response_class=HTMLResponse, name="staff_token_create")
async def token_create_page(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    name: Annotated[str, Form(max_length=100), ONE_LINE],
) -> HTMLResponse:
    _, raw = await api_tokens.create_api_token(session, staff=auth.staff, name=name)
    await session.commit()
    tokens = await api_tokens.list_api_tokens(session, staff=auth.staff)
    # Shown once, on this response only (not after a redirect: it must not sit in a URL).
    return staff_page(
        request, auth, "staff/account.html", {"tokens": tokens, "totp_uri": "", "new_token": raw}
    )


@pages.post("/account/tokens/{token_id}/revoke", name="staff_token_revoke")
async def token_revoke_page(
    request: Request, session: SessionDep, auth: AuthDep, token_id: IdPath
) -> Response:
    await api_tokens.revoke_api_token(session, staff=auth.staff, token_id=token_id)
    await session.commit()
    return _see_other(request, "staff_account")


# --- staff management (admins) -----------------------------------------------------------------


@pages.get("/members", response_class=HTMLResponse, name="staff_members")
async def members_page(request: Request, session: SessionDep, auth: Admin) -> HTMLResponse:
    members = await accounts.list_staff(session)
    return staff_page(
        request, auth, "staff/members.html", {"members": members, "roles": list(Role)}
    )


@pages.post("/members", name="staff_member_create")
async def member_create_page(
    request: Request,
    session: SessionDep,
    auth: Admin,
    email: EmailField,
    password: PasswordField,
    name: Annotated[str, Form(max_length=200), ONE_LINE] = "",
    roles: Annotated[list[Role] | None, Form()] = None,
) -> Response:
    data = form_model(StaffIn, email=email, name=name, password=password, roles=set(roles or []))
    await accounts.create_staff(
        session,
        email=data.email,
        password=data.password,
        roles=data.roles,
        name=data.name,
        settings=settings_of(request),
        actor=auth.staff,
    )
    await session.commit()
    return _see_other(request, "staff_members")


@pages.post("/members/{staff_id}", name="staff_member_update")
async def member_update_page(
    request: Request,
    session: SessionDep,
    auth: Admin,
    staff_id: IdPath,
    roles: Annotated[list[Role] | None, Form()] = None,
    is_active: Annotated[bool, Form()] = False,
) -> Response:
    await accounts.update_staff(
        session, staff_id=staff_id, roles=set(roles or []), is_active=is_active, actor=auth.staff
    )
    await session.commit()
    return _see_other(request, "staff_members")


@pages.get("/audit", response_class=HTMLResponse, name="staff_audit")
async def audit_page(
    request: Request,
    session: SessionDep,
    auth: Admin,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    per_page = 100
    entries, total = await audit_log.list_audit(
        session, limit=per_page, offset=(page - 1) * per_page
    )
    return staff_page(
        request,
        auth,
        "staff/audit.html",
        {"entries": entries, "total": total, "page": page, "pages": max(1, -(-total // per_page))},
    )


# --- JSON API ----------------------------------------------------------------------------------


@api.get("/me", response_model=StaffOut)
async def me(auth: AuthDep) -> StaffOut:
    """The authenticated staff member."""
    return StaffOut.model_validate(auth.staff)


@api.get("/members", response_model=list[StaffOut])
async def list_members(session: SessionDep, auth: Admin) -> list[StaffOut]:
    """Every staff member (admins)."""
    return [StaffOut.model_validate(m) for m in await accounts.list_staff(session)]


@api.post("/members", response_model=StaffOut, status_code=201)
async def create_member(
    request: Request, data: StaffIn, session: SessionDep, auth: Admin
) -> StaffOut:
    """Create a staff member (admins)."""
    staff = await accounts.create_staff(
        session,
        email=data.email,
        password=data.password,
        roles=data.roles,
        name=data.name,
        settings=settings_of(request),
        actor=auth.staff,
    )
    await session.commit()
    return StaffOut.model_validate(staff)


@api.patch("/members/{staff_id}", response_model=StaffOut)
async def update_member(
    staff_id: IdPath, data: StaffUpdate, session: SessionDep, auth: Admin
) -> StaffOut:
    """Change a member's name, roles or active flag (admins)."""
    staff = await accounts.update_staff(
        session,
        staff_id=staff_id,
        roles=data.roles,
        is_active=data.is_active,
        name=data.name,
        actor=auth.staff,
    )
    await session.commit()
    return StaffOut.model_validate(staff)


@api.get("/audit", response_model=AuditPage)
async def audit(
    session: SessionDep,
    auth: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    """The audit log, newest first (admins)."""
    entries, total = await audit_log.list_audit(session, limit=limit, offset=offset)
    return AuditPage(total=total, entries=[AuditOut.model_validate(e) for e in entries])


@api.get("/tokens", response_model=list[TokenOut])
async def list_tokens(session: SessionDep, auth: AuthDep) -> list[TokenOut]:
    """The authenticated member's API tokens."""
    return [
        TokenOut.model_validate(t)
        for t in await api_tokens.list_api_tokens(session, staff=auth.staff)
    ]


@api.post("/tokens", response_model=TokenCreated, status_code=201)
async def create_token(data: TokenIn, session: SessionDep, auth: AuthDep) -> TokenCreated:
    """A new API token for the authenticated member; the token is in this response only."""
    token, raw = await api_tokens.create_api_token(
        session, staff=auth.staff, name=data.name, days=data.days
    )
    await session.commit()
    return TokenCreated.model_validate(
        {**TokenOut.model_validate(token).model_dump(), "token": raw}
    )


@api.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: IdPath, session: SessionDep, auth: AuthDep) -> Response:
    """Revoke one of the authenticated member's tokens."""
    await api_tokens.revoke_api_token(session, staff=auth.staff, token_id=token_id)
    await session.commit()
    return Response(status_code=204)
