"""The send worker: claim due letters under a lease, send them over the relay pool, record.

The claim (claim.py) takes tokens from the shared buckets and moves that many due letters per
domain to `sending` under this worker's lease, in one transaction; leases.py renews the leases of
the letters in hand and returns those of dead workers. The send (send.py) runs them over up to
`smtp_pool_size` persistent connections, at most the granted slots per domain at once, and hands
each outcome to the record step (record.py, what it writes in outcomes.py), which writes them as
they come and keeps them in memory until the database has them. The loop (loop.py) runs the
steps, claiming the next batch while one is on the wire. What every step shares is in
context.py, what they hand one another in batches.py.
"""

from app.delivery.worker.context import Summary
from app.delivery.worker.loop import Worker, make_budget

__all__ = ["Summary", "Worker", "make_budget"]
