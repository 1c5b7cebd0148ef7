"""Campaigns, appeal texts, their versions (the unit a lawyer vets) and the variant rotation."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.deputies.models import LegislatureLevel, Region
from app.i18n import N_


class CampaignStatus(StrEnum):
    draft = "draft"
    published = "published"
    paused = "paused"
    closed = "closed"


class VersionStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    # A lawyer took the approval back: no letter of this version may be sent any more.
    withdrawn = "withdrawn"
    # A newer version of the same text was approved; letters already made from it stay valid.
    superseded = "superseded"


# The statuses' names in the catalogs: error messages that name a status translate it.
STATUS_NAMES = (
    N_("draft"),
    N_("published"),
    N_("paused"),
    N_("closed"),
    N_("in_review"),
    N_("approved"),
    N_("rejected"),
    N_("withdrawn"),
    N_("superseded"),
)

campaign_region = Table(
    "campaign_region",
    Base.metadata,
    Column("campaign_id", ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True),
    Column("region_id", ForeignKey("region.id"), primary_key=True),
)


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[CampaignStatus] = mapped_column(String(16), default=CampaignStatus.draft)
    # Targets: every region, or those in `regions`; deputies of legislatures of this level.
    all_regions: Mapped[bool] = mapped_column(Boolean, default=True)
    legislature_level: Mapped[LegislatureLevel] = mapped_column(
        String(16), default=LegislatureLevel.regional
    )
    # Only then may texts use citizen.address, and only then is it asked of citizens.
    requires_address: Mapped[bool] = mapped_column(Boolean, default=False)
    opens_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closes_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    regions: Mapped[list[Region]] = relationship(
        secondary=campaign_region, lazy="raise", order_by=Region.code
    )
    texts: Mapped[list[AppealText]] = relationship(
        back_populates="campaign", lazy="raise", order_by="AppealText.id"
    )

    @property
    def region_codes(self) -> list[str]:
        return [region.code for region in self.regions]


class AppealText(Base):
    """An appeal text; its wording lives in numbered, immutable versions."""

    __tablename__ = "appeal_text"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="texts", lazy="raise")
    versions: Mapped[list[AppealVersion]] = relationship(
        back_populates="text", lazy="raise", order_by="AppealVersion.number"
    )


class AppealVersion(Base):
    """One wording of a text. Subject and body never change once saved: a change is a new version.
    Only the status (and who moved it, when, why) changes, along VERSION_TRANSITIONS."""

    __tablename__ = "appeal_version"
    __table_args__ = (UniqueConstraint("text_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    text_id: Mapped[int] = mapped_column(ForeignKey("appeal_text.id"), index=True)
    # Denormalised from the text: the rotation query and the letters need it without a join.
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[VersionStatus] = mapped_column(String(16), default=VersionStatus.draft)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    review_comment: Mapped[str] = mapped_column(Text, default="")
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    withdrawal_comment: Mapped[str] = mapped_column(Text, default="")

    text: Mapped[AppealText] = relationship(back_populates="versions", lazy="raise")


class VersionRotation(Base):
    """How many letters each deputy got in a campaign: the next one gets the next variant."""

    __tablename__ = "version_rotation"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), primary_key=True)
    deputy_id: Mapped[int] = mapped_column(ForeignKey("deputy.id"), primary_key=True)
    counter: Mapped[int] = mapped_column(Integer, default=0)
