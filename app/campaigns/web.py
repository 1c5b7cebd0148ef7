"""What the campaigns' staff pages and JSON API share: the path, query and form parameters, the
redirect after a form, the rollback before a form is shown again, and the template editor's
help."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import rendering
from app.staff.web import Auth
from app.text import MANY_LINES, ONE_LINE

IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
IdQuery = Annotated[int, Query(ge=1, le=2**31 - 1)]
DecisionPath = Annotated[str, Path(pattern="^(release|cancel)$"), ONE_LINE]
DiffFrom = Annotated[int, Query(alias="from", ge=1, le=1_000_000)]
DiffTo = Annotated[int, Query(alias="to", ge=1, le=1_000_000)]
# Form fields that no schema checks afterwards pass app.text's gate here; the others (the
# campaign's, a text's) are read as they came, so that the form can be shown again with them and
# the schema's error (CampaignIn, TextIn, VersionIn).
CommentForm = Annotated[str, Form(max_length=5000), MANY_LINES]
SubjectForm = Annotated[str, Form(max_length=rendering.SUBJECT_MAX * 4)]
BodyForm = Annotated[str, Form(max_length=rendering.BODY_MAX * 4)]
RegionQuery = Annotated[str | None, Query(max_length=6), ONE_LINE]


def see_other(request: Request, name: str, **params: object) -> RedirectResponse:
    """The 303 to the named page that follows a form."""
    return RedirectResponse(str(request.app.url_path_for(name, **params)), status_code=303)


async def rollback(session: AsyncSession, auth: Auth) -> None:
    """Undo a half-done change before showing the form again (the member is reloaded)."""
    await session.rollback()
    await session.refresh(auth.staff)


def editor_context(**values: Any) -> dict[str, Any]:
    """A template page's context with the variables and filters an appeal text may use."""
    return {
        "variables": rendering.VARIABLES_DOC,
        "filters": sorted(rendering.ALLOWED_FILTERS),
        **values,
    }
