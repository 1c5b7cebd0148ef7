"""Letters: the outbox rows the citizen flow creates, their state machine, and what staff and
citizens may do to letters not yet sent (hold, release, cancel).

Importing the package registers its service as the campaigns' hook for the letters of a vetted
version (app.campaigns.hooks): a withdrawal holds them, a lawyer releases or cancels them.
"""

from app.campaigns import hooks as _campaigns_hooks
from app.letters import service as _service

_campaigns_hooks.letters.register(_service)
