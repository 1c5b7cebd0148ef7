"""The plain path in place of the app's special mechanism, for the benchmarks only.

The one mechanism the app keeps for a figure, app.sqlite_driver (`driver`), can be replaced in a
benchmark's processes by what the app would do without it, SQLAlchemy's stock aiosqlite dialect
(db.run_sync and db.insert_and_commit then take their path for other drivers), so that a run
measures both: bench/intake.py --variants in its server processes, bench/delivery.py
--variants in its own.

A process gets the variant from BENCH_WITHOUT: the web app as
`uvicorn bench.plain:app_factory --factory`, the peer as `bench.plain:bare_factory`, the worker
as `python -m bench.plain worker ...` (the `appeals` command line). Nothing here is imported by
the app.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiosqlite
from fastapi import FastAPI
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db

MECHANISMS = ("driver",)
ENV = "BENCH_WITHOUT"
SHIPPED = "shipped"  # the variant without replacements


def parse(variant: str) -> frozenset[str]:
    """The mechanisms a variant replaces: none for `shipped`."""
    if variant == SHIPPED:
        return frozenset()
    if variant not in MECHANISMS:
        raise ValueError(f"unknown variant {variant!r}: {SHIPPED} or one of {MECHANISMS}")
    return frozenset({variant})


def environment(variant: str) -> dict[str, str]:
    """The environment that makes this module's factories build `variant`."""
    return {ENV: "+".join(sorted(parse(variant)))}


def _without() -> frozenset[str]:
    return frozenset(name for name in os.environ.get(ENV, "").split("+") if name)


def _patch(without: frozenset[str]) -> None:
    """Make app.db build engines without these mechanisms, in this process."""
    if "driver" in without:
        shipped_create_engine = db.create_engine

        def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
            if url.startswith("sqlite+aiosqlite:"):
                kwargs.setdefault("module", AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3))
            return shipped_create_engine(url, **kwargs)

        db.create_engine = create_engine


@contextmanager
def replaced(without: frozenset[str]) -> Iterator[None]:
    """Engines made meanwhile (in this process) are without these mechanisms."""
    saved = db.create_engine
    _patch(without)
    try:
        yield
    finally:
        db.create_engine = saved


def app_factory() -> FastAPI:
    _patch(_without())
    from app.main import create_app

    return create_app()


def bare_factory() -> FastAPI:
    _patch(_without())
    from bench import bare  # after the patch: it imports create_engine by name

    return bare.app_factory()


def main() -> None:
    """The `appeals` command line, on engines built without BENCH_WITHOUT's mechanisms."""
    _patch(_without())
    from app.cli import app

    app(sys.argv[1:], prog_name="appeals")


if __name__ == "__main__":
    main()
