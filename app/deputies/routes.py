"""HTTP routes of the deputies registry: the read API and the public registry pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from app.dependencies import SessionDep
from app.deputies import service
from app.deputies.schemas import REGION_CODE_PATTERN, DeputyOut, LegislatureOut, RegionOut
from app.templating import templates
from app.text import ONE_LINE

api = APIRouter(prefix="/api/v1", tags=["deputies"])
pages = APIRouter(include_in_schema=False)

RegionCodePath = Annotated[
    str,
    Path(
        pattern=REGION_CODE_PATTERN.replace("A-Z", "A-Za-z"),
        max_length=6,
        description="ISO 3166-2 code, e.g. RU-MOW",
    ),
    ONE_LINE,
]
DeputyIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


@api.get("/regions", response_model=list[RegionOut])
async def list_regions(session: SessionDep) -> list[RegionOut]:
    """Every region with its legislatures and the number of its active deputies."""
    return [
        RegionOut(
            code=region.code,
            name_ru=region.name_ru,
            name_en=region.name_en,
            active_deputies=count,
            legislatures=[LegislatureOut.model_validate(leg) for leg in region.legislatures],
        )
        for region, count in await service.list_regions(session)
    ]


@api.get("/regions/{code}/deputies", response_model=list[DeputyOut])
async def list_region_deputies(code: RegionCodePath, session: SessionDep) -> list[DeputyOut]:
    """The region's active deputies, sorted by surname."""
    region = await service.get_region(session, code=code)
    deputies = await service.list_active_deputies(session, region=region)
    return [DeputyOut.model_validate(deputy) for deputy in deputies]


@api.get("/deputies/{deputy_id}", response_model=DeputyOut)
async def get_deputy(deputy_id: DeputyIdPath, session: SessionDep) -> DeputyOut:
    """One deputy, including inactive ones (letters may point at them)."""
    return DeputyOut.model_validate(await service.get_deputy(session, deputy_id=deputy_id))


@pages.get("/regions", response_class=HTMLResponse, name="regions_page")
async def regions_page(request: Request, session: SessionDep) -> HTMLResponse:
    regions = await service.list_regions(session)
    return templates.TemplateResponse(request, "deputies/regions.html", {"regions": regions})


@pages.get("/regions/{code}", response_class=HTMLResponse, name="region_page")
async def region_page(request: Request, code: RegionCodePath, session: SessionDep) -> HTMLResponse:
    region = await service.get_region(session, code=code)
    deputies = await service.list_active_deputies(session, region=region)
    return templates.TemplateResponse(
        request, "deputies/region.html", {"region": region, "deputies": deputies}
    )
