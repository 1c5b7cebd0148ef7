"""A submission and its confirmation as the citizen's pages and the JSON API both run them: the
submission saved with its confirmation e-mail (the worker woken to send it), and the
confirmation, which makes the letters, retried when a concurrent one wrote first."""

from __future__ import annotations

import asyncio

from fastapi import Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import i18n
from app.config import Settings
from app.db import begin_write
from app.i18n import gettext as _
from app.i18n import ngettext
from app.letters import confirmation, flow, mailer, saving, web
from app.letters.cache import IntakeCache, OpenCampaign
from app.letters.paths import path_for
from app.ratelimit import RateLimiter


def cache(request: Request) -> IntakeCache:
    """The process's short-lived snapshot of open campaigns (app.main)."""
    intake_cache: IntakeCache = request.app.state.intake_cache
    return intake_cache


async def submit(
    request: Request,
    settings: Settings,
    limiter: RateLimiter,
    *,
    campaign: OpenCampaign,
    region_code: str,
    form: web.SenderForm,
) -> flow.Submitted:
    """Count the submission against the limits, save it with its confirmation e-mail (in the
    request's language) and wake the worker that sends it."""
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
    confirm_url = base + path_for(request, "confirm_page", token=submitted.confirm_token)
    status_url = base + path_for(request, "status_page", token=submitted.status_token)
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


async def confirm(
    request: Request, session: AsyncSession, settings: Settings, token: str
) -> confirmation.Confirmed:
    """Confirm the submission of this link: its letters made and committed."""
    # The letters are rendered and built first, outside the write transaction (on SQLite the
    # write lock is the whole database's); confirm() checks what they were built from inside it.
    intake_cache = cache(request)
    for attempt in range(3):
        try:
            prepared = await confirmation.prepare(
                session, token=token, settings=settings, cache=intake_cache
            )
            await begin_write(session)  # on SQLite, ends the read transaction first
            # confirm() commits (its writes and COMMIT are one trip on SQLite).
            return await confirmation.confirm(
                session, prepared=prepared, settings=settings, cache=intake_cache
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


def nothing_new(confirmed: confirmation.Confirmed) -> bool:
    """Every deputy chosen had a letter from this address in the campaign already."""
    return not confirmed.letter_ids and bool(confirmed.skipped_deputy_ids)
