"""The campaigns' JSON API for staff under /api/v1/staff: campaigns, texts, versions, vetting,
preview and diff. Roles are enforced by the services."""

from __future__ import annotations

from fastapi import APIRouter

from app.campaigns import lifecycle, texts, variants, vetting
from app.campaigns.models import Campaign
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
from app.campaigns.web import DecisionPath, DiffFrom, DiffTo, IdPath, IdQuery
from app.dependencies import SessionDep
from app.openapi import errors
from app.staff.web import AuthDep

api = APIRouter(prefix="/api/v1/staff", tags=["staff: campaigns"], responses=errors(401, 503))


# Reads of one thing, changes (with a body), and actions (without one).
READ = errors(404, 422)
WRITE = errors(400, 403, 404, 409, 413, 422)
ACTION = errors(403, 404, 409, 422)


def _campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(campaign)


@api.get("/campaigns", response_model=list[CampaignOut])
async def list_campaigns(session: SessionDep, auth: AuthDep) -> list[CampaignOut]:
    """Every campaign, newest first."""
    return [_campaign_out(c) for c in await lifecycle.list_campaigns(session)]


@api.post(
    "/campaigns",
    response_model=CampaignOut,
    status_code=201,
    responses=errors(400, 403, 409, 413, 422),
)
async def create_campaign(data: CampaignIn, session: SessionDep, auth: AuthDep) -> CampaignOut:
    """Create a draft campaign (editors)."""
    campaign = await lifecycle.create_campaign(session, data=data, actor=auth.staff)
    await session.commit()
    return _campaign_out(campaign)


@api.get("/campaigns/{campaign_id}", response_model=CampaignDetailOut, responses=READ)
async def get_campaign(
    campaign_id: IdPath, session: SessionDep, auth: AuthDep
) -> CampaignDetailOut:
    """A campaign with its texts and their versions."""
    campaign = await lifecycle.get_campaign(session, campaign_id=campaign_id)
    return CampaignDetailOut.model_validate(campaign)


@api.put("/campaigns/{campaign_id}", response_model=CampaignOut, responses=WRITE)
async def update_campaign(
    campaign_id: IdPath, data: CampaignIn, session: SessionDep, auth: AuthDep
) -> CampaignOut:
    """Replace a campaign's description and targets (editors)."""
    campaign = await lifecycle.update_campaign(
        session, campaign_id=campaign_id, data=data, actor=auth.staff
    )
    await session.commit()
    return _campaign_out(campaign)


@api.post("/campaigns/{campaign_id}/status", response_model=CampaignOut, responses=WRITE)
async def set_status(
    campaign_id: IdPath, data: StatusIn, session: SessionDep, auth: AuthDep
) -> CampaignOut:
    """Publish, pause or close a campaign (editors, admins)."""
    campaign = await lifecycle.set_campaign_status(
        session, campaign_id=campaign_id, status=data.status, actor=auth.staff
    )
    await session.commit()
    return _campaign_out(campaign)


@api.post(
    "/campaigns/{campaign_id}/texts", response_model=TextOut, status_code=201, responses=WRITE
)
async def create_text(
    campaign_id: IdPath, data: TextIn, session: SessionDep, auth: AuthDep
) -> TextOut:
    """A new text with its first version, a draft (editors)."""
    version = await texts.create_text(
        session,
        campaign_id=campaign_id,
        name=data.name,
        subject=data.subject,
        body=data.body,
        actor=auth.staff,
    )
    await session.commit()
    return TextOut.model_validate(await texts.get_text(session, text_id=version.text_id))


@api.get("/texts/{text_id}", response_model=TextOut, responses=READ)
async def get_text(text_id: IdPath, session: SessionDep, auth: AuthDep) -> TextOut:
    """A text with its version history."""
    return TextOut.model_validate(await texts.get_text(session, text_id=text_id))


@api.post("/texts/{text_id}/versions", response_model=VersionOut, status_code=201, responses=WRITE)
async def save_version(
    text_id: IdPath, data: VersionIn, session: SessionDep, auth: AuthDep
) -> VersionOut:
    """Save a new draft version of a text (editors)."""
    version = await texts.save_version(
        session, text_id=text_id, subject=data.subject, body=data.body, actor=auth.staff
    )
    await session.commit()
    return VersionOut.model_validate(version)


@api.get("/texts/{text_id}/diff", response_model=DiffOut, responses=READ)
async def diff(
    text_id: IdPath,
    session: SessionDep,
    auth: AuthDep,
    from_number: DiffFrom,
    to_number: DiffTo,
) -> DiffOut:
    """A unified diff between two versions of a text."""
    lines = await texts.diff_versions(
        session, text_id=text_id, from_number=from_number, to_number=to_number
    )
    return DiffOut(text_id=text_id, from_number=from_number, to_number=to_number, lines=lines)


@api.get("/versions/{version_id}", response_model=VersionOut, responses=READ)
async def get_version(version_id: IdPath, session: SessionDep, auth: AuthDep) -> VersionOut:
    """One version."""
    return VersionOut.model_validate(await texts.get_version(session, version_id=version_id))


@api.get(
    "/versions/{version_id}/preview", response_model=PreviewOut, responses=errors(404, 409, 422)
)
async def preview(
    version_id: IdPath, deputy_id: IdQuery, session: SessionDep, auth: AuthDep
) -> PreviewOut:
    """A version rendered for a deputy with sample citizen data."""
    version, deputy, subject, body = await variants.preview(
        session, version_id=version_id, deputy_id=deputy_id
    )
    return PreviewOut(version_id=version.id, deputy_id=deputy.id, subject=subject, body=body)


@api.post("/versions/{version_id}/submit", response_model=VersionOut, responses=ACTION)
async def submit(version_id: IdPath, session: SessionDep, auth: AuthDep) -> VersionOut:
    """Send a draft for review (editors)."""
    version = await vetting.submit_version(session, version_id=version_id, actor=auth.staff)
    await session.commit()
    return VersionOut.model_validate(version)


@api.post("/versions/{version_id}/approve", response_model=VersionOut, responses=WRITE)
async def approve(
    version_id: IdPath, session: SessionDep, auth: AuthDep, data: ReviewIn | None = None
) -> VersionOut:
    """Approve a version under review (lawyers other than its author)."""
    version = await vetting.approve_version(
        session, version_id=version_id, actor=auth.staff, comment=data.comment if data else ""
    )
    await session.commit()
    return VersionOut.model_validate(version)


@api.post("/versions/{version_id}/reject", response_model=VersionOut, responses=WRITE)
async def reject(
    version_id: IdPath, data: ReviewIn, session: SessionDep, auth: AuthDep
) -> VersionOut:
    """Reject a version under review, with a comment (lawyers other than its author)."""
    version = await vetting.reject_version(
        session, version_id=version_id, actor=auth.staff, comment=data.comment
    )
    await session.commit()
    return VersionOut.model_validate(version)


@api.post("/versions/{version_id}/withdraw", response_model=VersionOut, responses=WRITE)
async def withdraw(
    version_id: IdPath, data: ReviewIn, session: SessionDep, auth: AuthDep
) -> VersionOut:
    """Withdraw an approval, with a comment (lawyers): the version's letters are held."""
    version = await vetting.withdraw_approval(
        session, version_id=version_id, actor=auth.staff, comment=data.comment
    )
    await session.commit()
    return VersionOut.model_validate(version)


@api.post("/versions/{version_id}/held/{decision}", response_model=HeldLettersOut, responses=ACTION)
async def held_letters(
    version_id: IdPath,
    decision: DecisionPath,
    session: SessionDep,
    auth: AuthDep,
) -> HeldLettersOut:
    """Release (send as written) or cancel the held letters of a withdrawn version (lawyers)."""
    moved = await vetting.decide_held_letters(
        session, version_id=version_id, actor=auth.staff, release=decision == "release"
    )
    await session.commit()
    return HeldLettersOut(version_id=version_id, decision=decision, letters=moved)


@api.get("/review-queue", response_model=list[VersionOut])
async def list_review_queue(session: SessionDep, auth: AuthDep) -> list[VersionOut]:
    """Versions waiting for a lawyer, oldest first."""
    return [VersionOut.model_validate(v) for v in await vetting.review_queue(session)]
