"""Delivery: turns queued letters into SMTP transactions, steadily and at most once at a time.

It sends the message bytes stored with each letter (built by app.mail when the letter was made);
it owns the SMTP pool and the reading of replies (smtp.py), the pacing shared by all workers and
the breaker (pacing.py), the send worker (worker/: the claim, the send, the record and the loop
that runs them), the local sink (sink.py), the retention
purge, the Prometheus metrics and the `appeals worker` and `appeals delivery` commands.

Importing the package registers its service as the hook campaigns call to pause and resume a
campaign's sending (app.campaigns.hooks) and the one letters call to stop or resume the sending
of held and cancelled letters (app.letters.hooks).
"""

from app.campaigns import hooks as _campaigns_hooks
from app.delivery import service as _service
from app.letters import hooks as _letters_hooks

_campaigns_hooks.delivery.register(_service)
_letters_hooks.delivery.register(_service)
