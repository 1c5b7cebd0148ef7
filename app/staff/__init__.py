"""Staff: accounts, roles, login sessions, API tokens, CSRF, login throttling, TOTP, audit log."""
