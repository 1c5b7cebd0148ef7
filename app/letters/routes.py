"""The citizen's pages (server-rendered, no JavaScript needed) and the same flow as JSON under
/api/v1 for partner sites."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.routing import Route

from app import i18n
from app.campaigns.models import Campaign
from app.config import Settings
from app.db import begin_write
from app.dependencies import PlainSessionDep, RateLimiterDep, SessionDep, SettingsDep
from app.deputies import service as deputies_service
from app.errors import InvalidInput, NotFound
from app.i18n import gettext as _
from app.i18n import ngettext
from app.letters import altcha_check, confirmation, flow, mailer, saving, web
from app.letters.cache import IntakeCache, OpenCampaign
from app.letters.models import LetterStatus
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
from app.ratelimit import RateLimiter
from app.stats import service as stats_service
from app.templating import templates

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["citizens"])

SLUG_PATTERN, SLUG_MAX = r"^[A-Za-z0-9_-]+$", 80
CODE_PATTERN, CODE_MAX = r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$", 6
SlugPath = Annotated[str, Path(max_length=SLUG_MAX, pattern=SLUG_PATTERN)]
CodePath = Annotated[str, Path(max_length=CODE_MAX, pattern=CODE_PATTERN)]
_PATH_RULES = {
    "slug": (re.compile(SLUG_PATTERN), SLUG_MAX),
    "code": (re.compile(CODE_PATTERN), CODE_MAX),
}
TokenPath = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]


# Looking a route up by name walks every route of the app (about a hundred, some 0.1 ms a time
# here): each of these pages' paths is looked up once per process, with markers for its
# parameters, then filled in (string parameters, inserted unescaped as url_path_for does).
_PATHS: dict[tuple[str, tuple[str, ...]], str] = {}


def _path(request: Request, name: str, **params: str) -> str:
    key = (name, tuple(sorted(params)))
    path = _PATHS.get(key)
    if path is None:
        markers = {k: f"\x00{k}\x00" for k in params}
        path = _PATHS[key] = str(request.app.url_path_for(name, **markers))
    for k, value in params.items():
        path = path.replace(f"\x00{k}\x00", value)
    return path


def _redirect(request: Request, name: str, **params: str) -> RedirectResponse:
    return RedirectResponse(_path(request, name, **params), status_code=303)


# --- shared steps ------------------------------------------------------------------------------


async def _do_submit(
    request: Request,
    settings: Settings,
    limiter: Any,
    *,
    campaign: OpenCampaign,
    region_code: str,
    form: web.SenderForm,
) -> flow.Submitted:
    assert form.sender is not None
    base = web.public_base(request, settings)
    await web.limit_submission(
        limiter,
        settings,
        address=web.client_address(request, settings),
        email=form.sender.email,
    )
    submitted = flow.submit(
        campaign=campaign,
        region_code=region_code,
        deputy_ids=form.deputy_ids,
        sender=form.sender,
        reply_to=form.reply_to,
        language=i18n.current_language.get(),
        settings=settings,
    )
    count = len(submitted.deputy_ids)
    confirm_url = base + _path(request, "confirm_page", token=submitted.confirm_token)
    status_url = base + _path(request, "status_page", token=submitted.status_token)
    hours = int(settings.confirm_hours)
    body = "\n\n".join(
        [
            ngettext(
                "You asked to send %(num)d letter to deputies in the campaign “%(title)s”.",
                "You asked to send %(num)d letters to deputies in the campaign “%(title)s”.",
                count,
            )
            % {"num": count, "title": campaign.title},
            ngettext(
                "To send it, open this link within %(num)d hour:",
                "To send them, open this link within %(num)d hours:",
                hours,
            )
            % {"num": hours}
            + "\n"
            + confirm_url,
            _("Follow your letters, cancel them or erase your data here (keep this link private):")
            + "\n"
            + status_url,
            _(
                "If you did not ask for this, ignore this message: nothing will be sent, and "
                "the data is deleted when the link expires."
            ),
        ]
    )
    email = mailer.confirmation_row(
        to=form.sender.email,
        subject=_("Confirm your letters to deputies"),
        body=body + "\n",
        expires_at=submitted.expires_at,
    )
    # Everything is ready before the write, which only inserts. The e-mail goes to the outbox
    # with the submission or not at all; the delivery worker sends it (woken at once when it
    # runs in this process).
    await saving.save(request.app.state.engine, submitted=submitted, email=email)
    wake: asyncio.Event | None = getattr(request.app.state, "outbox_wake", None)
    if wake is not None:
        wake.set()
    return submitted


async def _do_confirm(
    request: Request, session: AsyncSession, settings: Settings, token: str
) -> confirmation.Confirmed:
    # The letters are rendered and built first, outside the write transaction (on SQLite the
    # write lock is the whole database's); confirm() checks what they were built from inside it.
    cache = _cache(request)
    for attempt in range(3):
        try:
            prepared = await confirmation.prepare(
                session, token=token, settings=settings, cache=cache
            )
            await begin_write(session)  # on SQLite, ends the read transaction first
            # confirm() commits (its writes and COMMIT are one trip on SQLite).
            return await confirmation.confirm(
                session, prepared=prepared, settings=settings, cache=cache
            )
        except IntegrityError:
            # A concurrent confirmation from the same address wrote to one of these deputies
            # first: start again, the second pass skips that deputy.
            await session.rollback()
            if attempt == 2:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
        except BaseException:
            await session.rollback()
            raise
    raise AssertionError("unreachable")


def _letter_out(letter: Any) -> LetterStatusOut:
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


# --- pages -------------------------------------------------------------------------------------


@pages.get("/", response_class=HTMLResponse, name="home")
async def home(request: Request, session: SessionDep) -> HTMLResponse:
    campaigns = await flow.list_open_campaigns(session)
    total = await stats_service.letters_sent(session)
    return templates.TemplateResponse(
        request, "letters/home.html", {"campaigns": campaigns, "total": total}
    )


@pages.get("/campaigns/{slug}", response_class=HTMLResponse, name="public_campaign")
async def campaign_page(request: Request, slug: SlugPath, session: SessionDep) -> HTMLResponse:
    campaign = await flow.get_open_campaign(session, slug=slug)
    subject, body = await flow.campaign_text(session, campaign=campaign)
    regions = await flow.campaign_regions(session, campaign=campaign)
    sent = await stats_service.letters_sent(session, campaign_id=campaign.id)
    return templates.TemplateResponse(
        request,
        "letters/campaign.html",
        {"campaign": campaign, "subject": subject, "body": body, "regions": regions, "sent": sent},
    )


async def _form_page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    *,
    slug: str,
    code: str,
    form: web.SenderForm | None = None,
    letters: list[flow.PreviewLetter] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    campaign = await flow.get_open_campaign(session, slug=slug)
    region, deputies = await flow.campaign_deputies(session, campaign=campaign, region_code=code)
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
        consent=raw.get("consent") == "yes",
        reply_to=raw.get("reply_to") == "yes",
        requires_address=requires_address,
    )
    bot = bool(str(raw.get(web.HONEYPOT, "")).strip())
    return form, bot


async def _read_form(
    request: Request, session: AsyncSession, slug: str, code: str
) -> tuple[Campaign, web.SenderForm, bool]:
    raw = await web.read_form(request)
    campaign = await flow.get_open_campaign(session, slug=slug)
    deputy_ids = await flow.campaign_deputy_ids(session, campaign=campaign, region_code=code)
    form, bot = _validate_form(
        raw, deputy_ids=deputy_ids, requires_address=campaign.requires_address
    )
    return campaign, form, bot


def _cache(request: Request) -> IntakeCache:
    cache: IntakeCache = request.app.state.intake_cache
    return cache


async def _read_submit_form(
    request: Request, slug: str, code: str
) -> tuple[OpenCampaign, web.SenderForm, bool, FormData]:
    """As _read_form, the campaign and its deputies from the process's short-lived snapshot (a
    session only when it is stale); the raw fields too."""
    raw = await web.read_form(request)
    cache = _cache(request)
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
    _region, deputies = await flow.campaign_deputies(session, campaign=campaign, region_code=code)
    chosen = [d for d in deputies if d.id in set(form.deputy_ids)]
    letters = await flow.preview_letters(
        session, campaign=campaign, deputies=chosen, sender=form.sender
    )
    return await _form_page(
        request, session, settings, slug=slug, code=code, form=form, letters=letters
    )


def _submit_path(request: Request) -> tuple[str, str]:
    """The submit route's slug and region code, checked as SlugPath and CodePath check them
    (422 naming the parameter, as FastAPI answers on the other routes)."""
    values, errors = [], []
    for name, (pattern, max_length) in _PATH_RULES.items():
        value: str = request.path_params[name]
        values.append(value)
        if len(value) > max_length:
            kind, message = "string_too_long", f"String should have at most {max_length} characters"
        elif not pattern.fullmatch(value):  # as pydantic: no newline before the end
            kind, message = (
                "string_pattern_mismatch",
                f"String should match pattern '{pattern.pattern}'",
            )
        else:
            continue
        errors.append({"loc": ("path", name), "msg": message, "type": kind})
    if errors:
        raise RequestValidationError(errors)
    return values[0], values[1]


async def submit_page(request: Request) -> Response:
    """The sender's form, posted: the most frequent request, so a plain Starlette route, the
    app's first (app.main). FastAPI's dependencies (a session, the settings, the limiter), its
    checks of the path, its matching of the routes before this one and a session opened for
    nothing cost about 0.4 ms of CPU per submission, a third of what is left (bench/README.md,
    seventh round). The path is checked here as FastAPI would, and a session is opened only if
    the campaign's snapshot is stale or the form comes back with errors."""
    slug, code = _submit_path(request)
    settings: Settings = request.app.state.settings
    limiter: RateLimiter = request.app.state.rate_limiter
    campaign, form, bot, raw = await _read_submit_form(request, slug, code)
    if bot:
        # Said to be done, so that the bot learns nothing; nothing is stored or sent.
        return _redirect(request, "check_email")
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
    await _do_submit(
        request, settings, limiter, campaign=campaign, region_code=code.upper(), form=form
    )
    return _redirect(request, "check_email")


# Not in `pages`: app.main puts it first of all the app's routes, which are tried in order.
submit_route = Route(
    "/campaigns/{slug}/{code}/submit", submit_page, methods=["POST"], name="campaign_submit"
)


@pages.get("/check-email", response_class=HTMLResponse, name="check_email")
async def check_email(request: Request, settings: SettingsDep) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "letters/check_email.html", {"hours": int(settings.confirm_hours)}
    )


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
    confirmed = await _do_confirm(request, session, settings, token)
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
            "nothing_new": _nothing_new(confirmed),
        },
        status_code=409 if _nothing_new(confirmed) else 200,
    )


def _nothing_new(confirmed: confirmation.Confirmed) -> bool:
    """Every deputy chosen had a letter from this address in the campaign already."""
    return not confirmed.letter_ids and bool(confirmed.skipped_deputy_ids)


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
    ids = None if raw.get("all") == "yes" else web._ids(raw.getlist("letter"))
    await begin_write(session)
    await flow.cancel(session, token=token, letter_ids=ids if ids is not None else [])
    await session.commit()
    return _redirect(request, "status_page", token=token)


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
    if raw.get("sure") != "yes":
        return _redirect(request, "status_page", token=token)
    await begin_write(session)
    await flow.erase(session, token=token)
    await session.commit()
    return _redirect(request, "status_page", token=token)


@pages.get("/altcha/challenge", name="altcha_challenge")
async def altcha_challenge(settings: SettingsDep) -> JSONResponse:
    """A proof-of-work challenge for the form's widget (only when ALTCHA is switched on)."""
    if not settings.altcha:
        raise NotFound("Not found.")
    return JSONResponse(altcha_check.challenge(settings), headers={"cache-control": "no-store"})


# --- JSON API ----------------------------------------------------------------------------------


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
        for c in await flow.list_open_campaigns(session)
    ]


@api.post(
    "/campaigns/{slug}/submissions",
    response_model=SubmissionOut,
    status_code=202,
    responses={429: {"description": "Rate limit"}},
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
    campaign, deputy_ids = await _cache(request).campaign_and_deputies(
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
        submitted = await _do_submit(
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
    responses={
        409: {"description": "Link used, or every deputy chosen already written to"},
        410: {"description": "Link expired"},
    },
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
    confirmed = await _do_confirm(request, session, settings, data.token)
    if _nothing_new(confirmed):  # (the link is used: the status link shows the submission)
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


@api.get("/status/{token}", response_model=StatusOut)
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


@api.post("/status/{token}/cancel", response_model=StatusOut)
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


@api.post("/status/{token}/erase", response_model=StatusOut)
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
