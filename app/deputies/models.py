"""Regions, legislatures and deputies. Deputies are never deleted: letters point at them."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


class LegislatureLevel(StrEnum):
    regional = "regional"
    city = "city"
    municipal = "municipal"


class Gender(StrEnum):
    male = "m"
    female = "f"


class Region(Base):
    __tablename__ = "region"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))

    legislatures: Mapped[list[Legislature]] = relationship(
        back_populates="region", lazy="raise", order_by="Legislature.id"
    )


class Legislature(Base):
    __tablename__ = "legislature"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    level: Mapped[LegislatureLevel] = mapped_column(String(16))
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))

    region: Mapped[Region] = relationship(back_populates="legislatures", lazy="raise")


class Deputy(Base):
    __tablename__ = "deputy"
    __table_args__ = (Index("ix_deputy_legislature_id_is_active", "legislature_id", "is_active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    legislature_id: Mapped[int] = mapped_column(ForeignKey("legislature.id"))
    surname: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    patronymic: Mapped[str] = mapped_column(String(100), default="")
    gender: Mapped[Gender | None] = mapped_column(String(1))
    position: Mapped[str] = mapped_column(String(200))
    party: Mapped[str] = mapped_column(String(200), default="")
    constituency: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254))
    reception_address: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    legislature: Mapped[Legislature] = relationship(lazy="raise")

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.surname, self.first_name, self.patronymic) if p)

    @property
    def inferred_gender(self) -> Gender | None:
        """The recorded gender, or the one a Russian patronymic implies."""
        if self.gender is not None:
            return Gender(self.gender)
        ending = self.patronymic.lower()
        if ending.endswith(("вич", "ич", "оглы", "улы")):
            return Gender.male
        if ending.endswith(("вна", "чна", "кызы", "гызы")):
            return Gender.female
        return None

    @property
    def region(self) -> Region:
        return self.legislature.region


@event.listens_for(Deputy, "before_delete")
def _refuse_delete(_mapper: object, _connection: object, deputy: Deputy) -> None:
    # Letters point at deputies; a deputy who leaves office is deactivated instead.
    raise ValueError(f"deputy {deputy.id} cannot be deleted: set is_active to False instead")
