"""What counts as "the database is away", and the log of an outage: once when it starts, once
when it ends.

A web request that meets an outage answers 503 with Retry-After (app.failsafe); every other
unexpected error is a 500. The test is on the error's whole chain (SQLAlchemy wraps the driver's
error, which wraps the socket's), because the same outage reaches us in several shapes: a
refused connection comes as a bare ConnectionRefusedError from asyncpg's connect, a server shut
down under an open connection as SQLAlchemy's DBAPIError with `connection_invalidated`, a
starting server as asyncpg's CannotConnectNowError, a SQLite file that cannot be opened or stays
locked as sqlite3's OperationalError, a pool with no connection to give as SQLAlchemy's
TimeoutError.
"""

from __future__ import annotations

import errno
import logging
import socket
import sqlite3
import time
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

logger = logging.getLogger("appeals")

# Seconds a client is asked to wait before it tries again.
RETRY_AFTER = 5

_CONNECTION_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)
# PostgreSQL: connection exceptions (class 08) and these: the server is shutting down, was
# shut down or is starting up; too many connections; out of resources; a read-only standby
# (writes after a failover).
_POSTGRES_STATES = frozenset(
    {"57P01", "57P02", "57P03", "53000", "53100", "53200", "53300", "25006"}
)
# SQLite's primary result codes: busy, locked, read-only, I/O error, full, cannot open, lock
# protocol. Anything else (a missing table, a constraint) is a fault of ours, not an outage.
_SQLITE_CODES = frozenset({5, 6, 8, 10, 13, 14, 15})
_SQLITE_MESSAGES = (
    "unable to open database file",
    "database is locked",
    "disk i/o error",
    "readonly database",
    "database or disk is full",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error, what caused it (SQLAlchemy's `orig`, `__cause__`, `__context__`) and the
    members of exception groups, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 50:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                todo.append(linked)


def _is_outage(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection to give in time
        return True
    state = getattr(error, "sqlstate", None)  # PostgreSQL's drivers' errors (asyncpg, psycopg)
    if isinstance(state, str):
        return state.startswith("08") or state in _POSTGRES_STATES
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in _SQLITE_CODES
        return any(text in str(error).lower() for text in _SQLITE_MESSAGES)
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        return True
    return isinstance(error, OSError) and error.errno in _CONNECTION_ERRNOS


def is_outage(exc: BaseException) -> bool:
    """Whether this error means the database (or the network to it) is away for now."""
    return any(_is_outage(error) for error in _chain(exc))


class OutageLog:
    """Logs an outage once when the first request meets it and once when the database answers
    again (a new connection opened: `connected`), with how long it lasted and how many answers
    were 503 meanwhile; never a line per request."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.refused = 0

    def down(self, exc: BaseException) -> None:
        self.refused += 1
        if self.since is None:
            self.since = time.monotonic()
            logger.warning(
                "database unavailable (%s): answering 503 until it is back", _cause_name(exc)
            )

    def connected(self, *_args: object) -> None:
        """A connection to the database was opened (SQLAlchemy's pool `connect` event)."""
        if self.since is None:
            return
        lasted, refused = time.monotonic() - self.since, self.refused
        self.since, self.refused = None, 0
        logger.warning(
            "database available again after %.1f s (%d answers were 503 meanwhile)",
            lasted,
            refused,
        )


def _cause_name(exc: BaseException) -> str:
    """The name of the innermost error of the outage (the socket's or the driver's)."""
    names = [type(error).__name__ for error in _chain(exc) if _is_outage(error)]
    return names[-1] if names else type(exc).__name__
