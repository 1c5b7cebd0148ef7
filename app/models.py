"""Every domain's models, imported in one place so that Alembic sees the whole schema."""

from app.campaigns.models import AppealText, AppealVersion, Campaign, VersionRotation
from app.db import Base
from app.deputies.models import Deputy, Legislature, Region
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
    "Region",
    "StaffMember",
    "StaffSession",
    "VersionRotation",
]
