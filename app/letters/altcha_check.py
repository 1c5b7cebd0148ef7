"""The optional proof of work (ALTCHA, self-hosted) for deployments under attack.

Off by default: then the flow needs no JavaScript. On, the form carries a widget (served from
/static/altcha) that solves a challenge signed here; each solution is accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import altcha.v2 as altcha_v2

from app.config import Settings
from app.errors import InvalidInput
from app.i18n import gettext as _
from app.ratelimit import RateLimiter, Rule

VALID_SECONDS = 600
_ONCE = Rule.parse("altcha-once", "1/15 minutes")


def _key(settings: Settings) -> str:
    return hmac.new(
        settings.effective_secret_key.encode(), b"appeals.altcha", hashlib.sha256
    ).hexdigest()


def challenge(settings: Settings) -> dict[str, Any]:
    """A new signed challenge, as the widget expects it."""
    made = altcha_v2.create_challenge(
        "PBKDF2/SHA-256",
        settings.altcha_cost,
        counter=secrets.randbelow(settings.altcha_max_number) + 1,
        expires_at=int(time.time()) + VALID_SECONDS,
        hmac_secret=_key(settings),
    )
    result: dict[str, Any] = made.to_dict()
    return result


async def verify(payload: str | None, *, settings: Settings, limiter: RateLimiter) -> None:
    """InvalidInput (field `altcha`) unless the payload solves one of our challenges, once."""
    message = _("Please wait until the automatic check under the form is complete.")
    if not payload or len(payload) > 4000:
        raise InvalidInput(message, field="altcha")
    try:
        result = altcha_v2.verify_solution(payload, _key(settings))
    except Exception:  # any malformed payload
        raise InvalidInput(message, field="altcha") from None
    if not result.verified:
        raise InvalidInput(message, field="altcha")
    # A solution is good for one submission: its digest is counted like a rate limit.
    digest = hashlib.sha256(payload.encode()).hexdigest()
    try:
        await limiter.hit([(_ONCE, digest)], message)
    except Exception:
        raise InvalidInput(message, field="altcha") from None
