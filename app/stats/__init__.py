"""Statistics: letter totals kept by database triggers, the public counter, the analysts'
dashboard with server-drawn charts, and exports of aggregates (never a sender's data)."""
