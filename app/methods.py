"""The methods of a path, as `Allow` says them: on every 405, and as the answer to OPTIONS.

FastAPI makes one route per method, and Starlette's 405 names the methods of the first route
whose path matched: GET /api/v1/staff/campaigns also takes POST, yet DELETE on it was told
`Allow: GET`, and OPTIONS was a 405 too. Here the methods come from every route whose path
matches, as the router would try them, and OPTIONS is answered (204) for any path a route has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi.routing import iter_route_contexts
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# RFC 9110's order for the usual methods; any other after them, alphabetically.
ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class RouteInfo:
    pattern: re.Pattern[str]
    methods: frozenset[str]


def route_table(routes: Iterable[BaseRoute]) -> list[RouteInfo]:
    """Each route's path pattern (included routers' prefixes applied) with its methods; mounts,
    which have none, left out."""
    table = []
    for route in iter_route_contexts(list(routes)):
        methods = getattr(route, "methods", None)
        pattern = getattr(route, "path_regex", None)
        if methods and pattern is not None:
            table.append(RouteInfo(pattern, frozenset(methods)))
    return table


def allowed(table: list[RouteInfo], path: str) -> str:
    """The Allow header for a path: every method of every route matching it, and OPTIONS; empty
    when no route matches."""
    methods: set[str] = set()
    for route in table:
        if route.pattern.match(path):
            methods |= route.methods
    if not methods:
        return ""
    methods.add("OPTIONS")
    return ", ".join(sorted(methods, key=lambda m: (ORDER.index(m) if m in ORDER else 99, m)))


class AllowMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: list[RouteInfo] | None = None

    def _allowed(self, scope: Scope) -> str:
        if self._table is None:  # built once, at the first need: every route is there by then
            self._table = route_table(scope["app"].routes)
        return allowed(self._table, scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            allow = self._allowed(scope)
            if allow:
                await Response(status_code=204, headers={"allow": allow})(scope, receive, send)
                return

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = self._allowed(scope)
                if allow:
                    MutableHeaders(scope=message)["allow"] = allow
            await send(message)

        await self.app(scope, receive, send_allow)
