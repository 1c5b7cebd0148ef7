"""The benchmark's peer: a bare FastAPI endpoint that validates the same form and inserts one row.

Served by bench/intake.py as `uvicorn bench.bare:app_factory --factory`, on the database named by
BENCH_DATABASE_URL (its own table, created at start).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Form
from fastapi.responses import RedirectResponse
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from app.db import create_engine
from app.letters.schemas import SenderIn

metadata = MetaData()
bench_row = Table(
    "bench_bare_row",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("full_name", String(200)),
    Column("email", String(254)),
    Column("locality", String(200)),
)


def app_factory() -> FastAPI:
    engine = create_engine(os.environ["BENCH_DATABASE_URL"])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bare")
    async def bare(
        full_name: Annotated[str, Form()],
        email: Annotated[str, Form()],
        locality: Annotated[str, Form()],
    ) -> RedirectResponse:
        sender = SenderIn(full_name=full_name, email=email, locality=locality)
        async with engine.begin() as connection:
            await connection.execute(
                insert(bench_row).values(**sender.model_dump(exclude={"postal_address"}))
            )
        return RedirectResponse("/done", status_code=303)

    return app
