"""Every domain's models, imported in one place so that Alembic sees the whole schema.

Importing letters and delivery also registers their hooks (app/hooks.py; tests/test_hooks.py).
"""

from app.campaigns.models import AppealText, AppealVersion, Campaign, VersionRotation
from app.db import Base
from app.delivery.models import SendBudget, SendPause, SendSlot, SinkMessage
from app.deputies.models import Deputy, Legislature, Region
from app.letters.models import Letter, LetterMessage
from app.letters.submissions import ConfirmationEmail, Submission
from app.staff.models import ApiToken, AuditEntry, StaffMember, StaffSession
from app.stats.models import (
    CampaignDayCount,
    DayCount,
    DeputyCount,
    DeputyDayCount,
    TotalCount,
)

__all__ = [
    "ApiToken",
    "AppealText",
    "AppealVersion",
    "AuditEntry",
    "Base",
    "Campaign",
    "CampaignDayCount",
    "ConfirmationEmail",
    "DayCount",
    "Deputy",
    "DeputyCount",
    "DeputyDayCount",
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
    "TotalCount",
    "VersionRotation",
]
