"""HTTP routes of delivery: /metrics, and the staff page that reads the local sink."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.delivery import metrics, service
from app.dependencies import SessionDep
from app.openapi import errors, media
from app.staff.models import Role
from app.staff.web import Auth, role, staff_page

service_routes = APIRouter(tags=["service"])
pages = APIRouter(prefix="/staff/sink", include_in_schema=False)

# The sink holds whole letters, senders' names included: the staff who write and vet them may
# read it, analysts (who see only aggregates) may not.
StaffViewer = Annotated[Auth, role(Role.admin, Role.editor, Role.lawyer)]
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text format


@service_routes.get(
    "/metrics",
    response_class=Response,
    responses=media("The metrics", {METRICS_TYPE: {"type": "string"}}) | errors(503),
)
async def prometheus_metrics(session: SessionDep) -> Response:
    """Delivery metrics in Prometheus text format."""
    body = await metrics.render(session)
    return Response(body, media_type=METRICS_TYPE)


@pages.get("", response_class=HTMLResponse, name="sink_page")
async def sink_page(
    request: Request,
    session: SessionDep,
    auth: StaffViewer,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    per_page = 50
    messages = await service.list_sink_messages(
        session, limit=per_page, offset=(page - 1) * per_page
    )
    total = await service.count_sink_messages(session)
    return staff_page(
        request,
        auth,
        "delivery/sink.html",
        {"messages": messages, "total": total, "page": page, "per_page": per_page},
    )


@pages.get("/{message_id}", response_class=HTMLResponse, name="sink_message_page")
async def sink_message_page(
    request: Request,
    session: SessionDep,
    auth: StaffViewer,
    message_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> HTMLResponse:
    message = await service.get_sink_message(session, message_id=message_id)
    return staff_page(request, auth, "delivery/sink_message.html", {"message": message})
