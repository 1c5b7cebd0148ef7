"""The citizen's flow as JSON under /api/v1, for partner sites: the open campaigns, a
submission, its confirmation, and the status link's view with cancel and erase."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.exceptions import RequestValidationError

from app import i18n
from app.db import begin_write
from app.dependencies import PlainSessionDep, RateLimiterDep, SessionDep, SettingsDep
from app.i18n import gettext as _
from app.letters import altcha_check, flow, intake, open_campaigns, web
from app.letters.models import Letter, LetterStatus
from app.letters.paths import SlugPath, TokenPath
from app.letters.schemas import (
    CancelIn,
    ConfirmationIn,
    LetterStatusOut,
    OpenCampaignOut,
    StatusOut,
    SubmissionIn,
    SubmissionOut,
)
from app.letters.submissions import SubmissionStatus
from app.openapi import errors

api = APIRouter(prefix="/api/v1", tags=["citizens"], responses=errors(503))


def _letter_out(letter: Letter) -> LetterStatusOut:
    status = LetterStatus(letter.status)
    return LetterStatusOut(
        id=letter.id,
        deputy_id=letter.deputy_id,
        deputy_name=letter.deputy.full_name,
        status=flow.SHOWN_STATUS[status],
        cancellable=status in flow.CANCELLABLE,
    )


def _status_out(status: flow.Status) -> StatusOut:
    return StatusOut(
        submission=status.submission.status,
        campaign=status.campaign.title,
        letters=[_letter_out(letter) for letter in status.letters],
        skipped_deputy_ids=status.submission.skipped_deputy_ids,
    )


@api.get("/campaigns", response_model=list[OpenCampaignOut])
async def api_campaigns(session: SessionDep) -> list[OpenCampaignOut]:
    """The campaigns open for letters now."""
    return [
        OpenCampaignOut(
            slug=c.slug,
            title=c.title,
            description=c.description,
            requires_address=c.requires_address,
        )
        for c in await open_campaigns.list_open_campaigns(session)
    ]


@api.post(
    "/campaigns/{slug}/submissions",
    response_model=SubmissionOut,
    status_code=202,
    responses=errors(400, 404, 409, 410, 413, 422, 429),
)
async def api_submit(
    request: Request,
    slug: SlugPath,
    data: Annotated[SubmissionIn, Body()],
    session: PlainSessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> SubmissionOut:
    """Submit letters: an e-mail with a confirmation link goes to the citizen; the letters are
    created when it is followed (POST /confirmations)."""
    campaign, deputy_ids = await intake.cache(request).campaign_and_deputies(
        session, slug=slug, region_code=data.region_code
    )
    form = web.validate_sender(
        values=data.model_dump(include={"full_name", "email", "locality", "postal_address"}),
        deputy_ids=data.deputy_ids,
        allowed_deputy_ids=set(deputy_ids),
        consent=data.consent,
        reply_to=data.reply_to,
        requires_address=campaign.requires_address,
    )
    if form.sender is None:
        raise RequestValidationError(
            [
                {"loc": ("body", "deputy_ids" if name == "deputies" else name), "msg": message}
                for name, message in form.errors.items()
            ]
        )
    if settings.altcha:
        await altcha_check.verify(data.altcha, settings=settings, limiter=limiter)
    await session.rollback()  # ends a stale snapshot's read: the write has a connection of its own
    token = None
    if data.language:
        token = i18n.current_language.set(data.language)
    try:
        submitted = await intake.submit(
            request,
            settings,
            limiter,
            campaign=campaign,
            region_code=data.region_code.upper(),
            form=form,
        )
    finally:
        if token is not None:
            i18n.current_language.reset(token)
    return SubmissionOut(expires_at=submitted.expires_at, deputy_ids=submitted.deputy_ids)


@api.post(
    "/confirmations",
    response_model=StatusOut,
    status_code=201,
    responses=errors(
        *(400, 404, 409, 410, 413, 422, 429),
        described={
            409: "The link was used already, or every deputy chosen was written to already",
            410: "The link has expired",
        },
    ),
)
async def api_confirm(
    request: Request,
    data: ConfirmationIn,
    session: PlainSessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> StatusOut:
    """Confirm a submission with the token of its e-mail link: the letters are created."""
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    confirmed = await intake.confirm(request, session, settings, data.token)
    if intake.nothing_new(confirmed):  # (the link is used: the status link shows the submission)
        raise flow.AlreadyWritten(
            _("You had already written to these deputies in this campaign: no new letter was sent.")
        )
    # The letters were just made, all queued: shown from what the confirmation holds.
    queued = LetterStatus.queued
    return StatusOut(
        submission=SubmissionStatus.confirmed,
        campaign=confirmed.campaign_title,
        letters=[
            LetterStatusOut(
                id=letter_id,
                deputy_id=deputy.id,
                deputy_name=deputy.full_name,
                status=flow.SHOWN_STATUS[queued],
                cancellable=queued in flow.CANCELLABLE,
            )
            for letter_id, deputy in zip(confirmed.letter_ids, confirmed.deputies, strict=True)
        ],
        skipped_deputy_ids=confirmed.skipped_deputy_ids,
    )


@api.get("/status/{token}", response_model=StatusOut, responses=errors(404, 422, 429))
async def api_status(
    request: Request,
    token: TokenPath,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> StatusOut:
    """The submission's letters and their state (the token of the status link)."""
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    return _status_out(await flow.get_status(session, token=token))


@api.post(
    "/status/{token}/cancel",
    response_model=StatusOut,
    responses=errors(400, 404, 409, 413, 422, 429),
)
async def api_cancel(
    request: Request,
    token: TokenPath,
    data: CancelIn,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> StatusOut:
    """Cancel letters not yet sent (those given, or all)."""
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    await begin_write(session)
    await flow.cancel(session, token=token, letter_ids=data.letter_ids)
    await session.commit()
    return _status_out(await flow.get_status(session, token=token))


@api.post("/status/{token}/erase", response_model=StatusOut, responses=errors(404, 422, 429))
async def api_erase(
    request: Request,
    token: TokenPath,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> StatusOut:
    """Cancel what is not sent and erase the citizen's personal data."""
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    await begin_write(session)
    await flow.erase(session, token=token)
    await session.commit()
    return _status_out(await flow.get_status(session, token=token))
