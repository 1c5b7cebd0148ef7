"""The application's error hierarchy: each error carries its HTTP status and a user-safe message.

Services raise these; one handler in app.main renders them as JSON under /api/ and as an error page
elsewhere. Nothing else should reach the user as a 500 (and an outage of the database is a 503,
Unavailable, answered by app.failsafe).

A message is an English template with named parameters (`Conflict("The slug {slug!r} is taken.",
slug=...)`): `message` is the English text (logs of the CLI, tests), `localized()` the text in the
language of the current request, from the gettext catalogs. The extraction command in the README
collects the templates by the names of these classes.
"""

from __future__ import annotations

from enum import Enum

from app.i18n import gettext


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, **params: object) -> None:
        self.template = message
        self.params = params
        self.message = message.format(**params) if params else message
        super().__init__(self.message)
        self.field = field

    def localized(self) -> str:
        """The message in the current language; enum parameters (statuses) are translated too."""
        text = gettext(self.template)
        if not self.params:
            return text
        values = {
            name: gettext(value.value) if isinstance(value, Enum) else value
            for name, value in self.params.items()
        }
        return text.format(**values)


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class InvalidInput(AppError):
    status_code = 422
    code = "invalid_input"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
        **params: object,
    ) -> None:
        super().__init__(message, field=field, **params)
        self.retry_after = retry_after


class Gone(AppError):
    status_code = 410
    code = "gone"


class Unavailable(AppError):
    """The database (or the network to it) is away for now: app.failsafe answers this for every
    request that meets an outage (app.failsafe.is_outage), with Retry-After."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
