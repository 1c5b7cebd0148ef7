"""Staff pages for appeal texts and versions: a new text, a text's page with its editor, a new
version, the diff between two, a version's page, its preview for a real deputy, and the help on
template variables. Roles are enforced by the services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.campaigns import lifecycle, texts, variants, vetting
from app.campaigns.models import VersionStatus
from app.campaigns.schemas import TextIn, VersionIn
from app.campaigns.web import (
    BodyForm,
    DiffFrom,
    DiffTo,
    IdPath,
    RegionQuery,
    SubjectForm,
    editor_context,
    rollback,
    see_other,
)
from app.dependencies import SessionDep
from app.deputies import service as deputies_service
from app.errors import InvalidInput
from app.staff.web import AuthDep, form_model, staff_page

router = APIRouter(include_in_schema=False)


@router.get("/campaigns/{campaign_id}/texts/new", response_class=HTMLResponse, name="text_new")
async def text_new(
    request: Request, session: SessionDep, auth: AuthDep, campaign_id: IdPath
) -> HTMLResponse:
    campaign = await lifecycle.get_campaign(session, campaign_id=campaign_id)
    return staff_page(
        request,
        auth,
        "campaigns/text_new.html",
        editor_context(campaign=campaign, name="", subject="", body="", error=""),
    )


@router.post("/campaigns/{campaign_id}/texts", response_class=HTMLResponse, name="text_create")
async def text_create(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    campaign_id: IdPath,
    name: Annotated[str, Form(max_length=200)],
    subject: SubjectForm,
    body: BodyForm,
) -> Response:
    body = body.replace("\r\n", "\n")
    try:
        data = form_model(TextIn, name=name, subject=subject, body=body)
        version = await texts.create_text(
            session,
            campaign_id=campaign_id,
            name=data.name,
            subject=data.subject,
            body=data.body,
            actor=auth.staff,
        )
    except InvalidInput as exc:
        await rollback(session, auth)
        campaign = await lifecycle.get_campaign(session, campaign_id=campaign_id)
        return staff_page(
            request,
            auth,
            "campaigns/text_new.html",
            editor_context(
                campaign=campaign, name=name, subject=subject, body=body, error=exc.localized()
            ),
            status_code=422,
        )
    await session.commit()
    return see_other(request, "version_page", version_id=version.id)


async def _text_page(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    *,
    text_id: int,
    subject: str | None = None,
    body: str | None = None,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    text = await texts.get_text(session, text_id=text_id)
    latest = text.versions[-1] if text.versions else None
    return staff_page(
        request,
        auth,
        "campaigns/text.html",
        editor_context(
            text=text,
            campaign=text.campaign,
            subject=subject if subject is not None else (latest.subject if latest else ""),
            body=body if body is not None else (latest.body if latest else ""),
            error=error,
        ),
        status_code=status,
    )


@router.get("/texts/{text_id}", response_class=HTMLResponse, name="text_page")
async def text_page(
    request: Request, session: SessionDep, auth: AuthDep, text_id: IdPath
) -> HTMLResponse:
    return await _text_page(request, session, auth, text_id=text_id)


@router.post("/texts/{text_id}/versions", response_class=HTMLResponse, name="version_save")
async def version_save(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    text_id: IdPath,
    subject: SubjectForm,
    body: BodyForm,
) -> Response:
    body = body.replace("\r\n", "\n")
    try:
        data = form_model(VersionIn, subject=subject, body=body)
        version = await texts.save_version(
            session, text_id=text_id, subject=data.subject, body=data.body, actor=auth.staff
        )
    except InvalidInput as exc:
        await rollback(session, auth)
        return await _text_page(
            request,
            session,
            auth,
            text_id=text_id,
            subject=subject,
            body=body,
            error=exc.localized(),
            status=422,
        )
    await session.commit()
    return see_other(request, "version_page", version_id=version.id)


@router.get("/texts/{text_id}/diff", response_class=HTMLResponse, name="text_diff")
async def text_diff(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    text_id: IdPath,
    from_number: DiffFrom,
    to_number: DiffTo,
) -> HTMLResponse:
    lines = await texts.diff_versions(
        session, text_id=text_id, from_number=from_number, to_number=to_number
    )
    text = await texts.get_text(session, text_id=text_id)
    return staff_page(
        request,
        auth,
        "campaigns/diff.html",
        {"text": text, "lines": lines, "from_number": from_number, "to_number": to_number},
    )


@router.get("/versions/{version_id}", response_class=HTMLResponse, name="version_page")
async def version_page(
    request: Request, session: SessionDep, auth: AuthDep, version_id: IdPath
) -> HTMLResponse:
    version = await texts.get_version(session, version_id=version_id)
    regions = [region for region, _ in await deputies_service.list_regions(session)]
    return staff_page(
        request,
        auth,
        "campaigns/version.html",
        {
            "version": version,
            "text": version.text,
            "campaign": version.text.campaign,
            "regions": regions,
            "VersionStatus": VersionStatus,
            "held": await vetting.held_letters(session, version_id=version.id),
        },
    )


@router.get("/versions/{version_id}/preview", response_class=HTMLResponse, name="version_preview")
async def version_preview(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    region: RegionQuery = None,
    deputy_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    version = await texts.get_version(session, version_id=version_id)
    regions = [r for r, _ in await deputies_service.list_regions(session)]
    deputies = []
    if region:
        chosen = await deputies_service.get_region(session, code=region)
        deputies = await deputies_service.list_active_deputies(session, region=chosen)
    letter = None
    if deputy_id is not None:
        _, deputy, subject, body = await variants.preview(
            session, version_id=version_id, deputy_id=deputy_id
        )
        letter = {"deputy": deputy, "subject": subject, "body": body}
    return staff_page(
        request,
        auth,
        "campaigns/preview.html",
        {
            "version": version,
            "text": version.text,
            "regions": regions,
            "region": region or "",
            "deputies": deputies,
            "deputy_id": deputy_id,
            "letter": letter,
        },
    )


@router.get("/help/variables", response_class=HTMLResponse, name="template_help")
async def template_help(request: Request, auth: AuthDep) -> HTMLResponse:
    return staff_page(request, auth, "campaigns/variables.html", editor_context())
