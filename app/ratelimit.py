"""Rate limits against abuse, with no third party: in memory for one process, in Redis for many.

Client addresses are personal data: limits are keyed by a keyed hash (HMAC) of the address and of
its /24 and /16 networks, never by the address itself, and the entries expire with their window.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import ConnectionPool

from app.errors import TooManyRequests


@dataclass(frozen=True)
class Rule:
    """A named limit such as 'submit per address': one or more rates like '5/minute;30/hour'."""

    name: str
    rates: tuple[RateLimitItem, ...]

    @classmethod
    def parse(cls, name: str, spec: str) -> Rule:
        return cls(name, tuple(parse_many(spec)))


class RateLimiter:
    """Redis when a URL is given (limits shared by every process), else this process's memory."""

    def __init__(self, redis_url: str | None, secret: str) -> None:
        self._pool: ConnectionPool | None = None
        if redis_url:
            self._pool = ConnectionPool.from_url(redis_url)
            self.storage: Storage = RedisStorage(
                "async+" + redis_url.removeprefix("async+"),
                implementation="redispy",
                key_prefix="appeals-limits",
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        else:
            self.storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._secret = secret.encode()

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    async def available(self) -> bool:
        return await self.storage.check()

    def pseudonym(self, value: str) -> str:
        """A keyed hash: the same value maps to the same key, which reveals nothing of it."""
        return hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()[:32]

    async def hit(self, checks: Iterable[tuple[Rule, str]], message: str) -> None:
        """Count one hit for each (rule, key); raise TooManyRequests when any rate is exceeded.

        Each hit is atomic in the storage, so many processes sharing Redis cannot overshoot. A
        refused hit is not recorded; rules before the refusing one in `checks` have counted.
        """
        for rule, key in checks:
            identifier = self.pseudonym(key)
            for rate in rule.rates:
                if not await self._limiter.hit(rate, rule.name, identifier):
                    stats = await self._limiter.get_window_stats(rate, rule.name, identifier)
                    raise TooManyRequests(
                        message, retry_after=max(1, math.ceil(stats.reset_time - time.time()))
                    )

    async def reset(self) -> None:
        await self.storage.reset()


def networks(address: str) -> Sequence[tuple[str, str]]:
    """The address itself and its wider networks (/24 and /16 for IPv4; /64 and /48 for IPv6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return [("address", address)]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 client seen through a dual-stack socket
    if ip.version == 4:
        prefixes = (("net24", 24), ("net16", 16))
    else:
        prefixes = (("net64", 64), ("net48", 48))
    return [("address", str(ip))] + [
        (label, str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))) for label, bits in prefixes
    ]
