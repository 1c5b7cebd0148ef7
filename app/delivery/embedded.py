"""The embedded default: inside the web service, a local sink (when no relay is configured),
one send worker and the citizens' confirmation e-mail sender, so that a newcomer's letters go out
with no extra step."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.delivery.sink import start_sink
from app.delivery.worker import Worker
from app.letters.mailer import ConfirmationSender

logger = logging.getLogger("appeals.delivery")


@asynccontextmanager
async def embedded_delivery(
    settings: Settings,
    *,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    wake: asyncio.Event | None = None,
) -> AsyncIterator[Worker | None]:
    """Run the sink, a worker and the confirmation sender (woken by `wake`) for the service's
    lifetime when `embedded_worker` is on."""
    if not settings.embedded_worker:
        yield None
        return
    server: asyncio.Server | None = None
    if not settings.relay_configured:
        try:
            server = await start_sink(
                sessionmaker,
                host=settings.sink_host,
                port=settings.sink_port,
                reveal_links=settings.environment == "development",
            )
        except OSError:
            # The port is taken (a second service on this machine): any free port will do, the
            # embedded worker is told which.
            logger.warning("sink port %d is busy; using a free port", settings.sink_port)
            server = await start_sink(
                sessionmaker,
                host=settings.sink_host,
                port=0,
                reveal_links=settings.environment == "development",
            )
        port = server.sockets[0].getsockname()[1]
        settings = settings.model_copy(update={"sink_port": port})
        logger.info("local sink listening on %s:%d (no relay configured)", settings.sink_host, port)
    worker = Worker(settings, engine=engine)
    task = asyncio.create_task(worker.run(), name="appeals-embedded-worker")
    confirmations = ConfirmationSender(settings, sessionmaker)
    sender = asyncio.create_task(
        confirmations.run(worker.stopping, wake), name="appeals-confirmation-sender"
    )
    try:
        yield worker
    finally:
        worker.stop()
        await task
        await sender
        await confirmations.aclose()
        await worker.close()
        if server is not None:
            server.close()
            await server.wait_closed()
