"""Pacing shared by every worker: token buckets (messages per second, global and per recipient
domain), concurrency slots per domain, and the breaker that pauses a domain or the relay.

The state lives in the database (rows of `send_budget` and `send_slot`, locked with
SELECT ... FOR UPDATE on PostgreSQL, inside the claim's BEGIN IMMEDIATE on SQLite), or in Redis
when APPEALS_REDIS_URL is set (atomic Lua scripts). Either way the limits hold for all worker
processes together. Workers always lock the global bucket first and domains in sorted order, so
two claims can never wait on each other in a cycle.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import utcnow
from app.delivery.models import PauseKind, SendBudget, SendPause, SendSlot

GLOBAL = "global"


def domain_key(domain: str) -> str:
    return f"domain:{domain}"


class Budget(Protocol):
    async def take(
        self, conn: AsyncConnection, key: str, want: int, *, rate: float, burst: float
    ) -> int:
        """Take up to `want` whole tokens now; returns how many were granted."""

    async def refund(self, conn: AsyncConnection, key: str, n: int, *, burst: float) -> None:
        """Give back tokens taken but not used."""

    async def acquire_slots(
        self, conn: AsyncConnection, key: str, want: int, *, limit: int, holder: str, ttl: float
    ) -> int:
        """Hold up to `want` of the `limit` concurrency slots of `key`; returns how many."""

    async def release_slots(self, conn: AsyncConnection, keys: list[str], *, holder: str) -> None:
        """Give back every slot `holder` holds on these keys."""

    async def close(self) -> None: ...


def _insert(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


class DatabaseBudget:
    """Buckets and slots as rows; call inside the claim transaction."""

    async def _lock(
        self, conn: AsyncConnection, key: str, burst: float
    ) -> tuple[float, dt.datetime]:
        query = (
            select(SendBudget.tokens, SendBudget.updated_at)
            .where(SendBudget.key == key)
            .with_for_update()
        )
        row = (await conn.execute(query)).first()
        if row is None:
            insert = _insert(conn)(SendBudget).values(key=key, tokens=burst, updated_at=utcnow())
            await conn.execute(insert.on_conflict_do_nothing(index_elements=["key"]))
            row = (await conn.execute(query)).one()
        return float(row.tokens), row.updated_at

    async def take(
        self, conn: AsyncConnection, key: str, want: int, *, rate: float, burst: float
    ) -> int:
        tokens, updated_at = await self._lock(conn, key, burst)
        now = utcnow()
        elapsed = max(0.0, (now - updated_at).total_seconds())
        tokens = min(burst, tokens + elapsed * rate)
        granted = max(0, min(want, math.floor(tokens)))
        await conn.execute(
            update(SendBudget)
            .where(SendBudget.key == key)
            .values(tokens=tokens - granted, updated_at=now)
        )
        return granted

    async def refund(self, conn: AsyncConnection, key: str, n: int, *, burst: float) -> None:
        if n > 0:
            await conn.execute(
                update(SendBudget)
                .where(SendBudget.key == key)
                .values(
                    tokens=func.min(SendBudget.tokens + n, burst)
                    if conn.dialect.name == "sqlite"
                    else func.least(SendBudget.tokens + n, burst)
                )
            )

    async def acquire_slots(
        self, conn: AsyncConnection, key: str, want: int, *, limit: int, holder: str, ttl: float
    ) -> int:
        # The caller holds the lock on the key's bucket row (take() first), which serialises this.
        now = utcnow()
        await conn.execute(delete(SendSlot).where(SendSlot.key == key, SendSlot.expires_at < now))
        used = await conn.scalar(
            select(func.coalesce(func.sum(SendSlot.slots), 0)).where(
                SendSlot.key == key, SendSlot.holder != holder
            )
        )
        granted = max(0, min(want, limit - int(used or 0)))
        if granted:
            insert = _insert(conn)(SendSlot).values(
                key=key, holder=holder, slots=granted, expires_at=now + dt.timedelta(seconds=ttl)
            )
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["key", "holder"],
                    set_={"slots": granted, "expires_at": insert.excluded.expires_at},
                )
            )
        return granted

    async def release_slots(self, conn: AsyncConnection, keys: list[str], *, holder: str) -> None:
        if keys:
            await conn.execute(
                delete(SendSlot).where(SendSlot.holder == holder, SendSlot.key.in_(keys))
            )

    async def close(self) -> None:
        return None


_TAKE = """
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local want, rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted = math.max(0, math.min(want, math.floor(tokens)))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - granted), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 86400)
return granted
"""
_REFUND = """
local t = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if t ~= nil then
  local refilled = math.min(tonumber(ARGV[2]), t + tonumber(ARGV[1]))
  redis.call('HSET', KEYS[1], 'tokens', tostring(refilled))
end
return 0
"""
_SLOTS = """
local want, limit, holder, now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3],
  tonumber(ARGV[4]), tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
local used = 0
for i = 1, #all, 2 do
  local h, v = all[i], all[i + 1]
  local sep = string.find(v, ':')
  local n, exp = tonumber(string.sub(v, 1, sep - 1)), tonumber(string.sub(v, sep + 1))
  if exp < now then redis.call('HDEL', KEYS[1], h)
  elseif h ~= holder then used = used + n end
end
local granted = math.max(0, math.min(want, limit - used))
if granted > 0 then
  redis.call('HSET', KEYS[1], holder, granted .. ':' .. (now + ttl))
  redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 60)
end
return granted
"""


class RedisBudget:
    """The same buckets and slots in Redis, each operation one atomic script."""

    def __init__(self, url: str, *, prefix: str = "appeals:") -> None:
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self._take = self.redis.register_script(_TAKE)
        self._refund = self.redis.register_script(_REFUND)
        self._slots = self.redis.register_script(_SLOTS)

    async def take(
        self, conn: AsyncConnection, key: str, want: int, *, rate: float, burst: float
    ) -> int:
        keys = [f"{self.prefix}budget:{key}"]
        return int(await self._take(keys=keys, args=[want, rate, burst, time.time()]))

    async def refund(self, conn: AsyncConnection, key: str, n: int, *, burst: float) -> None:
        if n > 0:
            await self._refund(keys=[f"{self.prefix}budget:{key}"], args=[n, burst])

    async def acquire_slots(
        self, conn: AsyncConnection, key: str, want: int, *, limit: int, holder: str, ttl: float
    ) -> int:
        keys = [f"{self.prefix}slots:{key}"]
        return int(await self._slots(keys=keys, args=[want, limit, holder, time.time(), ttl]))

    async def release_slots(self, conn: AsyncConnection, keys: list[str], *, holder: str) -> None:
        for key in keys:
            await self.redis.hdel(f"{self.prefix}slots:{key}", holder)

    async def close(self) -> None:
        await self.redis.aclose()


@dataclass
class Pauses:
    """The pauses in force now."""

    campaigns: set[int] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)
    relays: set[str] = field(default_factory=set)
    versions: set[int] = field(default_factory=set)  # held or cancelled appeal versions
    letters: set[int] = field(default_factory=set)  # cancelled by their citizens while on the wire


async def active_pauses(conn: AsyncConnection) -> Pauses:
    now = utcnow()
    rows = await conn.execute(
        select(SendPause.kind, SendPause.key).where(
            (SendPause.until.is_(None)) | (SendPause.until > now)
        )
    )
    pauses = Pauses()
    for kind, key in rows.all():
        if kind == PauseKind.campaign:
            pauses.campaigns.add(int(key))
        elif kind == PauseKind.domain:
            pauses.domains.add(key)
        elif kind == PauseKind.relay:
            pauses.relays.add(key)
        elif kind in (PauseKind.version_hold, PauseKind.version_cancel):
            pauses.versions.add(int(key))
        elif kind == PauseKind.letter_cancel:
            pauses.letters.add(int(key))
    return pauses


async def stopped_versions(conn: AsyncConnection, versions: set[int]) -> dict[int, PauseKind]:
    """Which of these appeal versions are held or cancelled now."""
    if not versions:
        return {}
    rows = await conn.execute(
        select(SendPause.kind, SendPause.key).where(
            SendPause.kind.in_([PauseKind.version_hold, PauseKind.version_cancel]),
            SendPause.key.in_([str(v) for v in versions]),
        )
    )
    return {int(key): PauseKind(kind) for kind, key in rows.all()}


async def cancelled_letters(conn: AsyncConnection, letter_ids: list[int]) -> set[int]:
    """Which of these letters their citizens cancelled while they were on the wire."""
    if not letter_ids:
        return set()
    # Requests exist only for letters on the wire (and go when they are final): read them all
    # rather than send the batch's ids (hundreds) to be matched.
    requests = select(SendPause.key).where(SendPause.kind == PauseKind.letter_cancel)
    return {int(key) for key in await conn.scalars(requests)} & set(letter_ids)


async def forget_letters(conn: AsyncConnection, letter_ids: set[int]) -> None:
    """Drop the cancellation requests of letters that are now final."""
    if letter_ids:
        await conn.execute(
            delete(SendPause).where(
                SendPause.kind == PauseKind.letter_cancel,
                SendPause.key.in_([str(i) for i in letter_ids]),
            )
        )


async def set_pause(
    conn: AsyncConnection, *, kind: PauseKind, key: str, until: dt.datetime | None, reason: str
) -> None:
    """Create or replace a pause."""
    insert = _insert(conn)(SendPause).values(
        kind=kind, key=key, until=until, reason=reason[:500], created_at=utcnow()
    )
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={"until": until, "reason": insert.excluded.reason},
        )
    )


class Breaker:
    """Counts consecutive errors per domain and for the relay; opens (a timed pause) at the
    threshold. Counts are this worker's; the pause it sets is seen by every worker."""

    def __init__(self, *, threshold: int, pause_seconds: float) -> None:
        self.threshold = threshold
        self.pause_seconds = pause_seconds
        self.errors: dict[tuple[PauseKind, str], int] = {}

    def success(self, kind: PauseKind, key: str) -> None:
        self.errors.pop((kind, key), None)

    def failure(self, kind: PauseKind, key: str) -> bool:
        """Count an error; True when this one opens the breaker."""
        n = self.errors.get((kind, key), 0) + 1
        self.errors[(kind, key)] = n
        if n >= self.threshold:
            self.errors.pop((kind, key), None)
            return True
        return False

    def until(self) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=self.pause_seconds)
