"""The citizen's pages, server-rendered and usable without JavaScript: the open campaigns, the
sender's form with its preview and submission, the confirmation link, and the status page with
cancel and erase."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from app.campaigns.models import Campaign
from app.config import Settings
from app.db import begin_write
from app.dependencies import PlainSessionDep, RateLimiterDep, SessionDep, SettingsDep
from app.deputies import service as deputies_service
from app.errors import InvalidInput, NotFound
from app.letters import altcha_check, confirmation, flow, intake, open_campaigns, web
from app.letters.cache import OpenCampaign
from app.letters.paths import CodePath, SlugPath, TokenPath, redirect
from app.templating import templates

pages = APIRouter(include_in_schema=False)


class LettersSent(Protocol):
    """How many letters were sent, in all or in one campaign."""

    async def __call__(self, session: AsyncSession, *, campaign_id: int | None = None) -> int: ...


def _letters_sent(request: Request) -> LettersSent:
    # The public counter is kept by statistics, a floor above letters: app.main hands it over.
    counter: LettersSent = request.app.state.letters_sent
    return counter


@pages.get("/", response_class=HTMLResponse, name="home")
async def home(request: Request, session: SessionDep) -> HTMLResponse:
    campaigns = await open_campaigns.list_open_campaigns(session)
    total = await _letters_sent(request)(session)
    return templates.TemplateResponse(
        request, "letters/home.html", {"campaigns": campaigns, "total": total}
    )


@pages.get("/campaigns/{slug}", response_class=HTMLResponse, name="public_campaign")
async def campaign_page(request: Request, slug: SlugPath, session: SessionDep) -> HTMLResponse:
    campaign = await open_campaigns.get_open_campaign(session, slug=slug)
    subject, body = await open_campaigns.campaign_text(session, campaign=campaign)
    regions = await open_campaigns.campaign_regions(session, campaign=campaign)
    sent = await _letters_sent(request)(session, campaign_id=campaign.id)
    return templates.TemplateResponse(
        request,
        "letters/campaign.html",
        {"campaign": campaign, "subject": subject, "body": body, "regions": regions, "sent": sent},
    )


# --- the sender's form -------------------------------------------------------------------------


async def _form_page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    *,
    slug: str,
    code: str,
    form: web.SenderForm | None = None,
    letters: list[open_campaigns.PreviewLetter] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    campaign = await open_campaigns.get_open_campaign(session, slug=slug)
    region, deputies = await open_campaigns.campaign_deputies(
        session, campaign=campaign, region_code=code
    )
    if form is None:
        form = web.SenderForm(
            values={}, deputy_ids=[d.id for d in deputies], consent=False, reply_to=False
        )
    return templates.TemplateResponse(
        request,
        "letters/preview.html" if letters is not None else "letters/form.html",
        {
            "campaign": campaign,
            "region": region,
            "deputies": deputies,
            "form": form,
            "letters": letters,
            "honeypot": web.HONEYPOT,
            "altcha": settings.altcha,
        },
        status_code=status_code,
    )


@pages.get("/campaigns/{slug}/{code}", response_class=HTMLResponse, name="campaign_form")
async def form_page(
    request: Request, slug: SlugPath, code: CodePath, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    return await _form_page(request, session, settings, slug=slug, code=code)


def _validate_form(
    raw: FormData, *, deputy_ids: list[int], requires_address: bool
) -> tuple[web.SenderForm, bool]:
    values = {k: v for k, v in raw.items() if isinstance(v, str)}
    form = web.validate_sender(
        values=values,
        deputy_ids=raw.getlist("deputy"),
        allowed_deputy_ids=set(deputy_ids),
        consent=web.ticked(raw.get("consent")),
        reply_to=web.ticked(raw.get("reply_to")),
        requires_address=requires_address,
    )
    bot = bool(str(raw.get(web.HONEYPOT, "")).strip())
    return form, bot


async def _read_form(
    request: Request, session: AsyncSession, slug: str, code: str
) -> tuple[Campaign, web.SenderForm, bool]:
    raw = await web.read_form(request)
    campaign = await open_campaigns.get_open_campaign(session, slug=slug)
    deputy_ids = await open_campaigns.campaign_deputy_ids(
        session, campaign=campaign, region_code=code
    )
    form, bot = _validate_form(
        raw, deputy_ids=deputy_ids, requires_address=campaign.requires_address
    )
    return campaign, form, bot


async def _read_submit_form(
    request: Request, slug: str, code: str
) -> tuple[OpenCampaign, web.SenderForm, bool, FormData]:
    """As _read_form, the campaign and its deputies from the process's short-lived snapshot (a
    session only when it is stale); the raw fields too."""
    raw = await web.read_form(request)
    cache = intake.cache(request)
    held = cache.held_campaign_and_deputies(slug=slug, region_code=code)
    if held is None:
        async with request.app.state.sessionmaker() as session:
            held = await cache.campaign_and_deputies(session, slug=slug, region_code=code)
    campaign, deputy_ids = held
    form, bot = _validate_form(
        raw, deputy_ids=deputy_ids, requires_address=campaign.requires_address
    )
    return campaign, form, bot, raw


@pages.post(
    "/campaigns/{slug}/{code}/preview", response_class=HTMLResponse, name="campaign_preview"
)
async def preview_page(
    request: Request, slug: SlugPath, code: CodePath, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    campaign, form, _bot = await _read_form(request, session, slug, code)
    if form.sender is None:
        return await _form_page(
            request, session, settings, slug=slug, code=code, form=form, status_code=422
        )
    # Deputies this address wrote to before are not marked: see flow.submit.
    _region, deputies = await open_campaigns.campaign_deputies(
        session, campaign=campaign, region_code=code
    )
    chosen = [d for d in deputies if d.id in set(form.deputy_ids)]
    letters = await open_campaigns.preview_letters(
        session, campaign=campaign, deputies=chosen, sender=form.sender
    )
    return await _form_page(
        request, session, settings, slug=slug, code=code, form=form, letters=letters
    )


@pages.post("/campaigns/{slug}/{code}/submit", name="campaign_submit")
async def submit_page(
    request: Request,
    slug: SlugPath,
    code: CodePath,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> Response:
    """The sender's form, posted: the most frequent request, so it opens a session only if the
    campaign's snapshot is stale or the form comes back with errors."""
    campaign, form, bot, raw = await _read_submit_form(request, slug, code)
    if bot:
        # Said to be done, so that the bot learns nothing; nothing is stored or sent.
        return redirect(request, "check_email")
    if form.sender is not None and settings.altcha:
        try:
            payload = raw.get("altcha")
            await altcha_check.verify(
                payload if isinstance(payload, str) else None, settings=settings, limiter=limiter
            )
        except InvalidInput as exc:
            form.errors["altcha"] = exc.localized()
            form.sender = None
    if form.sender is None:
        async with request.app.state.sessionmaker() as session:
            return await _form_page(
                request, session, settings, slug=slug, code=code, form=form, status_code=422
            )
    await intake.submit(
        request, settings, limiter, campaign=campaign, region_code=code.upper(), form=form
    )
    return redirect(request, "check_email")


@pages.get("/check-email", response_class=HTMLResponse, name="check_email")
async def check_email(request: Request, settings: SettingsDep) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "letters/check_email.html", {"hours": int(settings.confirm_hours)}
    )


@pages.get("/altcha/challenge", name="altcha_challenge")
async def altcha_challenge(settings: SettingsDep) -> JSONResponse:
    """A proof-of-work challenge for the form's widget (only when ALTCHA is switched on)."""
    if not settings.altcha:
        raise NotFound("Not found.")
    return JSONResponse(altcha_check.challenge(settings), headers={"cache-control": "no-store"})


# --- the links: confirmation and status --------------------------------------------------------


@pages.get("/confirm/{token}", response_class=HTMLResponse, name="confirm_page")
async def confirm_page(
    request: Request,
    token: TokenPath,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> HTMLResponse:
    # A GET changes nothing: mail scanners open links. The button below confirms.
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    submission = await confirmation.pending(session, token=token, settings=settings)
    campaign = await session.get(Campaign, submission.campaign_id)
    return templates.TemplateResponse(
        request,
        "letters/confirm.html",
        {"token": token, "campaign": campaign, "count": len(submission.deputy_ids)},
    )


@pages.post("/confirm/{token}", response_class=HTMLResponse, name="confirm_submit")
async def confirm_submit(
    request: Request,
    token: TokenPath,
    session: PlainSessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> HTMLResponse:
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    confirmed = await intake.confirm(request, session, settings, token)
    deputies = {
        d.id: d
        for d in await deputies_service.get_deputies(session, ids=confirmed.skipped_deputy_ids)
    }
    return templates.TemplateResponse(
        request,
        "letters/confirmed.html",
        {
            "count": len(confirmed.letter_ids),
            "skipped": [deputies[i] for i in confirmed.skipped_deputy_ids if i in deputies],
            "nothing_new": intake.nothing_new(confirmed),
        },
        status_code=409 if intake.nothing_new(confirmed) else 200,
    )


@pages.get("/status/{token}", response_class=HTMLResponse, name="status_page")
async def status_page(
    request: Request,
    token: TokenPath,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> HTMLResponse:
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    status = await flow.get_status(session, token=token)
    return templates.TemplateResponse(
        request,
        "letters/status.html",
        {
            "token": token,
            "status": status,
            "shown": flow.SHOWN_STATUS,
            "cancellable": flow.CANCELLABLE,
        },
    )


@pages.post("/status/{token}/cancel", name="status_cancel")
async def status_cancel(
    request: Request,
    token: TokenPath,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> Response:
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    raw = await web.read_form(request)
    every = web.ticked(raw.get("all"))
    if every is None:
        raise InvalidInput("Tick the box to cancel every letter not yet sent.", field="all")
    ids = None if every else web._ids(raw.getlist("letter"))
    if not every and ids is None:
        raise InvalidInput("Choose the letters to cancel by their boxes.", field="letter")
    await begin_write(session)
    await flow.cancel(session, token=token, letter_ids=ids)
    await session.commit()
    return redirect(request, "status_page", token=token)


@pages.post("/status/{token}/erase", name="status_erase")
async def status_erase(
    request: Request,
    token: TokenPath,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> Response:
    await web.limit_links(limiter, settings, address=web.client_address(request, settings))
    raw = await web.read_form(request)
    sure = web.ticked(raw.get("sure"))
    if sure is None:
        raise InvalidInput("Tick the box to confirm the erasure.", field="sure")
    if not sure:
        return redirect(request, "status_page", token=token)
    await begin_write(session)
    await flow.erase(session, token=token)
    await session.commit()
    return redirect(request, "status_page", token=token)
