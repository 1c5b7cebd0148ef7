"""What the OpenAPI document says about errors, so that clients generated from it know every answer:
the error body (as app.main renders every error under /api/) and the error responses that the
operations declare, by status.

Each operation lists the statuses it can answer besides its success: `responses=errors(404, 422)`.
As a rule: 401 where staff credentials are needed and 403 where a role (or, with the session
cookie, the CSRF token) is checked; 404 where a path names something; 400, 413 and 422 where there
is a body (400: one that cannot even be decoded); 422 wherever there are parameters; 409, 410 and
429 where the service raises them; 503 everywhere, for every operation reads the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    field: str = Field(
        description="The input refused: a body field (a dotted path for nested ones), "
        "or a query or path parameter."
    )
    message: str


class ErrorOut(BaseModel):
    """Every error of the JSON API."""

    error: str = Field(
        description="A stable code for programs: invalid_input, not_found, conflict, gone, "
        "forbidden, unauthorized, too_many_requests, http_error…",
        examples=["invalid_input"],
    )
    message: str = Field(description="For people, in the request's language.")
    details: list[ErrorDetail] | None = Field(
        None, description="For input errors: what is wrong with each field."
    )


class HealthOut(BaseModel):
    status: Literal["ok", "error"]
    database: Literal["ok", "unavailable"]


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

DESCRIPTIONS = {
    400: "The body could not be read: not UTF-8, or not the media type it says",
    401: "No valid credentials: an API token (or the staff session cookie) that is missing, "
    "invalid, expired or revoked",
    403: "Credentials valid, but the staff member's roles do not allow this (or, with the session "
    "cookie, the CSRF token is missing or wrong)",
    404: "Nothing of that name or id",
    409: "In conflict with the current state",
    410: "The link has expired",
    413: "The request body is over the route's limit",
    422: "Invalid input: `details` names each field or parameter",
    429: "Too many requests: wait `Retry-After` seconds",
    503: "The database is unreachable: try again after `Retry-After` seconds",
}


def errors(
    *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of an operation: these error statuses, each with the error body (and a
    description of the operation's own where `described` gives one)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description = (described or {}).get(status, DESCRIPTIONS[status])
        response: dict[str, Any] = {"model": ErrorOut, "description": description}
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        responses[status] = response
    return responses


def media(
    description: str, schemas: Mapping[str, Mapping[str, Any]], *, status: int = 200
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry of an answer that is not (only) JSON: each media type's schema."""
    content = {media_type: {"schema": dict(schema)} for media_type, schema in schemas.items()}
    return {status: {"description": description, "content": content}}


# /healthz (app.main): the same body either way.
HEALTH: dict[int | str, dict[str, Any]] = {
    200: {"model": HealthOut, "description": "The service and its database answer"},
    503: {
        "model": HealthOut,
        "description": "The database does not answer",
        "headers": RETRY_AFTER,
    },
}
