"""Login throttling: failed attempts are counted per account and per client address.

Counters live in the `limits` storage named by Settings.rate_limit_storage_url: one process's memory
by default (enough for one web process), Redis when several processes must share them.
"""

from __future__ import annotations

import hashlib
import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import StorageTypes, storage_from_string

from app.config import Settings
from app.errors import TooManyRequests


def _key(kind: str, value: str) -> str:
    # Keys never hold an address or an e-mail in clear, should the storage be inspected.
    return f"login:{kind}:" + hashlib.sha256(value.encode()).hexdigest()


class LoginThrottle:
    def __init__(self, settings: Settings) -> None:
        storage: StorageTypes = storage_from_string(settings.rate_limit_storage_url)
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_account: RateLimitItem = parse(settings.login_limit_per_account)
        self._per_address: RateLimitItem = parse(settings.login_limit_per_address)

    def _items(self, email: str, address: str) -> list[tuple[RateLimitItem, str]]:
        return [
            (self._per_account, _key("account", email.strip().lower())),
            (self._per_address, _key("address", address)),
        ]

    async def check(self, *, email: str, address: str) -> None:
        """Raise TooManyRequests while the account or the address has too many recent failures."""
        for item, key in self._items(email, address):
            if not await self._limiter.test(item, key):
                stats = await self._limiter.get_window_stats(item, key)
                minutes = max(1, math.ceil((stats.reset_time - time.time()) / 60))
                raise TooManyRequests(
                    "Too many failed login attempts. Please wait "
                    f"{minutes} minute(s) and try again.",
                    field="email",
                )

    async def failed(self, *, email: str, address: str) -> None:
        for item, key in self._items(email, address):
            await self._limiter.hit(item, key)
