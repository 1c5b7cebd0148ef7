"""The size of each page of the citizen's flow, as served (uncompressed HTML) and gzipped.

Run: .venv/bin/python -m bench.page_sizes
A fresh SQLite database with a region of 50 deputies and an open campaign; each page is fetched
through the app as a citizen would go (the preview and status pages for 3 letters and for 50).
"""

from __future__ import annotations

import asyncio
import gzip
import re
import tempfile
from pathlib import Path

import httpx
from sqlalchemy import select

from app import migrate
from app.config import Settings
from app.letters.submissions import ConfirmationEmail
from app.main import create_app
from app.templating import STATIC_DIR
from bench.intake import HIGH, SECRET, _seed


async def _last_confirmation_body(app: object) -> str:
    """The body of the newest confirmation e-mail in the outbox (nothing is sent here)."""
    async with app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        body = await session.scalar(
            select(ConfirmationEmail.body).order_by(ConfirmationEmail.id.desc()).limit(1)
        )
    assert body is not None
    return str(body)


def _row(name: str, body: bytes) -> str:
    return f"| {name} | {len(body):,} | {len(gzip.compress(body)):,} |"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'sizes.sqlite3'}"
        await asyncio.to_thread(migrate.upgrade, url)
        ids, _ = await _seed(url)
        settings = Settings(
            environment="test", database_url=url, secret_key=SECRET, public_url="http://x",
            limit_submit_per_address=HIGH, limit_submit_per_email=HIGH,
        )  # fmt: skip
        app = create_app(settings)
        rows = ["| page | bytes | gzipped |", "|---|---:|---:|"]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:

            async def get(name: str, path: str) -> None:
                response = await client.get(path)
                assert response.status_code == 200, (path, response.status_code)
                rows.append(_row(name, response.content))

            async def post(name: str, path: str, data: dict[str, object]) -> httpx.Response:
                response = await client.post(path, data=data)
                if name:
                    rows.append(_row(name, response.content))
                return response

            await get("home `/`", "/")
            await get("campaign (text and region choice)", "/campaigns/bench")
            await get("region: 50 deputies and the form", "/campaigns/bench/RU-BEN")
            sender = {"full_name": "Мария Петрова", "locality": "Тверь", "consent": "yes"}
            for count in (3, 50):
                await post(
                    f"preview of {count} letters",
                    "/campaigns/bench/RU-BEN/preview",
                    {**sender, "email": f"p{count}@example.org", "deputy": ids[:count]},
                )
            await post(
                "",
                "/campaigns/bench/RU-BEN/submit",
                {**sender, "email": "s@example.org", "deputy": ids},
            )
            await get("check your e-mail", "/check-email")
            confirm, status = re.findall(r"http://x(/\S+)", await _last_confirmation_body(app))
            await get("confirmation (the button)", confirm)
            await post("confirmed (thank you)", confirm, {})
            await get("status of 50 letters", status)
            rows.append(_row("app.css (shared, cached)", (STATIC_DIR / "app.css").read_bytes()))
        await app.state.engine.dispose()
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
