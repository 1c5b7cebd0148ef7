"""Database outages as the background loops (the send worker, the confirmation sender) live
through them: the first failure is logged once (a WARNING when the database is unreachable, an
ERROR for anything else), the step is retried with a back-off that doubles up to a cap, and the
recovery is logged once. Whether an error means the database is away is decided by the one test
the web's 503 uses too (app.failsafe.is_outage). Only the exception's type is logged: messages
can carry SQL parameters, that is senders' personal data."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from app.failsafe import is_outage

FIRST_DELAY = 0.2  # seconds before the first retry
MAX_DELAY = 5.0  # the cap: a database that is back is noticed within this much


class Outage:
    """One loop's outage state, shared by its concurrent steps. Each step takes `started =
    outage.clock()` before it talks to the database, then calls `succeeded(started)` or
    `failed(exc, started)` (and `wait()` before trying again). A step begun before the last
    failure that still succeeds ends nothing it did not see; a step begun before the recovery
    that fails (a connection gone stale in the outage) starts no new one."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.logger = logger
        self.what = what  # who is speaking, e.g. "worker", "confirmation sender"
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.since: float | None = None  # monotonic time of the first failure; None: no outage
        self.failures = 0
        self.delay = first_delay
        self._last_failure = 0.0
        self._recovered_at = 0.0

    @property
    def active(self) -> bool:
        return self.since is not None

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    def failed(self, exc: BaseException, started: float) -> None:
        now = time.monotonic()
        self._last_failure = now
        if self.since is not None:
            self.failures += 1
            self.delay = min(self.max_delay, self.delay * 2)
            return
        if started < self._recovered_at:
            return  # begun during the outage that just ended: part of it
        self.since = now
        self.failures = 1
        self.delay = self.first_delay
        unreachable = is_outage(exc)
        self.logger.log(
            logging.WARNING if unreachable else logging.ERROR,
            "%s: %s (%s); retrying with back-off up to %g s",
            self.what,
            "database unreachable" if unreachable else "database step failed",
            type(exc).__name__,
            self.max_delay,
        )

    def succeeded(self, started: float) -> None:
        if self.since is None or started < self._last_failure:
            return
        now = time.monotonic()
        self.logger.warning(
            "%s: database reachable again after %.1f s (%d failed attempts)",
            self.what,
            now - self.since,
            self.failures,
        )
        self.since = None
        self.failures = 0
        self.delay = self.first_delay
        self._recovered_at = now

    async def wait(self, stopping: asyncio.Event | None = None) -> None:
        """Sleep the back-off delay (less if `stopping` is set meanwhile)."""
        if stopping is None:
            await asyncio.sleep(self.delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=self.delay)
