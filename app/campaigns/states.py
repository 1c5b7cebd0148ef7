"""The state machines of campaigns and appeal versions: the allowed moves and the one function
each that enforces them."""

from __future__ import annotations

from app.campaigns.models import AppealVersion, Campaign, CampaignStatus, VersionStatus
from app.errors import Conflict

CAMPAIGN_TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.draft: frozenset({CampaignStatus.published, CampaignStatus.closed}),
    CampaignStatus.published: frozenset({CampaignStatus.paused, CampaignStatus.closed}),
    CampaignStatus.paused: frozenset({CampaignStatus.published, CampaignStatus.closed}),
    CampaignStatus.closed: frozenset(),
}

VERSION_TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    VersionStatus.draft: frozenset({VersionStatus.in_review}),
    VersionStatus.in_review: frozenset({VersionStatus.approved, VersionStatus.rejected}),
    VersionStatus.approved: frozenset({VersionStatus.withdrawn, VersionStatus.superseded}),
    VersionStatus.rejected: frozenset(),
    VersionStatus.withdrawn: frozenset(),
    # Its letters may still be queued: a lawyer can still take the approval back.
    VersionStatus.superseded: frozenset({VersionStatus.withdrawn}),
}


# Letters of these versions may be sent; a withdrawn version's letters are held.
SENDABLE_VERSION_STATUSES = frozenset({VersionStatus.approved, VersionStatus.superseded})


def move_campaign(campaign: Campaign, to: CampaignStatus) -> None:
    """Change a campaign's status along CAMPAIGN_TRANSITIONS; Conflict otherwise."""
    if to not in CAMPAIGN_TRANSITIONS[CampaignStatus(campaign.status)]:
        raise Conflict(
            "A campaign that is {status} cannot become {to}.",
            field="status",
            status=CampaignStatus(campaign.status),
            to=to,
        )
    campaign.status = to


def move_version(version: AppealVersion, to: VersionStatus) -> None:
    """Change a version's status along VERSION_TRANSITIONS; Conflict otherwise."""
    if to not in VERSION_TRANSITIONS[VersionStatus(version.status)]:
        raise Conflict(
            "A version that is {status} cannot become {to}.",
            field="status",
            status=VersionStatus(version.status),
            to=to,
        )
    version.status = to
