"""Counter tables of letters, kept by database triggers on `letter` (see the 0006 migration).

Every insert, status change and delete of a letter moves one unit between rows of these tables in
the same transaction, whatever code made the change (ORM, the worker's bulk UPDATEs, SQL by hand),
so the application never has to remember to call a hook. They hold counts only: nothing here can
name a sender. Days are UTC days of the letter's creation.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class DayCount(Base):
    """Letters by campaign, legislature, UTC day of creation, recipient domain and status.

    Small (no deputy in the key): the dashboard's totals, days, regions and domains read it.
    """

    __tablename__ = "stats_day"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    legislature_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    recipient_domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class DeputyDayCount(Base):
    """Letters by campaign, deputy, UTC day of creation, recipient domain and status: the finest
    grain that statistics offer, read by the deputy table and the exports."""

    __tablename__ = "stats_deputy_day"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deputy_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    recipient_domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class TotalCount(Base):
    """Letters by campaign, legislature, recipient domain and status, over the whole period:
    the dashboard without a date filter reads this (a few thousand rows)."""

    __tablename__ = "stats_total"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    legislature_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class CampaignDayCount(Base):
    """Letters by campaign, UTC day of creation and status: letters per day without a region."""

    __tablename__ = "stats_campaign_day"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class DeputyCount(Base):
    """Letters by campaign, deputy and status, over the whole period: the top deputies."""

    __tablename__ = "stats_deputy"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deputy_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
