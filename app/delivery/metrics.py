"""Prometheus metrics, computed from the database on each scrape.

Every worker process shares the database, so the numbers are the whole system's, with no
multiprocess registry to manage: each scrape builds a fresh CollectorRegistry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.delivery.models import SendPause
from app.letters.models import CLAIMABLE, Letter, LetterStatus

RATE_WINDOW = 60.0  # seconds over which sends per second are averaged


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


async def render(session: AsyncSession) -> bytes:
    """The metrics in Prometheus text format."""
    now = utcnow()
    metrics: list[Metric] = []

    by_status = GaugeMetricFamily("appeals_letters", "Letters by status.", labels=["status"])
    counts = dict(
        (await session.execute(select(Letter.status, func.count()).group_by(Letter.status))).all()
    )
    for status in LetterStatus:
        by_status.add_metric([status.value], float(counts.get(status, 0)))
    metrics.append(by_status)

    sent_total = CounterMetricFamily("appeals_letters_sent", "Letters delivered to the relay.")
    sent_total.add_metric([], float(counts.get(LetterStatus.sent, 0)))
    metrics.append(sent_total)

    recent = await session.scalar(
        select(func.count()).where(Letter.sent_at > now - dt.timedelta(seconds=RATE_WINDOW))
    )
    rate = GaugeMetricFamily(
        "appeals_sends_per_second", f"Letters sent per second over the last {RATE_WINDOW:.0f} s."
    )
    rate.add_metric([], float(recent or 0) / RATE_WINDOW)
    metrics.append(rate)

    failures = GaugeMetricFamily(
        "appeals_letter_failures",
        "Failed and deferred letters by the class of their last error.",
        labels=["status", "class"],
    )
    rows = await session.execute(
        select(Letter.status, Letter.failure_class, func.count())
        .where(
            Letter.status.in_([LetterStatus.failed, LetterStatus.deferred]),
            Letter.failure_class.is_not(None),
        )
        .group_by(Letter.status, Letter.failure_class)
    )
    for status, failure_class, n in rows.all():
        failures.add_metric([str(status), str(failure_class)], float(n))
    metrics.append(failures)

    oldest, oldest_due = (
        await session.execute(
            select(
                func.min(Letter.created_at),
                func.min(Letter.next_attempt_at).filter(
                    Letter.status.in_(CLAIMABLE), Letter.next_attempt_at <= now
                ),
            ).where(Letter.status.in_([*CLAIMABLE, LetterStatus.sending]))
        )
    ).one()
    age = GaugeMetricFamily(
        "appeals_queue_age_seconds",
        "Age of the oldest unsent letter (created), and how overdue the oldest due one is.",
        labels=["of"],
    )
    age.add_metric(["oldest_unsent"], _seconds(now, oldest))
    age.add_metric(["oldest_due"], _seconds(now, oldest_due))
    metrics.append(age)

    pauses = GaugeMetricFamily("appeals_send_pauses", "Pauses in force, by kind.", labels=["kind"])
    pause_rows = await session.execute(
        select(SendPause.kind, func.count())
        .where((SendPause.until.is_(None)) | (SendPause.until > now))
        .group_by(SendPause.kind)
    )
    for kind, n in pause_rows.all():
        pauses.add_metric([str(kind)], float(n))
    metrics.append(pauses)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(metrics))
    return generate_latest(registry)


def _seconds(now: dt.datetime, then: dt.datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # aggregates bypass the column type on SQLite
        then = dt.datetime.fromisoformat(str(then)).replace(tzinfo=dt.UTC)
    return max(0.0, (now - then).total_seconds())
