"""The last line of defence: an unexpected exception becomes a plain 500, logged without a message;
the database being away (app.outage) becomes a 503 with Retry-After, logged once per outage.

Starlette's own handler for `Exception` re-raises after answering, and the server then logs the
whole traceback with the exception's message, where SQL parameters (senders' names and addresses)
and secret links would end up. This middleware, innermost among ours, answers instead and logs only
the exception's type, the innermost place in our code and the route's template. The security and
language middleware outside it still see the response.

Everything inside it is covered: routes (the plain Starlette submit route too), dependencies,
exception handlers, the code after a dependency's `yield`. The start of a response is held back
until its body begins, so that a streamed response whose first chunk meets the error (an export
reading the database) is still a whole 503 or 500; once a body has begun, the error can only cut
the response short.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.outage import OutageLog, is_outage

logger = logging.getLogger("appeals")
PROJECT_DIR = str(Path(__file__).resolve().parent.parent)

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
            # FastAPI's router names its own routes in the scope; a plain Starlette route (the
            # submit page) is named by its endpoint.
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
