"""The last line of defence: an unexpected exception becomes a plain 500, logged without a message;
the database being away (is_outage) becomes a 503 with Retry-After, logged once per outage.

Starlette's own handler for `Exception` re-raises after answering, and the server then logs the
whole traceback with the exception's message, where SQL parameters (senders' names and addresses)
and secret links would end up. This middleware, innermost among ours, answers instead and logs only
the exception's type, the innermost place in our code and the route's template. The security and
language middleware outside it still see the response.

Everything inside it is covered: routes, dependencies, exception handlers, the code after a
dependency's `yield`. The start of a response is held back until its body begins, so that a
streamed response whose first chunk meets the error (an export reading the database) is still a
whole 503 or 500; once a body has begun, the error can only cut the response short.

What counts as "the database is away" (`is_outage`) is decided on the error's whole chain
(SQLAlchemy wraps the driver's error, which wraps the socket's), because the same outage reaches
us in several shapes: a refused connection comes as a bare ConnectionRefusedError from asyncpg's
connect, a server shut down under an open connection as SQLAlchemy's DBAPIError with
`connection_invalidated`, a starting server as asyncpg's CannotConnectNowError (SQLSTATE 57P03),
a SQLite file that cannot be opened or stays locked as sqlite3's OperationalError, a pool with no
connection to give as SQLAlchemy's TimeoutError. Background loops may use it too.
"""

from __future__ import annotations

import errno
import logging
import socket
import sqlite3
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("appeals")
PROJECT_DIR = str(Path(__file__).resolve().parent.parent)

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


Render = Callable[[Request], Response]


def where(exc: BaseException) -> str:
    """The innermost frame in the project's own code (not a library's), as file:line."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [
        f
        for f in frames
        if f.filename.startswith(PROJECT_DIR) and "site-packages" not in f.filename
    ] or frames
    return f"{ours[-1].filename}:{ours[-1].lineno}" if ours else "?"


class FailsafeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        render: Render,
        *,
        render_unavailable: Render,
        outage: OutageLog,
        log_traceback: bool = False,
    ) -> None:
        self.app = app
        self.render = render
        self.render_unavailable = render_unavailable
        self.outage = outage
        # Only where no real sender's data can be involved (the test environment).
        self.log_traceback = log_traceback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        started = False

        async def watch(message: Message) -> None:
            nonlocal held, started
            if message["type"] == "http.response.start":
                held = message  # sent with the first part of the body
                return
            if held is not None:
                start, held = held, None
                started = True
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if is_outage(exc):
                self.outage.down(exc)
                if not started:
                    await self.render_unavailable(Request(scope, receive))(scope, receive, send)
                return
            # FastAPI's router names its routes in the scope; any other is named by its endpoint.
            route = getattr(scope.get("route"), "path", None) or getattr(
                scope.get("endpoint"), "__qualname__", "?"
            )
            logger.error(
                "unexpected %s at %s on %s %s",
                type(exc).__name__, where(exc), scope.get("method"), route,
                exc_info=exc if self.log_traceback else None,
            )  # fmt: skip
            if not started:  # else the response is cut short; nothing more can be sent
                await self.render(Request(scope, receive))(scope, receive, send)
            return
        if held is not None:  # a start and no body at all (not valid ASGI, but let it through)
            await send(held)
