"""The worker loop: claim, send, record, pipelined so that the relay connections never wait for
the database. While a batch is on the wire, the next one is claimed, and the record step writes
the outcomes as they come (record.py). Between batches the loop requeues letters of dead
workers and runs the retention purge.

A database step that fails (the database is away) is retried with the outage's back-off: a
claim that failed claimed nothing (or, if its COMMIT was cut off, letters this worker then gives
back); a claim that committed is never dropped; outcomes wait in memory until recorded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import engine_for
from app.delivery import pacing
from app.delivery.purge import purge
from app.delivery.smtp import Relay
from app.delivery.worker import leases
from app.delivery.worker.batches import Batch, CycleState, Result
from app.delivery.worker.claim import Claimer
from app.delivery.worker.context import Summary, WorkerContext
from app.delivery.worker.record import Recorder
from app.delivery.worker.send import Sender


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
        self.recorder = Recorder(
            self.ctx,
            breaker=self.sender.breaker,
            stopping=self.stopping,
            connections=len(self.sender.connections),
        )
        self._last_requeue = 0.0
        self._last_purge = 0.0
        self._done_domains: set[str] = set()  # sent; their slots not yet given back
        self._strays = False  # a claim failed: its COMMIT may have gone through unheard

    @property
    def name(self) -> str:
        return self.ctx.name

    @property
    def summary(self) -> Summary:
        return self.ctx.summary

    def stop(self) -> None:
        self.stopping.set()

    async def run(self, *, once: bool = False) -> Summary:
        """Work until stopped (or, with once, until nothing is due); returns the totals. With
        once, a failed database step is raised instead of retried.

        Pipelined: while one batch is on the wire, the next one is claimed, so that the
        connections never wait for the database. The caller closes the worker (`close()`) when
        done with it.
        """
        self.recorder.once = once
        self.recorder.error = None
        renew = asyncio.create_task(leases.keep_renewed(self.ctx))
        record = asyncio.create_task(self.recorder.run())
        try:
            await self._loop(once=once)
        finally:
            for task in (renew, record):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return self.summary

    async def _loop(self, *, once: bool) -> None:
        batch: Batch | None = None  # claimed, not yet sent
        try:
            while True:
                if batch is None or not batch.claimed:
                    await self.recorder.flush()
                    if self.stopping.is_set():
                        return
                    if batch is not None:  # the last claim found nothing to send now
                        await self._release_done(once=once)
                        if once and batch.state in (CycleState.idle, CycleState.paused):
                            return
                        await self._sleep(batch.state)
                        if self.stopping.is_set():
                            return
                    batch = await self._next(frozenset(), once=once)
                    continue
                keep = frozenset(batch.slots)
                between = asyncio.create_task(self._next(keep, once=once))
                try:
                    await self.sender.send(batch.claimed, batch.slots, self.recorder)
                finally:
                    self._done_domains |= keep
                    batch = await between
        finally:
            if batch is not None and batch.claimed:  # claimed while stopping: never sent
                for letter in batch.claimed:
                    self.recorder.add(Result(letter, None))
            await self.recorder.flush()
            await self._release_done(once=once)

    async def _next(self, keep: frozenset[str], *, once: bool) -> Batch:
        """Requeue and purge when due, then claim the next batch and read its messages (unless
        stopping). `keep`: domains of the batch on the wire, whose slots it still uses."""
        if self.stopping.is_set():
            return Batch.empty()
        await self._step(self._housekeeping, once=once)
        release = frozenset(self._done_domains)
        started = self.ctx.outage.clock()
        try:
            batch = await self.claimer.claim(in_flight=keep, release=release)
        except Exception as exc:
            if once:
                raise
            self._strays = True
            self.ctx.outage.failed(exc, started)
            await self.ctx.outage.wait(self.stopping)
            return Batch.empty(CycleState.throttled)
        self.ctx.outage.succeeded(started)
        # Given back, or held again by the new batch. Those of the batch on the wire stay: it
        # adds them again when it is done, maybe while this claim ran.
        self._done_domains -= release - keep
        return await self._with_messages(batch, once=once)

    async def _with_messages(self, batch: Batch, *, once: bool) -> Batch:
        """Read the claimed letters' messages, retried until the database answers: the claim
        committed, so they are this worker's to send (or, if it stops meanwhile, to give back)."""
        while batch.claimed:
            started = self.ctx.outage.clock()
            try:
                await self.claimer.with_messages(batch.claimed)
            except Exception as exc:
                if once:
                    raise
                self.ctx.outage.failed(exc, started)
                if self.stopping.is_set():
                    for letter in batch.claimed:
                        self.recorder.add(Result(letter, None))
                    self._done_domains |= set(batch.slots)
                    return Batch.empty()
                await self.ctx.outage.wait(self.stopping)
                continue
            self.ctx.outage.succeeded(started)
            break
        return batch

    async def _release_done(self, *, once: bool) -> None:
        """Give back the slots of the domains whose letters are all sent."""
        domains = frozenset(self._done_domains)
        if not domains:
            return

        async def release() -> bool:
            async with self.ctx.write() as conn:
                keys = [pacing.domain_key(d) for d in sorted(domains)]
                await self.ctx.budget.release_slots(conn, keys, holder=self.name)
            self._done_domains -= domains
            return True

        await self._step(release, once=once)

    async def _step(self, step: Callable[[], Awaitable[bool]], *, once: bool) -> None:
        """Run a database step that may be skipped this time (the next cycle tries again); it
        returns whether it used the database at all (only then does its success end an
        outage)."""
        started = self.ctx.outage.clock()
        try:
            used = await step()
        except Exception as exc:
            if once:
                raise
            self.ctx.outage.failed(exc, started)
            return
        if used:
            self.ctx.outage.succeeded(started)

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

    async def _housekeeping(self) -> bool:
        """Give back strays, requeue and purge, each when due; whether any was."""
        now = time.monotonic()
        used = False
        if self._strays:
            await leases.release_strays(self.ctx)
            self._strays = False
            used = True
        if now - self._last_requeue >= min(5.0, self.settings.lease_seconds / 2):
            self._last_requeue = now
            self.summary.requeued += await self.requeue_expired()
            used = True
        if now - self._last_purge >= self.settings.purge_interval_seconds:
            self._last_purge = now
            async with self.ctx.write() as conn:
                self.summary.purged += await purge(conn, settings=self.settings)
            used = True
        return used

    async def requeue_expired(self) -> int:
        """Return letters whose lease ran out (their worker died) to the queue."""
        return await leases.requeue_expired(self.ctx)
