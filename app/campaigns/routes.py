"""The campaigns' staff routes as app.main includes them: `pages` under /staff (campaign_pages,
text_pages, vetting_pages) and `api`, the JSON API under /api/v1/staff (api)."""

from __future__ import annotations

from fastapi import APIRouter

from app.campaigns import campaign_pages, text_pages, vetting_pages
from app.campaigns.api import api

pages = APIRouter(prefix="/staff", include_in_schema=False)
pages.include_router(campaign_pages.router)
pages.include_router(text_pages.router)
pages.include_router(vetting_pages.router)

__all__ = ["api", "pages"]
