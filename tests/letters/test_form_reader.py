"""The citizen's form posts are read by web.read_form, which must read them as Starlette would."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.letters import web


@pytest.mark.parametrize(
    "body",
    [
        b"full_name=%D0%9C%D0%B0%D1%80%D0%B8%D1%8F+%D0%9F&deputy=1&deputy=2&deputy=1",
        b"a=1&&b=&c&=d&e==f",
        b"name=%FF%FE&%C3%28=x&v=%E2%82",  # bad UTF-8 escapes: replaced
        "raw=Мария&x=a+b%2Bc".encode(),  # unescaped UTF-8 bytes, as some clients send
        b"t=%0D%0ABcc:+x@example.org&u=%00%01",
        b"",
    ],
)
async def test_form_reader_agrees_with_starlettes_parser(body: bytes) -> None:
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]

    def request() -> Request:
        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "headers": headers, "app": None}
        return Request(scope, receive)

    ours = await web.read_form(request())
    theirs = await request().form()
    assert ours.multi_items() == theirs.multi_items()
