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
from collections import deque
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


class MemoryWindows:
    """Moving windows in this process's memory: for each (rule, rate, key), the times of the hits
    still inside the window, oldest first.

    The same rule as limits' moving window (a hit is refused when the window already holds
    `amount` hits; a refused hit is not recorded). limits' own asyncio memory storage was measured
    at about 0.5 ms of CPU per submission (5 keys): after every hit it schedules a sweep of all
    its keys that hops to a thread for each key, so it keeps a core busy while any key is alive.
    Here a hit costs a few microseconds, and keys whose window is over are swept once a minute.
    """

    SWEEP_SECONDS = 60.0

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, str], tuple[float, deque[float]]] = {}
        self._sweep_at = time.monotonic() + self.SWEEP_SECONDS

    def hit(self, rate: RateLimitItem, name: str, key: str) -> float | None:
        """Count a hit; None if allowed, else the seconds until the oldest hit leaves the window."""
        now = time.monotonic()
        if now >= self._sweep_at:
            self._sweep(now)
        window = float(rate.get_expiry())
        slot = (name, str(rate), key)
        entry = self._hits.get(slot)
        if entry is None:
            entry = self._hits[slot] = (window, deque())
        hits = entry[1]
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= rate.amount:
            return hits[0] + window - now if hits else window
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        self._hits = {
            slot: (window, hits)
            for slot, (window, hits) in self._hits.items()
            if hits and hits[-1] > now - window
        }
        self._sweep_at = now + self.SWEEP_SECONDS

    def clear(self) -> None:
        self._hits.clear()


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
        self._memory = MemoryWindows() if self._pool is None else None
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
            if self._memory is not None:
                for rate in rule.rates:
                    wait = self._memory.hit(rate, rule.name, identifier)
                    if wait is not None:
                        raise TooManyRequests(message, retry_after=max(1, math.ceil(wait)))
                continue
            for rate in rule.rates:
                if not await self._limiter.hit(rate, rule.name, identifier):
                    stats = await self._limiter.get_window_stats(rate, rule.name, identifier)
                    raise TooManyRequests(
                        message, retry_after=max(1, math.ceil(stats.reset_time - time.time()))
                    )

    async def reset(self) -> None:
        if self._memory is not None:
            self._memory.clear()
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
