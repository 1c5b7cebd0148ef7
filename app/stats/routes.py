"""Statistics routes: the public counter (JSON), the analysts' dashboard with its SVG charts and
exports (pages under /staff/stats), and the same figures as JSON under /api/v1/staff/stats.

Only `analyst` and `admin` see the dashboard, the charts and the exports. Nothing here reads a
sender's data: every figure comes from the counters, except the distinct-sender counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.campaigns.models import Campaign
from app.dependencies import SessionDep
from app.deputies.models import Region
from app.errors import InvalidInput, NotFound
from app.i18n import current_language
from app.i18n import gettext as _
from app.staff.models import Role
from app.staff.web import Auth, role, staff_page
from app.stats import aggregates, charts, export, figures, filters, public
from app.stats.schemas import (
    STATUSES,
    CountsOut,
    ExportFormat,
    PublicTotalOut,
    StatsFilter,
    SummaryOut,
    parse_filter,
)
from app.text import ONE_LINE

public_api = APIRouter(prefix="/api/v1/stats", tags=["statistics"])
api = APIRouter(prefix="/api/v1/staff/stats", tags=["staff: statistics"])
pages = APIRouter(prefix="/staff/stats", include_in_schema=False)

AnalystDep = Annotated[Auth, role(Role.analyst, Role.admin)]
PUBLIC_MAX_AGE = 60
CHART_CSP = "default-src 'none'; frame-ancestors 'none'"
# Every parameter passes app.text's gate first (a NUL in `?campaign=` was a 500 on PostgreSQL).
SlugPath = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$"), ONE_LINE]
ChartPath = Annotated[str, Path(max_length=20), ONE_LINE]
CampaignQuery = Annotated[str | None, Query(max_length=80, description="Campaign slug"), ONE_LINE]
RegionQuery = Annotated[
    str | None, Query(max_length=16, description="Region code, e.g. RU-MOW"), ONE_LINE
]
DateQuery = Annotated[str | None, Query(max_length=10, description="UTC day, YYYY-MM-DD"), ONE_LINE]


async def _scope(
    session: AsyncSession,
    campaign: str | None,
    region: str | None,
    since: str | None,
    until: str | None,
) -> filters.Scope:
    return await filters.resolve(session, filter=parse_filter(campaign, region, since, until))


def _query(f: StatsFilter) -> str:
    values = {k: v for k, v in f.model_dump(mode="json").items() if v}
    return "?" + urlencode(values) if values else ""


def _out(counts: list[figures.Counts], *, english: bool = False) -> list[CountsOut]:
    return [
        CountsOut(
            key=c.key,
            label=(c.label_en or c.label) if english else c.label,
            counts=c.counts,
            total=c.total,
            senders=c.senders,
        )
        for c in counts
    ]


def status_labels() -> dict[str, str]:
    return {
        "queued": _("Queued"),
        "sending": _("Sending"),
        "sent": _("Sent"),
        "deferred": _("Deferred"),
        "failed": _("Failed"),
        "cancelled": _("Cancelled"),
        "held": _("Held"),
        "other": _("Not sent (yet)"),
    }


# --- public ------------------------------------------------------------------------------------


def _public(response: Response) -> None:
    # Partner sites may show the counter: cacheable briefly, readable from any origin.
    response.headers["Cache-Control"] = f"public, max-age={PUBLIC_MAX_AGE}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"


@public_api.get("/public", response_model=PublicTotalOut)
async def public_total(session: SessionDep, response: Response) -> PublicTotalOut:
    """Letters sent through the platform (cached for up to a minute)."""
    _public(response)
    return PublicTotalOut(letters_sent=await public.letters_sent(session))


@public_api.get("/public/{slug}", response_model=PublicTotalOut)
async def public_campaign_total(
    slug: SlugPath, session: SessionDep, response: Response
) -> PublicTotalOut:
    """Letters sent in one published (or paused or closed) campaign."""
    campaign = await public.public_campaign(session, slug=slug)
    _public(response)
    sent = await public.letters_sent(session, campaign_id=campaign.id)
    return PublicTotalOut(letters_sent=sent, campaign=campaign.slug)


# --- staff: JSON -------------------------------------------------------------------------------


async def _summary(
    session: AsyncSession, scope: filters.Scope, *, english: bool = False
) -> SummaryOut:
    totals = await figures.totals(session, scope=scope)
    return SummaryOut(
        filter=scope.filter,
        totals=totals,
        total=sum(totals.values()),
        by_campaign=_out(await figures.by_campaign(session, scope=scope)),
        by_region=_out(await figures.by_region(session, scope=scope), english=english),
        by_legislature=_out(await figures.by_legislature(session, scope=scope), english=english),
        by_day=_out(await figures.by_day(session, scope=scope)),
        by_domain=_out(await figures.by_domain(session, scope=scope)),
        top_deputies=_out(await figures.top_deputies(session, scope=scope)),
    )


@api.get("", response_model=SummaryOut)
async def summary(
    session: SessionDep,
    auth: AnalystDep,
    campaign: CampaignQuery = None,
    region: RegionQuery = None,
    since: DateQuery = None,
    until: DateQuery = None,
) -> SummaryOut:
    """Letters by status, campaign (with distinct senders), region, legislature, UTC day,
    recipient domain and the top deputies, under the filter."""
    return await _summary(session, await _scope(session, campaign, region, since, until))


def _export_response(
    request: Request, fmt: ExportFormat, scope: filters.Scope
) -> StreamingResponse:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker

    async def body() -> AsyncIterator[bytes]:
        # The response outlives the request's session: the stream opens its own.
        async with sessionmaker() as session:
            batches = aggregates.export_rows(session, scope=scope)
            async for chunk in export.chunks(fmt, batches):
                yield chunk

    name = export.filename(fmt)
    return StreamingResponse(
        body(),
        media_type=export.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@api.get("/export")
async def export_api(
    request: Request,
    session: SessionDep,
    auth: AnalystDep,
    format: Annotated[ExportFormat, Query()] = ExportFormat.csv,
    campaign: CampaignQuery = None,
    region: RegionQuery = None,
    since: DateQuery = None,
    until: DateQuery = None,
) -> StreamingResponse:
    """Aggregates by UTC day, campaign, region, legislature, deputy and recipient domain, with
    letters by status: CSV, XLSX or JSON, streamed. Never a sender's data."""
    scope = await _scope(session, campaign, region, since, until)
    return _export_response(request, format, scope)


# --- staff: pages ------------------------------------------------------------------------------


async def _choices(session: AsyncSession) -> dict[str, Any]:
    campaigns = (await session.execute(select(Campaign.slug, Campaign.title))).all()
    regions = (await session.execute(select(Region.code, Region.name_ru, Region.name_en))).all()
    english = current_language.get() == "en"
    return {
        "campaigns": sorted((slug, title) for slug, title in campaigns),
        "regions": sorted((code, en if english else ru) for code, ru, en in regions),
    }


@pages.get("", response_class=HTMLResponse, name="stats_dashboard")
async def dashboard(
    request: Request,
    session: SessionDep,
    auth: AnalystDep,
    campaign: CampaignQuery = None,
    region: RegionQuery = None,
    since: DateQuery = None,
    until: DateQuery = None,
) -> HTMLResponse:
    context: dict[str, Any] = await _choices(session)
    context.update(
        values={"campaign": campaign, "region": region, "since": since, "until": until},
        statuses=STATUSES,
        labels=status_labels(),
        english=current_language.get() == "en",
        formats=list(ExportFormat),
    )
    try:
        scope = await _scope(session, campaign, region, since, until)
    except InvalidInput as exc:
        context["error"] = exc.localized()
        return staff_page(request, auth, "stats/dashboard.html", context, status_code=422)
    english = current_language.get() == "en"
    context.update(
        summary=await _summary(session, scope, english=english), query=_query(scope.filter)
    )
    return staff_page(request, auth, "stats/dashboard.html", context)


CHARTS = ("days", "regions", "health")


@pages.get("/chart/{name}.svg", name="stats_chart")
async def chart(
    request: Request,
    session: SessionDep,
    auth: AnalystDep,
    name: ChartPath,
    campaign: CampaignQuery = None,
    region: RegionQuery = None,
    since: DateQuery = None,
    until: DateQuery = None,
) -> Response:
    if name not in CHARTS:
        raise NotFound("No such chart.")
    scope = await _scope(session, campaign, region, since, until)
    labels = status_labels()
    empty = _("No letters under this filter.")
    svg: bytes
    if name == "days":
        rows = await figures.by_day(session, scope=scope)
        title = _("Letters per day (UTC), by status")
        svg = await asyncio.to_thread(
            charts.letters_per_day, rows, title=title, labels=labels, empty=empty
        )
    elif name == "regions":
        rows = await figures.by_region(session, scope=scope)
        if current_language.get() == "en":
            for row in rows:
                row.label = row.label_en or row.label
        title = _("Letters per region: the 20 with most")
        svg = await asyncio.to_thread(
            charts.letters_per_region, rows, title=title, labels=labels, empty=empty
        )
    else:
        rows = await figures.by_domain(session, scope=scope)
        title = _("Delivery health by recipient domain: shares of letters")
        svg = await asyncio.to_thread(
            charts.delivery_health, rows, title=title, labels=labels, empty=empty
        )
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "private, max-age=60",
            # The image is a document of its own if opened directly: it may run nothing.
            "Content-Security-Policy": CHART_CSP,
        },
    )


@pages.get("/export.{fmt}", name="stats_export")
async def export_page(
    request: Request,
    session: SessionDep,
    auth: AnalystDep,
    fmt: ExportFormat,
    campaign: CampaignQuery = None,
    region: RegionQuery = None,
    since: DateQuery = None,
    until: DateQuery = None,
) -> StreamingResponse:
    scope = await _scope(session, campaign, region, since, until)
    return _export_response(request, fmt, scope)
