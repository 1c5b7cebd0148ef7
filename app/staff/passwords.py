"""Staff passwords: the policy a new one must meet, and Argon2id hashing off the event loop."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import Settings
from app.errors import InvalidInput

PASSWORD_MIN = 12
# Argon2 hashes whatever it is given: bound the work an attacker can ask for.
PASSWORD_MAX = 1024


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(
        settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
    )


def check_password_policy(password: str) -> None:
    """Refuse passwords that are too short or absurdly long."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(
            "The password needs at least {count} characters.", field="password", count=PASSWORD_MIN
        )
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(
            "The password may have at most {count} characters.",
            field="password",
            count=PASSWORD_MAX,
        )


async def hash_password(password: str, *, settings: Settings) -> str:
    """An Argon2id hash, computed off the event loop."""
    return await asyncio.to_thread(hasher(settings).hash, password)


async def verify_password(password_hash: str, password: str, *, settings: Settings) -> bool:
    """Whether the password matches the hash (a malformed hash matches nothing)."""

    def verify() -> bool:
        try:
            return hasher(settings).verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


async def verify_nothing(password: str, *, settings: Settings) -> None:
    """Spend the time of a verification against a hash of no one's password: a login for an
    address without an account must take as long as one for a real account."""
    dummy = _dummy_hash(
        settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
    )
    await verify_password(dummy, password[:PASSWORD_MAX], settings=settings)


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash("not a password of anyone")
