"""Campaigns, their appeal texts and versions, the lawyers' vetting workflow, sandboxed rendering
of letters and the choice of variant for each letter.

Campaigns import neither letters nor delivery (they stand above): what a decision does to
letters already made goes through the hooks in hooks.py, which those packages fill."""
