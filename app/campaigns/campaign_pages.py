"""Staff pages for campaigns under /staff/campaigns: the list, the form to create or edit one,
its page, and its status change. Roles are enforced by the services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.campaigns import lifecycle
from app.campaigns.models import Campaign, CampaignStatus
from app.campaigns.schemas import CampaignIn
from app.campaigns.states import CAMPAIGN_TRANSITIONS
from app.campaigns.web import IdPath, rollback, see_other
from app.dependencies import SessionDep
from app.deputies import service as deputies_service
from app.deputies.models import LegislatureLevel
from app.errors import InvalidInput
from app.staff.web import AuthDep, form_model, staff_page

router = APIRouter(include_in_schema=False)


@router.get("/campaigns", response_class=HTMLResponse, name="campaigns_list")
async def campaigns_page(request: Request, session: SessionDep, auth: AuthDep) -> HTMLResponse:
    campaigns = await lifecycle.list_campaigns(session)
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


@router.get("/campaigns/new", response_class=HTMLResponse, name="campaign_new")
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


@router.post("/campaigns", response_class=HTMLResponse, name="campaign_create")
async def campaign_create(
    request: Request, session: SessionDep, auth: AuthDep, form: Annotated[CampaignForm, Depends()]
) -> Response:
    try:
        campaign = await lifecycle.create_campaign(session, data=form.parse(), actor=auth.staff)
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
    return see_other(request, "campaign_page", campaign_id=campaign.id)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse, name="campaign_page")
async def campaign_page(
    request: Request, session: SessionDep, auth: AuthDep, campaign_id: IdPath
) -> HTMLResponse:
    campaign = await lifecycle.get_campaign(session, campaign_id=campaign_id)
    approved = await lifecycle.approved_versions(session, campaign_id=campaign.id)
    targets = sorted(CAMPAIGN_TRANSITIONS[CampaignStatus(campaign.status)])
    return staff_page(
        request,
        auth,
        "campaigns/campaign.html",
        {"campaign": campaign, "approved": approved, "targets": targets},
    )


@router.get("/campaigns/{campaign_id}/edit", response_class=HTMLResponse, name="campaign_edit")
async def campaign_edit(
    request: Request, session: SessionDep, auth: AuthDep, campaign_id: IdPath
) -> HTMLResponse:
    campaign = await lifecycle.get_campaign(session, campaign_id=campaign_id)
    return await _campaign_form(
        request, session, auth, campaign=campaign, values=_form_values(campaign)
    )


@router.post("/campaigns/{campaign_id}", response_class=HTMLResponse, name="campaign_update")
async def campaign_update(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    campaign_id: IdPath,
    form: Annotated[CampaignForm, Depends()],
) -> Response:
    try:
        await lifecycle.update_campaign(
            session, campaign_id=campaign_id, data=form.parse(), actor=auth.staff
        )
    except InvalidInput as exc:
        await rollback(session, auth)
        campaign = await lifecycle.get_campaign(session, campaign_id=campaign_id)
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
    return see_other(request, "campaign_page", campaign_id=campaign_id)


@router.post("/campaigns/{campaign_id}/status", name="campaign_status")
async def campaign_status(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    campaign_id: IdPath,
    status: Annotated[CampaignStatus, Form()],
) -> Response:
    await lifecycle.set_campaign_status(
        session, campaign_id=campaign_id, status=status, actor=auth.staff
    )
    await session.commit()
    return see_other(request, "campaign_page", campaign_id=campaign_id)
