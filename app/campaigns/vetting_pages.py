"""Staff pages for the lawyers' vetting: the review queue, and the forms that submit, approve,
reject or withdraw a version and decide on its held letters (each redirects to the version's
page). Roles are enforced by the services."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.campaigns import vetting
from app.campaigns.web import CommentForm, DecisionPath, IdPath, see_other
from app.dependencies import SessionDep
from app.staff.web import AuthDep, staff_page

router = APIRouter(include_in_schema=False)


@router.post("/versions/{version_id}/submit", name="version_submit")
async def version_submit(
    request: Request, session: SessionDep, auth: AuthDep, version_id: IdPath
) -> Response:
    await vetting.submit_version(session, version_id=version_id, actor=auth.staff)
    await session.commit()
    return see_other(request, "version_page", version_id=version_id)


@router.post("/versions/{version_id}/approve", name="version_approve")
async def version_approve(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    comment: CommentForm = "",
) -> Response:
    await vetting.approve_version(session, version_id=version_id, actor=auth.staff, comment=comment)
    await session.commit()
    return see_other(request, "version_page", version_id=version_id)


@router.post("/versions/{version_id}/reject", name="version_reject")
async def version_reject(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    comment: CommentForm = "",
) -> Response:
    await vetting.reject_version(session, version_id=version_id, actor=auth.staff, comment=comment)
    await session.commit()
    return see_other(request, "version_page", version_id=version_id)


@router.post("/versions/{version_id}/withdraw", name="version_withdraw")
async def version_withdraw(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    comment: CommentForm = "",
) -> Response:
    await vetting.withdraw_approval(
        session, version_id=version_id, actor=auth.staff, comment=comment
    )
    await session.commit()
    return see_other(request, "version_page", version_id=version_id)


@router.post("/versions/{version_id}/held/{decision}", name="version_held_letters")
async def version_held_letters(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    decision: DecisionPath,
) -> Response:
    await vetting.decide_held_letters(
        session, version_id=version_id, actor=auth.staff, release=decision == "release"
    )
    await session.commit()
    return see_other(request, "version_page", version_id=version_id)


@router.get("/review", response_class=HTMLResponse, name="review_queue")
async def review_page(request: Request, session: SessionDep, auth: AuthDep) -> HTMLResponse:
    queue = await vetting.review_queue(session)
    return staff_page(request, auth, "campaigns/review.html", {"queue": queue})
