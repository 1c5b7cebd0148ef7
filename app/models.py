"""Every domain's models, imported in one place so that Alembic sees the whole schema."""

from app.db import Base
from app.deputies.models import Deputy, Legislature, Region

__all__ = ["Base", "Deputy", "Legislature", "Region"]
