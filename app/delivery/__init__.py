"""Delivery: turns queued letters into SMTP transactions, steadily and at most once at a time.

It owns the message bytes (message.py), the SMTP pool and the reading of replies (smtp.py), the
pacing shared by all workers and the breaker (pacing.py), the send worker (worker/: the claim,
the send, the record and the loop that runs them), the local sink (sink.py), the retention
purge, the Prometheus metrics and the `appeals worker` and `appeals delivery` commands.
"""
