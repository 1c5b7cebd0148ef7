"""What other domains use of staff, in one place: `from app.staff import service as staff_service`.

The functions live in the modules named after what they hold: accounts and roles
(app.staff.accounts), passwords (app.staff.passwords), signing in and sessions
(app.staff.sessions), TOTP (app.staff.totp), API tokens (app.staff.api_tokens) and the audit log
(app.staff.audit_log). Code inside app.staff imports those modules directly.
"""

from __future__ import annotations

from app.staff.accounts import (
    create_staff,
    get_staff,
    get_staff_by_email,
    list_staff,
    normalise_email,
    require,
    set_password,
    update_staff,
)
from app.staff.api_tokens import (
    API_TOKEN_PREFIX,
    create_api_token,
    find_api_token,
    list_api_tokens,
    revoke_api_token,
)
from app.staff.audit_log import list_audit, record
from app.staff.passwords import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    check_password_policy,
    hash_password,
    hasher,
)
from app.staff.sessions import (
    authenticate,
    csrf_token_for,
    csrf_valid,
    end_session,
    staff_for_session,
    start_session,
)
from app.staff.totp import TOTP_ISSUER, begin_totp, confirm_totp, disable_totp, totp_uri

__all__ = [
    "API_TOKEN_PREFIX",
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "TOTP_ISSUER",
    "authenticate",
    "begin_totp",
    "check_password_policy",
    "confirm_totp",
    "create_api_token",
    "create_staff",
    "csrf_token_for",
    "csrf_valid",
    "disable_totp",
    "end_session",
    "find_api_token",
    "get_staff",
    "get_staff_by_email",
    "hash_password",
    "hasher",
    "list_api_tokens",
    "list_audit",
    "list_staff",
    "normalise_email",
    "record",
    "require",
    "revoke_api_token",
    "set_password",
    "staff_for_session",
    "start_session",
    "totp_uri",
    "update_staff",
]
