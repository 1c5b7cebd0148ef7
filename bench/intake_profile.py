"""Profile one submission and one confirmation at a time, in process (no server, no wrk).

Run: .venv/bin/python -m bench.intake_profile [--database sqlite] [--count 200] [--profile submit]

The same seed as bench/intake.py (a region of 50 deputies, an open campaign); requests go through
the whole ASGI app over httpx's ASGITransport, one at a time. Prints the mean time per request
and, with --profile, cProfile's top functions for that step.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from app import migrate
from app.config import Settings
from app.main import create_app
from bench.intake import SECRET, Discard, _pending, _seed
from tests.databases import fresh_database
from tests.e2e.citizen_server import free_port


async def run(args: argparse.Namespace, directory: Path) -> None:
    async with fresh_database(args.database, directory) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        ids, _campaign = await _seed(url)
        high = "1000000/minute"
        smtp = Controller(Discard(), hostname="127.0.0.1", port=free_port())
        smtp.start()
        settings = Settings(
            environment="test", database_url=url, secret_key=SECRET, embedded_worker=False,
            smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_tls="none", public_url="http://127.0.0.1",
            limit_submit_per_address=high, limit_submit_per_net24=high,
            limit_submit_per_net16=high, limit_submit_per_email=high, limit_links_per_address=high,
        )  # fmt: skip
        app = create_app(settings)
        tokens_file = directory / "tokens.txt"
        await _pending(url, settings, args.count + 5, tokens_file)
        tokens = tokens_file.read_text().split()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            counter = 0

            async def submit() -> None:
                nonlocal counter
                counter += 1
                data: dict[str, Any] = {
                    "full_name": "Мария Петрова", "email": f"p{counter}@example.org",
                    "locality": "Тверь", "consent": "yes", "website": "",
                    "deputy": [str(i) for i in ids],
                }  # fmt: skip
                response = await client.post("/campaigns/bench/RU-BEN/submit", data=data)
                assert response.status_code == 303, response.text[:500]

            async def confirm() -> None:
                response = await client.post("/api/v1/confirmations", json={"token": tokens.pop()})
                assert response.status_code == 201, response.text[:500]

            for name, step in (("submit", submit), ("confirm", confirm)):
                for _ in range(5):  # warm up
                    await step()
                profile = cProfile.Profile() if args.profile == name else None
                started, cpu = time.perf_counter(), time.process_time()
                if profile:
                    profile.enable()
                for _ in range(args.count):
                    await step()
                if profile:
                    profile.disable()
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu
                print(
                    f"{args.database} {name}: {elapsed / args.count * 1000:.2f} ms each,"
                    f" CPU (all threads) {cpu / args.count * 1000:.2f} ms"
                )
                if profile:
                    stats = pstats.Stats(profile).sort_stats(args.sort)
                    stats.print_stats(args.top)
        mailer = getattr(app.state, "citizen_mailer", None)
        if mailer is not None:
            await mailer.aclose()
        await app.state.engine.dispose()
        smtp.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--profile", choices=("submit", "confirm"))
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
