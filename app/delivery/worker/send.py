"""The send step: a batch over the worker's pool of relay connections, at most the granted
slots per domain at once, each outcome handed to the record step as soon as the relay answers,
with the breaker counting consecutive errors of each domain and of the relay (and halting them
in this worker at once when it opens)."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from app.delivery import pacing
from app.delivery.models import PauseKind
from app.delivery.smtp import Connection, Outcome
from app.delivery.worker.batches import RELAY, Claimed, Result
from app.delivery.worker.context import WorkerContext
from app.delivery.worker.record import Recorder


class Halts:
    """Domains (or RELAY) the breaker halted in this worker, until when (monotonic time)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def halt(self, key: str, seconds: float) -> None:
        self._until[key] = time.monotonic() + seconds

    def __call__(self, key: str) -> bool:
        """Whether `key` is halted now."""
        until = self._until.get(key)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._until[key]
        return False


class Sender:
    def __init__(self, ctx: WorkerContext, *, stopping: asyncio.Event) -> None:
        self.ctx = ctx
        self.stopping = stopping
        self.connections = [Connection(ctx.relay) for _ in range(max(1, ctx.relay.pool_size))]
        self.breaker = pacing.Breaker(
            threshold=ctx.settings.breaker_threshold,
            pause_seconds=ctx.settings.breaker_pause_seconds,
        )
        self.halted = Halts()

    def _open_breaker(self, key: str, recorder: Recorder) -> None:
        self.halted.halt(key, self.ctx.settings.breaker_pause_seconds)
        recorder.breaker_opened(key)

    async def send(self, claimed: list[Claimed], slots: dict[str, int], recorder: Recorder) -> None:
        """Send a batch; every letter's result goes to `recorder` (None: released unsent)."""
        queue = deque(claimed)
        semaphores = {domain: asyncio.Semaphore(n) for domain, n in slots.items()}
        mail_from = self.ctx.settings.mail_from
        relay = self.ctx.relay.name
        halted = self.halted

        async def lane(connection: Connection) -> None:
            while queue:
                letter = queue.popleft()
                if self.stopping.is_set() or halted(RELAY) or halted(letter.domain):
                    recorder.add(Result(letter, None))
                    continue
                if recorder.unrecorded >= recorder.max_unrecorded:
                    await recorder.room()
                async with semaphores[letter.domain]:
                    attempt = await connection.send(
                        mail_from=mail_from, rcpt=letter.recipient, message=letter.message
                    )
                recorder.add(Result(letter, attempt))
                if attempt.relay_error:
                    if self.breaker.failure(PauseKind.relay, relay):
                        self._open_breaker(RELAY, recorder)
                    continue
                self.breaker.success(PauseKind.relay, relay)
                if attempt.outcome is Outcome.deferred:
                    if self.breaker.failure(PauseKind.domain, letter.domain):
                        self._open_breaker(letter.domain, recorder)
                else:
                    self.breaker.success(PauseKind.domain, letter.domain)

        lanes = self.connections[: min(len(self.connections), len(claimed))]
        await asyncio.gather(*(lane(c) for c in lanes))

    async def close_idle(self) -> None:
        """QUIT connections nobody has used for a while."""
        await asyncio.gather(*(c.close_if_idle() for c in self.connections))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)
