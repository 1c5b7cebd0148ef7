"""What other domains use of statistics, in one place: `from app.stats import service as
stats_service`.

The functions live in the modules named after what they hold: a filter resolved into a Scope
(app.stats.filters), the dashboard's figures (app.stats.figures), the public counter
(app.stats.public), the rows of an export (app.stats.aggregates) and the recount and check of the
counters (app.stats.consistency). Code inside app.stats imports those modules directly. Services
flush at most; callers own the transaction.
"""

from __future__ import annotations

from app.stats.aggregates import EXPORT_COLUMNS, export_rows
from app.stats.consistency import COUNTERS, discrepancies, recount
from app.stats.figures import (
    Counts,
    by_campaign,
    by_day,
    by_domain,
    by_legislature,
    by_region,
    distinct_senders,
    top_deputies,
    totals,
)
from app.stats.filters import Scope, resolve
from app.stats.public import PUBLIC_TTL_SECONDS, clear_public_cache, letters_sent, public_campaign

__all__ = [
    "COUNTERS",
    "EXPORT_COLUMNS",
    "PUBLIC_TTL_SECONDS",
    "Counts",
    "Scope",
    "by_campaign",
    "by_day",
    "by_domain",
    "by_legislature",
    "by_region",
    "clear_public_cache",
    "discrepancies",
    "distinct_senders",
    "export_rows",
    "letters_sent",
    "public_campaign",
    "recount",
    "resolve",
    "top_deputies",
    "totals",
]
