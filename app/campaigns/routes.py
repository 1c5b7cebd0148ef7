"""Campaign routes for staff: campaigns, texts, versions, vetting, preview and diff, as pages
under /staff and as JSON under /api/v1/staff. Roles are enforced by the service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import rendering, service
from app.campaigns.models import Campaign, CampaignStatus, VersionStatus
from app.campaigns.schemas import (
    CampaignDetailOut,
    CampaignIn,
    CampaignOut,
    DiffOut,
    HeldLettersOut,
    PreviewOut,
    ReviewIn,
    StatusIn,
    TextIn,
    TextOut,
    VersionIn,
    VersionOut,
)
from app.dependencies import SessionDep
from app.deputies import service as deputies_service
from app.deputies.models import LegislatureLevel
from app.errors import InvalidInput
from app.staff.web import Auth, AuthDep, form_model, staff_page

api = APIRouter(prefix="/api/v1/staff", tags=["staff: campaigns"])
pages = APIRouter(prefix="/staff", include_in_schema=False)

IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
IdQuery = Annotated[int, Query(ge=1, le=2**31 - 1)]
CommentForm = Annotated[str, Form(max_length=5000)]
SubjectForm = Annotated[str, Form(max_length=rendering.SUBJECT_MAX * 4)]
BodyForm = Annotated[str, Form(max_length=rendering.BODY_MAX * 4)]


def _see_other(request: Request, name: str, **params: object) -> RedirectResponse:
    return RedirectResponse(str(request.app.url_path_for(name, **params)), status_code=303)


async def _rollback(session: AsyncSession, auth: Auth) -> None:
    """Undo a half-done change before showing the form again (the member is reloaded)."""
    await session.rollback()
    await session.refresh(auth.staff)


def _campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(campaign)


# --- pages: campaigns --------------------------------------------------------------------------


@pages.get("/campaigns", response_class=HTMLResponse, name="campaigns_list")
async def campaigns_page(request: Request, session: SessionDep, auth: AuthDep) -> HTMLResponse:
    campaigns = await service.list_campaigns(session)
    return staff_page(request, auth, "campaigns/list.html", {"campaigns": campaigns})


async def _campaign_form(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    *,
    campaign: Campaign | None,
    values: dict[str, Any],
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    regions = [region for region, _ in await deputies_service.list_regions(session)]
    return staff_page(
        request,
        auth,
        "campaigns/form.html",
        {
            "campaign": campaign,
            "values": values,
            "regions": regions,
            "levels": list(LegislatureLevel),
            "error": error,
        },
        status_code=status,
    )


def _form_values(campaign: Campaign) -> dict[str, Any]:
    def local(value: Any) -> str:
        return value.strftime("%Y-%m-%dT%H:%M") if value else ""

    return {
        "slug": campaign.slug,
        "title": campaign.title,
        "description": campaign.description,
        "all_regions": campaign.all_regions,
        "region_codes": campaign.region_codes,
        "legislature_level": str(campaign.legislature_level),
        "requires_address": campaign.requires_address,
        "opens_at": local(campaign.opens_at),
        "closes_at": local(campaign.closes_at),
    }


@pages.get("/campaigns/new", response_class=HTMLResponse, name="campaign_new")
async def campaign_new(request: Request, session: SessionDep, auth: AuthDep) -> HTMLResponse:
    values = {"all_regions": True, "legislature_level": "regional", "region_codes": []}
    return await _campaign_form(request, session, auth, campaign=None, values=values)


class CampaignForm:
    """The campaign form's fields, as FastAPI form parameters."""

    def __init__(
        self,
        slug: Annotated[str, Form(max_length=200)],
        title: Annotated[str, Form(max_length=400)],
        description: Annotated[str, Form(max_length=20_000)] = "",
        all_regions: Annotated[bool, Form()] = False,
        region_codes: Annotated[list[str] | None, Form(max_length=200)] = None,
        legislature_level: Annotated[str, Form(max_length=20)] = "regional",
        requires_address: Annotated[bool, Form()] = False,
        opens_at: Annotated[str, Form(max_length=40)] = "",
        closes_at: Annotated[str, Form(max_length=40)] = "",
    ) -> None:
        self.values: dict[str, Any] = {
            "slug": slug.strip(),
            "title": title,
            "description": description.replace("\r\n", "\n"),
            "all_regions": all_regions,
            "region_codes": region_codes or [],
            "legislature_level": legislature_level,
            "requires_address": requires_address,
            "opens_at": opens_at or None,
            "closes_at": closes_at or None,
        }

    def parse(self) -> CampaignIn:
        return form_model(CampaignIn, **self.values)


@pages.post("/campaigns", response_class=HTMLResponse, name="campaign_create")
async def campaign_create(
    request: Request, session: SessionDep, auth: AuthDep, form: Annotated[CampaignForm, Depends()]
) -> Response:
    try:
        campaign = await service.create_campaign(session, data=form.parse(), actor=auth.staff)
    except InvalidInput as exc:
        return await _campaign_form(
            request,
            session,
            auth,
            campaign=None,
            values=form.values,
            error=exc.localized(),
            status=422,
        )
    await session.commit()
    return _see_other(request, "campaign_page", campaign_id=campaign.id)


@pages.get("/campaigns/{campaign_id}", response_class=HTMLResponse, name="campaign_page")
async def campaign_page(
    request: Request, session: SessionDep, auth: AuthDep, campaign_id: IdPath
) -> HTMLResponse:
    campaign = await service.get_campaign(session, campaign_id=campaign_id)
    approved = await service.approved_versions(session, campaign_id=campaign.id)
    targets = sorted(service.CAMPAIGN_TRANSITIONS[CampaignStatus(campaign.status)])
    return staff_page(
        request,
        auth,
        "campaigns/campaign.html",
        {"campaign": campaign, "approved": approved, "targets": targets},
    )


@pages.get("/campaigns/{campaign_id}/edit", response_class=HTMLResponse, name="campaign_edit")
async def campaign_edit(
    request: Request, session: SessionDep, auth: AuthDep, campaign_id: IdPath
) -> HTMLResponse:
    campaign = await service.get_campaign(session, campaign_id=campaign_id)
    return await _campaign_form(
        request, session, auth, campaign=campaign, values=_form_values(campaign)
    )


@pages.post("/campaigns/{campaign_id}", response_class=HTMLResponse, name="campaign_update")
async def campaign_update(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    campaign_id: IdPath,
    form: Annotated[CampaignForm, Depends()],
) -> Response:
    try:
        await service.update_campaign(
            session, campaign_id=campaign_id, data=form.parse(), actor=auth.staff
        )
    except InvalidInput as exc:
        await _rollback(session, auth)
        campaign = await service.get_campaign(session, campaign_id=campaign_id)
        return await _campaign_form(
            request,
            session,
            auth,
            campaign=campaign,
            values=form.values,
            error=exc.localized(),
            status=422,
        )
    await session.commit()
    return _see_other(request, "campaign_page", campaign_id=campaign_id)


@pages.post("/campaigns/{campaign_id}/status", name="campaign_status")
async def campaign_status(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    campaign_id: IdPath,
    status: Annotated[CampaignStatus, Form()],
) -> Response:
    await service.set_campaign_status(
        session, campaign_id=campaign_id, status=status, actor=auth.staff
    )
    await session.commit()
    return _see_other(request, "campaign_page", campaign_id=campaign_id)


# --- pages: texts and versions -----------------------------------------------------------------


def _editor_context(**values: Any) -> dict[str, Any]:
    return {
        "variables": rendering.VARIABLES_DOC,
        "filters": sorted(rendering.ALLOWED_FILTERS),
        **values,
    }


@pages.get("/campaigns/{campaign_id}/texts/new", response_class=HTMLResponse, name="text_new")
async def text_new(
    request: Request, session: SessionDep, auth: AuthDep, campaign_id: IdPath
) -> HTMLResponse:
    campaign = await service.get_campaign(session, campaign_id=campaign_id)
    return staff_page(
        request,
        auth,
        "campaigns/text_new.html",
        _editor_context(campaign=campaign, name="", subject="", body="", error=""),
    )


@pages.post("/campaigns/{campaign_id}/texts", response_class=HTMLResponse, name="text_create")
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
        version = await service.create_text(
            session,
            campaign_id=campaign_id,
            name=data.name,
            subject=data.subject,
            body=data.body,
            actor=auth.staff,
        )
    except InvalidInput as exc:
        await _rollback(session, auth)
        campaign = await service.get_campaign(session, campaign_id=campaign_id)
        return staff_page(
            request,
            auth,
            "campaigns/text_new.html",
            _editor_context(
                campaign=campaign, name=name, subject=subject, body=body, error=exc.localized()
            ),
            status_code=422,
        )
    await session.commit()
    return _see_other(request, "version_page", version_id=version.id)


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
    text = await service.get_text(session, text_id=text_id)
    latest = text.versions[-1] if text.versions else None
    return staff_page(
        request,
        auth,
        "campaigns/text.html",
        _editor_context(
            text=text,
            campaign=text.campaign,
            subject=subject if subject is not None else (latest.subject if latest else ""),
            body=body if body is not None else (latest.body if latest else ""),
            error=error,
        ),
        status_code=status,
    )


@pages.get("/texts/{text_id}", response_class=HTMLResponse, name="text_page")
async def text_page(
    request: Request, session: SessionDep, auth: AuthDep, text_id: IdPath
) -> HTMLResponse:
    return await _text_page(request, session, auth, text_id=text_id)


@pages.post("/texts/{text_id}/versions", response_class=HTMLResponse, name="version_save")
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
        version = await service.save_version(
            session, text_id=text_id, subject=data.subject, body=data.body, actor=auth.staff
        )
    except InvalidInput as exc:
        await _rollback(session, auth)
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
    return _see_other(request, "version_page", version_id=version.id)


@pages.get("/texts/{text_id}/diff", response_class=HTMLResponse, name="text_diff")
async def text_diff(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    text_id: IdPath,
    from_number: Annotated[int, Query(alias="from", ge=1, le=1_000_000)],
    to_number: Annotated[int, Query(alias="to", ge=1, le=1_000_000)],
) -> HTMLResponse:
    lines = await service.diff_versions(
        session, text_id=text_id, from_number=from_number, to_number=to_number
    )
    text = await service.get_text(session, text_id=text_id)
    return staff_page(
        request,
        auth,
        "campaigns/diff.html",
        {"text": text, "lines": lines, "from_number": from_number, "to_number": to_number},
    )


@pages.get("/versions/{version_id}", response_class=HTMLResponse, name="version_page")
async def version_page(
    request: Request, session: SessionDep, auth: AuthDep, version_id: IdPath
) -> HTMLResponse:
    version = await service.get_version(session, version_id=version_id)
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
            "held": await service.held_letters(session, version_id=version.id),
        },
    )


@pages.get("/versions/{version_id}/preview", response_class=HTMLResponse, name="version_preview")
async def version_preview(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    region: Annotated[str | None, Query(max_length=6)] = None,
    deputy_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    version = await service.get_version(session, version_id=version_id)
    regions = [r for r, _ in await deputies_service.list_regions(session)]
    deputies = []
    if region:
        chosen = await deputies_service.get_region(session, code=region)
        deputies = await deputies_service.list_active_deputies(session, region=chosen)
    letter = None
    if deputy_id is not None:
        _, deputy, subject, body = await service.preview(
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


@pages.post("/versions/{version_id}/submit", name="version_submit")
async def version_submit(
    request: Request, session: SessionDep, auth: AuthDep, version_id: IdPath
) -> Response:
    await service.submit_version(session, version_id=version_id, actor=auth.staff)
    await session.commit()
    return _see_other(request, "version_page", version_id=version_id)


@pages.post("/versions/{version_id}/approve", name="version_approve")
async def version_approve(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    comment: CommentForm = "",
) -> Response:
    await service.approve_version(session, version_id=version_id, actor=auth.staff, comment=comment)
    await session.commit()
    return _see_other(request, "version_page", version_id=version_id)


@pages.post("/versions/{version_id}/reject", name="version_reject")
async def version_reject(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    comment: CommentForm = "",
) -> Response:
    await service.reject_version(session, version_id=version_id, actor=auth.staff, comment=comment)
    await session.commit()
    return _see_other(request, "version_page", version_id=version_id)


@pages.post("/versions/{version_id}/withdraw", name="version_withdraw")
async def version_withdraw(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    comment: CommentForm = "",
) -> Response:
    await service.withdraw_approval(
        session, version_id=version_id, actor=auth.staff, comment=comment
    )
    await session.commit()
    return _see_other(request, "version_page", version_id=version_id)


@pages.post("/versions/{version_id}/held/{decision}", name="version_held_letters")
async def version_held_letters(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    version_id: IdPath,
    decision: Annotated[str, Path(pattern="^(release|cancel)$")],
) -> Response:
    await service.decide_held_letters(
        session, version_id=version_id, actor=auth.staff, release=decision == "release"
    )
    await session.commit()
    return _see_other(request, "version_page", version_id=version_id)


@pages.get("/review", response_class=HTMLResponse, name="review_queue")
async def review_page(request: Request, session: SessionDep, auth: AuthDep) -> HTMLResponse:
    queue = await service.review_queue(session)
    return staff_page(request, auth, "campaigns/review.html", {"queue": queue})


@pages.get("/help/variables", response_class=HTMLResponse, name="template_help")
async def template_help(request: Request, auth: AuthDep) -> HTMLResponse:
    return staff_page(request, auth, "campaigns/variables.html", _editor_context())


# --- JSON API ----------------------------------------------------------------------------------


@api.get("/campaigns", response_model=list[CampaignOut])
async def list_campaigns(session: SessionDep, auth: AuthDep) -> list[CampaignOut]:
    """Every campaign, newest first."""
    return [_campaign_out(c) for c in await service.list_campaigns(session)]


@api.post("/campaigns", response_model=CampaignOut, status_code=201)
async def create_campaign(data: CampaignIn, session: SessionDep, auth: AuthDep) -> CampaignOut:
    """Create a draft campaign (editors)."""
    campaign = await service.create_campaign(session, data=data, actor=auth.staff)
    await session.commit()
    return _campaign_out(campaign)


@api.get("/campaigns/{campaign_id}", response_model=CampaignDetailOut)
async def get_campaign(
    campaign_id: IdPath, session: SessionDep, auth: AuthDep
) -> CampaignDetailOut:
    """A campaign with its texts and their versions."""
    campaign = await service.get_campaign(session, campaign_id=campaign_id)
    return CampaignDetailOut.model_validate(campaign)


@api.put("/campaigns/{campaign_id}", response_model=CampaignOut)
async def update_campaign(
    campaign_id: IdPath, data: CampaignIn, session: SessionDep, auth: AuthDep
) -> CampaignOut:
    """Replace a campaign's description and targets (editors)."""
    campaign = await service.update_campaign(
        session, campaign_id=campaign_id, data=data, actor=auth.staff
    )
    await session.commit()
    return _campaign_out(campaign)


@api.post("/campaigns/{campaign_id}/status", response_model=CampaignOut)
async def set_status(
    campaign_id: IdPath, data: StatusIn, session: SessionDep, auth: AuthDep
) -> CampaignOut:
    """Publish, pause or close a campaign (editors, admins)."""
    campaign = await service.set_campaign_status(
        session, campaign_id=campaign_id, status=data.status, actor=auth.staff
    )
    await session.commit()
    return _campaign_out(campaign)


@api.post("/campaigns/{campaign_id}/texts", response_model=TextOut, status_code=201)
async def create_text(
    campaign_id: IdPath, data: TextIn, session: SessionDep, auth: AuthDep
) -> TextOut:
    """A new text with its first version, a draft (editors)."""
    version = await service.create_text(
        session,
        campaign_id=campaign_id,
        name=data.name,
        subject=data.subject,
        body=data.body,
        actor=auth.staff,
    )
    await session.commit()
    return TextOut.model_validate(await service.get_text(session, text_id=version.text_id))


@api.get("/texts/{text_id}", response_model=TextOut)
async def get_text(text_id: IdPath, session: SessionDep, auth: AuthDep) -> TextOut:
    """A text with its version history."""
    return TextOut.model_validate(await service.get_text(session, text_id=text_id))


@api.post("/texts/{text_id}/versions", response_model=VersionOut, status_code=201)
async def save_version(
    text_id: IdPath, data: VersionIn, session: SessionDep, auth: AuthDep
) -> VersionOut:
    """Save a new draft version of a text (editors)."""
    version = await service.save_version(
        session, text_id=text_id, subject=data.subject, body=data.body, actor=auth.staff
    )
    await session.commit()
    return VersionOut.model_validate(version)


@api.get("/texts/{text_id}/diff", response_model=DiffOut)
async def diff(
    text_id: IdPath,
    session: SessionDep,
    auth: AuthDep,
    from_number: Annotated[int, Query(alias="from", ge=1, le=1_000_000)],
    to_number: Annotated[int, Query(alias="to", ge=1, le=1_000_000)],
) -> DiffOut:
    """A unified diff between two versions of a text."""
    lines = await service.diff_versions(
        session, text_id=text_id, from_number=from_number, to_number=to_number
    )
    return DiffOut(text_id=text_id, from_number=from_number, to_number=to_number, lines=lines)


@api.get("/versions/{version_id}", response_model=VersionOut)
async def get_version(version_id: IdPath, session: SessionDep, auth: AuthDep) -> VersionOut:
    """One version."""
    return VersionOut.model_validate(await service.get_version(session, version_id=version_id))


@api.get("/versions/{version_id}/preview", response_model=PreviewOut)
async def preview(
    version_id: IdPath, deputy_id: IdQuery, session: SessionDep, auth: AuthDep
) -> PreviewOut:
    """A version rendered for a deputy with sample citizen data."""
    version, deputy, subject, body = await service.preview(
        session, version_id=version_id, deputy_id=deputy_id
    )
    return PreviewOut(version_id=version.id, deputy_id=deputy.id, subject=subject, body=body)


@api.post("/versions/{version_id}/submit", response_model=VersionOut)
async def submit(version_id: IdPath, session: SessionDep, auth: AuthDep) -> VersionOut:
    """Send a draft for review (editors)."""
    version = await service.submit_version(session, version_id=version_id, actor=auth.staff)
    await session.commit()
    return VersionOut.model_validate(version)


@api.post("/versions/{version_id}/approve", response_model=VersionOut)
async def approve(
    version_id: IdPath, session: SessionDep, auth: AuthDep, data: ReviewIn | None = None
) -> VersionOut:
    """Approve a version under review (lawyers other than its author)."""
    version = await service.approve_version(
        session, version_id=version_id, actor=auth.staff, comment=data.comment if data else ""
    )
    await session.commit()
    return VersionOut.model_validate(version)


@api.post("/versions/{version_id}/reject", response_model=VersionOut)
async def reject(
    version_id: IdPath, data: ReviewIn, session: SessionDep, auth: AuthDep
) -> VersionOut:
    """Reject a version under review, with a comment (lawyers other than its author)."""
    version = await service.reject_version(
        session, version_id=version_id, actor=auth.staff, comment=data.comment
    )
    await session.commit()
    return VersionOut.model_validate(version)


@api.post("/versions/{version_id}/withdraw", response_model=VersionOut)
async def withdraw(
    version_id: IdPath, data: ReviewIn, session: SessionDep, auth: AuthDep
) -> VersionOut:
    """Withdraw an approval, with a comment (lawyers): the version's letters are held."""
    version = await service.withdraw_approval(
        session, version_id=version_id, actor=auth.staff, comment=data.comment
    )
    await session.commit()
    return VersionOut.model_validate(version)


@api.post("/versions/{version_id}/held/{decision}", response_model=HeldLettersOut)
async def held_letters(
    version_id: IdPath,
    decision: Annotated[str, Path(pattern="^(release|cancel)$")],
    session: SessionDep,
    auth: AuthDep,
) -> HeldLettersOut:
    """Release (send as written) or cancel the held letters of a withdrawn version (lawyers)."""
    moved = await service.decide_held_letters(
        session, version_id=version_id, actor=auth.staff, release=decision == "release"
    )
    await session.commit()
    return HeldLettersOut(version_id=version_id, decision=decision, letters=moved)


@api.get("/review-queue", response_model=list[VersionOut])
async def list_review_queue(session: SessionDep, auth: AuthDep) -> list[VersionOut]:
    """Versions waiting for a lawyer, oldest first."""
    return [VersionOut.model_validate(v) for v in await service.review_queue(session)]
