"""Campaigns, their appeal texts and versions, the lawyers' vetting workflow, sandboxed rendering
of letters and the choice of variant for each letter."""
