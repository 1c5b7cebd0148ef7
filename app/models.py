"""Every domain's models, imported in one place so that Alembic sees the whole schema."""

from app.db import Base
from app.delivery.models import SendBudget, SendPause, SendSlot, SinkMessage
from app.deputies.models import Deputy, Legislature, Region
from app.letters.models import Letter, LetterMessage

__all__ = [
    "Base",
    "Deputy",
    "Legislature",
    "Letter",
    "LetterMessage",
    "Region",
    "SendBudget",
    "SendPause",
    "SendSlot",
    "SinkMessage",
]
