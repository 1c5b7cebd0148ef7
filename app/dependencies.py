"""FastAPI dependencies shared by every domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import begin_write
from app.ratelimit import RateLimiter

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        if request.method in WRITE_METHODS:
            # Concurrent writers then wait their turn (the busy timeout) instead of failing.
            await begin_write(session)
        yield session


async def get_plain_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session that begins nothing by itself: the route calls begin_write just before it
    writes, so that on SQLite the write lock is held for the writes only."""
    async with request.app.state.sessionmaker() as session:
        yield session


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


SessionDep = Annotated[AsyncSession, Depends(get_session)]
PlainSessionDep = Annotated[AsyncSession, Depends(get_plain_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
