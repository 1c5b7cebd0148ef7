"""The language switch: remember the visitor's choice in a cookie and go back to the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse

from app.config import Settings
from app.i18n import SUPPORTED
from app.i18n.middleware import COOKIE
from app.text import ONE_LINE

router = APIRouter(include_in_schema=False)


def _local_path(target: str) -> str:
    # Only paths on this site: never an open redirect to another host.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/language/{language}", name="set_language")
async def set_language(
    request: Request,
    language: Annotated[str, Path(pattern="^(" + "|".join(SUPPORTED) + ")$"), ONE_LINE],
    next: Annotated[str, Query(max_length=2000), ONE_LINE] = "/",
) -> RedirectResponse:
    settings: Settings = request.app.state.settings
    response = RedirectResponse(_local_path(next), status_code=303)
    response.set_cookie(
        COOKIE,
        language,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies(request.url.scheme),
    )
    return response
