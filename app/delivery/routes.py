"""HTTP routes of delivery: /metrics, and the staff page that reads the local sink."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.delivery import metrics, service
from app.dependencies import SessionDep, SettingsDep
from app.errors import Forbidden
from app.templating import templates

service_routes = APIRouter(tags=["service"])
pages = APIRouter(prefix="/staff/sink", include_in_schema=False)

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def require_staff_viewer(request: Request, settings: SettingsDep) -> None:
    """Who may read the sink's letters: TO BE WIRED to staff authentication at the merge.

    Until then, and only outside production, a request from this machine's loopback address
    (the embedded development setup) may read it; everything else is refused.
    """
    client = request.client.host if request.client else ""
    if settings.environment == "production" or client not in LOOPBACK:
        raise Forbidden("Staff only.")


StaffViewer = Annotated[None, Depends(require_staff_viewer)]


@service_routes.get("/metrics", response_class=Response)
async def prometheus_metrics(session: SessionDep) -> Response:
    """Delivery metrics in Prometheus text format."""
    body = await metrics.render(session)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@pages.get("", response_class=HTMLResponse, name="sink_page")
async def sink_page(
    request: Request,
    session: SessionDep,
    _: StaffViewer,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    per_page = 50
    messages = await service.list_sink_messages(
        session, limit=per_page, offset=(page - 1) * per_page
    )
    total = await service.count_sink_messages(session)
    return templates.TemplateResponse(
        request,
        "delivery/sink.html",
        {"messages": messages, "total": total, "page": page, "per_page": per_page},
    )


@pages.get("/{message_id}", response_class=HTMLResponse, name="sink_message_page")
async def sink_message_page(
    request: Request,
    session: SessionDep,
    _: StaffViewer,
    message_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> HTMLResponse:
    message = await service.get_sink_message(session, message_id=message_id)
    return templates.TemplateResponse(request, "delivery/sink_message.html", {"message": message})
