"""Every domain's models, imported in one place so that Alembic sees the whole schema."""

from app.campaigns.models import AppealText, AppealVersion, Campaign, VersionRotation
from app.db import Base
from app.delivery.models import SendBudget, SendPause, SendSlot, SinkMessage
from app.deputies.models import Deputy, Legislature, Region
from app.letters.models import Letter, LetterMessage
from app.letters.submissions import Submission
from app.staff.models import ApiToken, AuditEntry, StaffMember, StaffSession

__all__ = [
    "ApiToken",
    "AppealText",
    "AppealVersion",
    "AuditEntry",
    "Base",
    "Campaign",
    "Deputy",
    "Legislature",
    "Letter",
    "LetterMessage",
    "Region",
    "SendBudget",
    "SendPause",
    "SendSlot",
    "SinkMessage",
    "StaffMember",
    "StaffSession",
    "Submission",
    "VersionRotation",
]
