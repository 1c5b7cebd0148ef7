"""The application's error hierarchy: each error carries its HTTP status and a user-safe message.

Services raise these; one handler in app.main renders them as JSON under /api/ and as an error page
elsewhere. Nothing else should reach the user as a 500.
"""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


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
        self, message: str, *, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class Gone(AppError):
    status_code = 410
    code = "gone"
