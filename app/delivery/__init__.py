"""Delivery: turns queued letters into SMTP transactions, steadily and at most once at a time.

It sends the message bytes stored with each letter (built by app.mail when the letter was made);
it owns the SMTP pool and the reading of replies (smtp.py), the pacing shared by all workers and
the breaker (pacing.py), the worker loop (worker.py), the local sink (sink.py), the retention
purge, the Prometheus metrics and the `appeals worker` and `appeals delivery` commands.
"""
