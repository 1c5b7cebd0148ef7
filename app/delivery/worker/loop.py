"""The worker loop: claim, send, record, pipelined so that the relay connections never wait for
the database. While a batch is on the wire, the previous one is recorded and the next one
claimed (at the same time on PostgreSQL, one after the other on SQLite); between batches the
loop requeues letters of dead workers and runs the retention purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import engine_for
from app.delivery import pacing
from app.delivery.purge import purge
from app.delivery.smtp import Relay
from app.delivery.worker import leases
from app.delivery.worker.batches import Batch, CycleState, Sent
from app.delivery.worker.claim import Claimer
from app.delivery.worker.context import Summary, WorkerContext
from app.delivery.worker.record import Recorder
from app.delivery.worker.send import Sender

logger = logging.getLogger("appeals.delivery")
T = TypeVar("T")


def make_budget(settings: Settings) -> pacing.Budget:
    if settings.redis_url:
        return pacing.RedisBudget(settings.redis_url)
    return pacing.DatabaseBudget()


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        engine: AsyncEngine | None = None,
        name: str | None = None,
        budget: pacing.Budget | None = None,
    ) -> None:
        self.settings = settings
        self._own_engine = engine is None
        self.engine = engine or engine_for(settings)
        self.stopping = asyncio.Event()
        self.ctx = WorkerContext(
            settings=settings,
            engine=self.engine,
            name=name or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            relay=Relay.from_settings(settings),
            budget=budget or make_budget(settings),
        )
        self.sender = Sender(self.ctx, stopping=self.stopping)
        self.claimer = Claimer(
            self.ctx, halted=self.sender.halted, connections=len(self.sender.connections)
        )
        self.recorder = Recorder(self.ctx, breaker=self.sender.breaker)
        self._last_requeue = 0.0
        self._last_purge = 0.0

    @property
    def name(self) -> str:
        return self.ctx.name

    @property
    def summary(self) -> Summary:
        return self.ctx.summary

    def stop(self) -> None:
        self.stopping.set()

    async def run(self, *, once: bool = False) -> Summary:
        """Work until stopped (or, with once, until nothing is due); returns the totals.

        Pipelined: while one batch is on the wire, the previous one is recorded and the next
        one claimed, so that the connections never wait for the database. The caller closes
        the worker (`close()`) when done with it.
        """
        renew = asyncio.create_task(leases.renew_leases(self.ctx))
        try:
            await self._loop(once=once)
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
        return self.summary

    async def _loop(self, *, once: bool) -> None:
        sent: Sent | None = None  # on the wire before, not yet recorded
        batch: Batch | None = None  # claimed, not yet sent
        while True:
            if batch is None or not batch.claimed:
                if sent is not None:
                    await self._guard(self._record(sent, release=sent.domains), once=once)
                    sent = None
                if self.stopping.is_set():
                    return
                if batch is not None:  # the last claim found nothing to send now
                    if once and batch.state in (CycleState.idle, CycleState.paused):
                        return
                    await self._sleep(batch.state)
                    if self.stopping.is_set():
                        return
                await self._guard(self._housekeeping(), once=once)
                batch = await self._guard(self.claimer.claim(), once=once) or Batch.empty()
                continue
            between = asyncio.create_task(self._between(sent, keep=set(batch.slots), once=once))
            try:
                sent = await self.sender.send(batch.claimed, batch.slots)
            finally:
                batch = await between

    async def _record(self, sent: Sent, *, release: set[str]) -> None:
        await self.recorder.record(sent, release=release)

    async def _between(self, sent: Sent | None, *, keep: set[str], once: bool) -> Batch:
        """Record the previous batch and claim the next one (unless stopping).

        On PostgreSQL the two run at once, on two connections: they touch different letters,
        and the database gets a core of its own while this process sends. SQLite has one
        writer: there the record comes first. `keep`: domains of the batch on the wire.
        """
        if sent is None or self.ctx.is_sqlite:
            if sent is not None:
                await self._guard(self._record(sent, release=sent.domains - keep), once=once)
            return await self._next(keep, once=once)
        recorded, claimed = await asyncio.gather(
            self._guard(self._record(sent, release=set()), once=once),
            self._next(keep, once=once),
            return_exceptions=True,
        )
        for outcome in (recorded, claimed):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(claimed, Batch)
        # The recorded batch's slots, unless the batch on the wire or the new one uses them (the
        # record could not give them back itself: the claim may have just taken them again).
        release = sent.domains - keep - set(claimed.slots)
        if release:
            await self._guard(self._release(release), once=once)
        return claimed

    async def _next(self, keep: set[str], *, once: bool) -> Batch:
        if self.stopping.is_set():
            return Batch.empty()
        await self._guard(self._housekeeping(), once=once)  # a busy worker still requeues, purges
        claim = self.claimer.claim(in_flight=frozenset(keep))
        return await self._guard(claim, once=once) or Batch.empty(CycleState.throttled)

    async def _release(self, domains: set[str]) -> None:
        """Give back the concurrency slots this worker holds on these domains."""
        async with self.ctx.write() as conn:
            keys = [pacing.domain_key(d) for d in sorted(domains)]
            await self.ctx.budget.release_slots(conn, keys, holder=self.name)

    async def _guard(self, step: Awaitable[T], *, once: bool) -> T | None:
        """Run a database step; outside --once, survive its failure (the database may be down)."""
        try:
            return await step
        except Exception as exc:
            if once:
                raise
            # Log the type only: messages can carry SQL parameters, that is personal data. The
            # leases bring back whatever was claimed and not recorded.
            logger.error("worker step failed: %s; retrying", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stopping.wait(), timeout=self.settings.worker_poll_seconds
                )
            return None

    async def _sleep(self, state: CycleState) -> None:
        """Wait before the next claim; when idle, QUIT connections nobody has used for a while
        (only called with no batch on the wire)."""
        s = self.settings
        delay = s.worker_poll_seconds
        if state is CycleState.throttled:
            # Waiting for tokens: about one token's time, so a slow domain is not polled hot.
            delay = min(delay, max(0.05, 1 / max(min(s.domain_rate, s.send_rate), 1e-3)))
        else:
            await self.sender.close_idle()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=delay)

    async def close(self) -> None:
        await self.sender.close()
        await self.ctx.budget.close()
        if self._own_engine:
            await self.engine.dispose()

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_requeue >= min(5.0, self.settings.lease_seconds / 2):
            self._last_requeue = now
            self.summary.requeued += await self.requeue_expired()
        if now - self._last_purge >= self.settings.purge_interval_seconds:
            self._last_purge = now
            async with self.ctx.write() as conn:
                self.summary.purged += await purge(conn, settings=self.settings)

    async def requeue_expired(self) -> int:
        """Return letters whose lease ran out (their worker died) to the queue."""
        return await leases.requeue_expired(self.ctx)
