"""Choose each request's language: the visitor's choice (a cookie), else Accept-Language."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.i18n import SUPPORTED, current_language, negotiate

COOKIE = "lang"


def choose_language(headers: Headers) -> str:
    # Starlette's lenient parser: one odd cookie of another site's must not hide ours.
    chosen = cookie_parser(headers.get("cookie", "")).get(COOKIE)
    if chosen in SUPPORTED:
        return chosen
    return negotiate(headers.get("accept-language"))


class LanguageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        language = choose_language(Headers(scope=scope))
        token = current_language.set(language)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-language", language)
                headers.add_vary_header("Accept-Language")
                headers.add_vary_header("Cookie")
            await send(message)

        try:
            await self.app(scope, receive, send_with_language)
        finally:
            current_language.reset(token)
