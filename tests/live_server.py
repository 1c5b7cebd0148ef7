"""A real HTTP server for tests: uvicorn serving an app on a free loopback port, in a thread with
its own event loop (the app's engine and pools live in that loop only)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

from app.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve the app (its lifespan included) while the block runs; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)


@asynccontextmanager
async def serving_process(settings: Settings) -> AsyncIterator[str]:
    """`uvicorn app.main:app_factory` in a process of its own (as in production, and off this
    process's GIL), configured by these settings through the environment; yields its base URL."""
    port = free_port()
    env = {**os.environ, **{f"APPEALS_{k.upper()}": str(v) for k, v in _set_fields(settings)}}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app_factory", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the test server did not start") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 15)


def _set_fields(settings: Settings) -> Iterator[tuple[str, object]]:
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is not None:
            yield name, value
