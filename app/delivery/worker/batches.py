"""What the worker's steps hand one another: the letters claimed (with their message bytes), a
batch with the concurrency slots it holds, and the result of sending a letter."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from app.delivery.smtp import Attempt

RELAY = "<relay>"  # the breaker's key for the relay itself (never a domain name)


@dataclass(slots=True)
class Claimed:
    id: int
    recipient: str
    domain: str
    message: bytes
    attempts: int
    first_attempt_at: dt.datetime
    appeal_version_id: int
    # The previous attempt's outcome was unknown (no reply after the final dot): see outcomes.
    unknown_before: bool = False


@dataclass(slots=True)
class Result:
    letter: Claimed
    attempt: Attempt | None  # None: released unsent (breaker opened, worker stopping)


class CycleState(StrEnum):
    worked = "worked"  # letters were claimed and processed
    throttled = "throttled"  # due letters wait for tokens or slots
    paused = "paused"  # the relay is paused
    idle = "idle"  # nothing due


@dataclass(slots=True)
class Batch:
    claimed: list[Claimed]
    slots: dict[str, int]  # concurrency slots held per domain
    state: CycleState

    @classmethod
    def empty(cls, state: CycleState = CycleState.idle) -> Batch:
        return cls([], {}, state)
