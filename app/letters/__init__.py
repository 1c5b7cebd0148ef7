"""Letters: the outbox rows the citizen flow creates, their state machine, and what staff and
citizens may do to letters not yet sent (hold, release, cancel)."""
