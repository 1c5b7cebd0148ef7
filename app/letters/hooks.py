"""What letters need from the delivery floor above them.

Delivery imports letters; letters never imports delivery. Yet a letter held or cancelled while a
worker has it on the wire must not be sent as if nothing happened, so holding, releasing and
cancelling letters tell delivery through this hook, in the same transaction; so does a citizen's
erase, which deletes their messages from the local sink.
app/delivery/__init__.py registers app.delivery.service (see app/hooks.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.hooks import Hook


class LetterDelivery(Protocol):
    """Stopping and resuming the sending of letters (app.delivery.service)."""

    async def stop_version(
        self, session: AsyncSession, *, appeal_version_id: int, cancel: bool
    ) -> None: ...

    async def resume_version(self, session: AsyncSession, *, appeal_version_id: int) -> None: ...

    async def stop_letters(self, session: AsyncSession, *, letter_ids: Sequence[int]) -> None: ...

    async def erase_sink_messages(
        self, session: AsyncSession, *, letter_ids: Sequence[int], address: str | None
    ) -> int: ...


delivery: Hook[LetterDelivery] = Hook("the delivery of letters", provider="app.delivery")
