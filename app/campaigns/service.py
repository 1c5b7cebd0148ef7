"""The campaigns service as other packages use it (`from app.campaigns import service as
campaigns_service`): campaigns, appeal texts and their vetting; the variant choice and
rendering used for letters. Each part lives in the module named for it, re-exported here:

- lifecycle: campaigns, their targets and status (publish, pause, close);
- texts: texts and their versions, as editors write them, and diffs;
- vetting: the review queue, approval, rejection, withdrawal and the held letters' decision;
- variants: what a letter takes from its campaign (its version, its rendering, whether it may
  still be sent) and the staff preview;
- states: the state machines; audit: how each change is recorded.

Roles are enforced in those modules (not only in the routes), so that every caller, pages, API
or command line, gets the same rules: editors write, lawyers vet (never their own wording),
admins and editors change a campaign's status.

Hook points for the letters and delivery floors above (they import campaigns, never the
reverse):
- `choose_version(session, campaign_id=, deputy_id=)` picks the approved version a new letter
  uses (variants in turn per deputy); the letter stores that version's id.
- `render_letter(version, deputy=, citizen=, date=)` renders its subject and body.
- `withdraw_approval(...)` holds the version's letters and `set_campaign_status(...)` pauses or
  resumes a campaign's sending, through the hooks those floors register (app.campaigns.hooks);
  `version_is_sendable(session, version_id=)` says whether a version's letters may be sent.
"""

from __future__ import annotations

from app.campaigns.audit import generation
from app.campaigns.lifecycle import (
    approved_versions,
    create_campaign,
    get_campaign,
    list_campaigns,
    set_campaign_status,
    update_campaign,
)
from app.campaigns.states import (
    CAMPAIGN_TRANSITIONS,
    SENDABLE_VERSION_STATUSES,
    VERSION_TRANSITIONS,
    move_campaign,
    move_version,
)
from app.campaigns.texts import create_text, diff_versions, get_text, get_version, save_version
from app.campaigns.variants import choose_version, preview, render_letter, version_is_sendable
from app.campaigns.vetting import (
    approve_version,
    count_versions_by_status,
    decide_held_letters,
    held_letters,
    reject_version,
    review_queue,
    submit_version,
    withdraw_approval,
)

__all__ = [
    "CAMPAIGN_TRANSITIONS",
    "SENDABLE_VERSION_STATUSES",
    "VERSION_TRANSITIONS",
    "approve_version",
    "approved_versions",
    "choose_version",
    "count_versions_by_status",
    "create_campaign",
    "create_text",
    "decide_held_letters",
    "diff_versions",
    "generation",
    "get_campaign",
    "get_text",
    "get_version",
    "held_letters",
    "list_campaigns",
    "move_campaign",
    "move_version",
    "preview",
    "reject_version",
    "render_letter",
    "review_queue",
    "save_version",
    "set_campaign_status",
    "submit_version",
    "update_campaign",
    "version_is_sendable",
    "withdraw_approval",
]
