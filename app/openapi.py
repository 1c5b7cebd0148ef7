"""What the OpenAPI document says about errors, so that clients generated from it know every answer:
the error body (as app.main renders every error under /api/) and the error responses that the
operations declare, by status.

Each operation lists the statuses it can answer besides its success: `responses=errors(404, 422)`.
As a rule: 401 where staff credentials are needed and 403 where a role (or, with the session
cookie, the CSRF token) is checked; 404 where a path names something; 413 and 422 where there is
a body, 422 wherever there are parameters; 409, 410 and 429 where the service raises them; 503
everywhere the database is read (every operation but the metrics).
"""

from __future__ import annotations

from typing import Any

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


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

DESCRIPTIONS = {
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


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of an operation: these error statuses, each with the error body."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {"model": ErrorOut, "description": DESCRIPTIONS[status]}
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        responses[status] = response
    return responses
