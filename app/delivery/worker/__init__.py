"""The send worker: claim due letters under a lease, send them over the relay pool, record.

One cycle: (1) claim (claim.py): in one transaction, take tokens from the shared buckets and
claim that many due letters per domain, moving them to `sending` with this worker's lease
(leases.py renews it and returns the letters of dead workers); (2) send (send.py) them over up
to `smtp_pool_size` persistent connections, at most the granted slots per domain at once; (3)
record (record.py) every outcome. The loop (loop.py) overlaps the steps. A worker that dies
leaves `sending` letters whose lease runs out; any worker returns them to the queue.
"""

from app.delivery.worker.context import Summary
from app.delivery.worker.loop import Worker, make_budget

__all__ = ["Summary", "Worker", "make_budget"]
