"""Login throttling: failed attempts are counted per account and per client address.

Counters live in the application's rate-limit storage (app.ratelimit): one process's memory by
default, Redis when APPEALS_REDIS_URL is set so that every web process shares them. Keys are keyed
hashes (HMAC) of the e-mail and the address, never the values themselves.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter

from app.config import Settings
from app.errors import TooManyRequests
from app.ratelimit import RateLimiter


class LoginThrottle:
    def __init__(self, rate_limiter: RateLimiter, settings: Settings) -> None:
        self._pseudonym = rate_limiter.pseudonym
        self._limiter = MovingWindowRateLimiter(rate_limiter.storage)
        self._per_account: RateLimitItem = parse(settings.login_limit_per_account)
        self._per_address: RateLimitItem = parse(settings.login_limit_per_address)

    def _items(self, email: str, address: str) -> list[tuple[RateLimitItem, str]]:
        return [
            (self._per_account, "login:account:" + self._pseudonym(email.strip().lower())),
            (self._per_address, "login:address:" + self._pseudonym(address)),
        ]

    async def check(self, *, email: str, address: str) -> None:
        """Raise TooManyRequests while the account or the address has too many recent failures."""
        for item, key in self._items(email, address):
            if not await self._limiter.test(item, key):
                stats = await self._limiter.get_window_stats(item, key)
                minutes = max(1, math.ceil((stats.reset_time - time.time()) / 60))
                raise TooManyRequests(
                    "Too many failed login attempts. Please wait {minutes} min and try again.",
                    field="email",
                    minutes=minutes,
                )

    async def failed(self, *, email: str, address: str) -> None:
        for item, key in self._items(email, address):
            await self._limiter.hit(item, key)
