"""Profile the intake in process, one request at a time (no server, no wrk).

Run: .venv/bin/python -m bench.intake_profile [--database sqlite] [--count 200]
     [--steps bare,submit,confirm] [--profile bare|submit|confirm] [--sort tottime]

The same seed as bench/intake.py (a region of 50 deputies, an open campaign); requests go through
the whole ASGI app, called directly (no HTTP client, no server: what is left is the app's own
cost), one at a time, beside bench/bare.py's endpoint. Prints the wall and CPU time (every
thread of the process: the database driver's too) per request and, with --profile, cProfile's
top functions for that step.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from app import migrate
from app.config import Settings
from app.main import create_app
from bench import bare
from bench.intake import HIGH, SECRET, _pending, _seed
from tests.databases import fresh_database

FORM = {"full_name": "Мария Петрова", "locality": "Тверь", "consent": "yes", "website": ""}


async def _measure(
    name: str, step: Callable[[], Awaitable[None]], args: argparse.Namespace
) -> None:
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
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{args.database:10} {name:8} {elapsed / args.count * 1000:6.2f} ms wall,"
        f" {cpu / args.count * 1000:6.2f} ms CPU each",
        flush=True,
    )
    if profile:
        stats = pstats.Stats(profile).sort_stats(args.sort)
        stats.print_stats(args.top)
        if args.callers:
            stats.print_callers(args.callers)


def _form(data: dict[str, Any]) -> tuple[bytes, bytes]:
    return urlencode(data, doseq=True).encode(), b"application/x-www-form-urlencoded"


async def _post(app: Any, path: str, content: tuple[bytes, bytes], expected: int) -> None:
    """One POST through the ASGI app; checks the status."""
    body, content_type = content
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    sent = False
    started: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    assert started["status"] == expected, (started["status"], b"".join(chunks)[:500])


async def run(args: argparse.Namespace, directory: Path) -> None:
    async with fresh_database(args.database, directory) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        ids, _campaign = await _seed(url)
        settings = Settings(
            environment="test", database_url=url, secret_key=SECRET, embedded_worker=False,
            public_url="http://127.0.0.1", limit_submit_per_address=HIGH,
            limit_submit_per_net24=HIGH, limit_submit_per_net16=HIGH,
            limit_submit_per_email=HIGH, limit_links_per_address=HIGH,
        )  # fmt: skip
        app = create_app(settings)
        tokens_file = directory / "tokens.txt"
        await _pending(url, settings, args.count + 5, tokens_file)
        tokens = tokens_file.read_text().split()
        os.environ["BENCH_DATABASE_URL"] = url
        peer = bare.app_factory()
        counter = 0

        # The peer first: its lifespan makes its table, which must not race the app's purge.
        async with peer.router.lifespan_context(peer), app.router.lifespan_context(app):

            async def bare_step() -> None:
                await _post(peer, "/bare", _form(FORM | {"email": "x@example.org"}), 303)

            async def submit() -> None:
                nonlocal counter
                counter += 1
                data: dict[str, Any] = FORM | {
                    "email": f"p{counter}@example.org", "deputy": [str(i) for i in ids]
                }  # fmt: skip
                await _post(app, "/campaigns/bench/RU-BEN/submit", _form(data), 303)

            async def confirm() -> None:
                body = json.dumps({"token": tokens.pop()}).encode()
                await _post(app, "/api/v1/confirmations", (body, b"application/json"), 201)

            steps = {"bare": bare_step, "submit": submit, "confirm": confirm}
            for name in args.steps.split(","):
                await _measure(name, steps[name], args)
        await app.state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--steps", default="bare,submit,confirm", help="which, in this order")
    parser.add_argument("--profile", choices=("bare", "submit", "confirm"))
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--callers", help="also print the callers of functions matching this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
