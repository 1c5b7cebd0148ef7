"""What every step of one worker shares: its settings, engine and name, the pacing budget, the
relay, the letters it holds, its write transactions, its view of a database outage and its
running totals."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.delivery import pacing
from app.delivery.smtp import Relay
from app.delivery.worker.batches import Claimed
from app.outage import Outage

logger = logging.getLogger("appeals.delivery")


@dataclass
class Summary:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    released: int = 0
    requeued: int = 0
    purged: int = 0
    by_class: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"sent {self.sent}, deferred {self.deferred}, failed {self.failed}, "
            f"released {self.released}, lease-expired requeued {self.requeued}, "
            f"purged {self.purged}"
        )


@dataclass
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    name: str  # the lease owner written on every letter this worker claims
    relay: Relay
    budget: pacing.Budget
    summary: Summary = field(default_factory=Summary)
    # Letters in hand: claimed (the claim committed) and whose outcome is not yet written. Only
    # their leases are renewed; each leaves once the record step has written its outcome.
    held: dict[int, Claimed] = field(default_factory=dict)
    outage: Outage = field(default_factory=lambda: Outage(logger, "worker"))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; BEGIN IMMEDIATE on SQLite so that it never upgrades mid-way."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with conn.begin():
                yield conn


def burst(rate: float) -> float:
    """A bucket holds one second's worth of tokens (at least one)."""
    return max(1.0, rate)
