"""The plain path in place of the app's special mechanisms, for the benchmarks only.

Each mechanism the app keeps for a figure can be replaced, in a benchmark's processes, by what
the app would do without it, so that a run measures both (bench/intake.py --variants in
its processes, bench/delivery.py --variants in its own):
- `driver`: SQLite through SQLAlchemy's stock aiosqlite dialect, not app.sqlite_driver
  (db.run_sync and db.insert_and_commit then take their path for other drivers);
- `route`: the submit page as a FastAPI route in its router's place, not a plain Starlette route
  first of all routes.

A process gets them from BENCH_WITHOUT (names joined by "+", as `variant` writes them): the web
app as `uvicorn bench.plain:app_factory --factory`, the peer as `bench.plain:bare_factory`, the
worker as `python -m bench.plain worker ...` (the `appeals` command line). Nothing here is
imported by the app.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiosqlite
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from app.dependencies import RateLimiterDep, SettingsDep
from app.letters import pages
from app.letters.paths import CodePath, SlugPath
from app.main import create_app

MECHANISMS = ("driver", "route")
ENV = "BENCH_WITHOUT"
SHIPPED = "shipped"  # the variant without replacements


def parse(variant: str) -> frozenset[str]:
    """The mechanisms a variant replaces ("shipped", or names joined by "+")."""
    if variant == SHIPPED:
        return frozenset()
    names = frozenset(variant.split("+"))
    unknown = names - set(MECHANISMS)
    if unknown:
        raise ValueError(f"unknown mechanism(s) {', '.join(sorted(unknown))}: {MECHANISMS}")
    return names


def environment(variant: str) -> dict[str, str]:
    """The environment that makes this module's factories build `variant`."""
    return {ENV: "+".join(sorted(parse(variant)))}


def _without() -> frozenset[str]:
    value = os.environ.get(ENV, "")
    return parse(value) if value else frozenset()


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
    """Engines made meanwhile (in this process) are without these mechanisms (not `route`:
    the web app's factory below replaces that one)."""
    saved = db.create_engine
    _patch(without)
    try:
        yield
    finally:
        db.create_engine = saved


async def _fastapi_submit_page(
    request: Request,
    slug: SlugPath,
    code: CodePath,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> Response:
    """The submit page as the FastAPI route it would be: path parameters checked by FastAPI, the
    settings and the limiter as dependencies; then the shipped handler, which checks the path
    again (a few µs) and reads the same two objects."""
    return await pages.submit_page(request)


def _fastapi_submit_route() -> None:
    """Put the FastAPI route in `pages`, after the preview, where it would be declared."""
    router = pages.pages
    router.add_api_route(
        "/campaigns/{slug}/{code}/submit",
        _fastapi_submit_page,
        methods=["POST"],
        name="campaign_submit",
    )
    route = router.routes.pop()
    names = [getattr(r, "name", None) for r in router.routes]
    router.routes.insert(names.index("campaign_preview") + 1, route)


def app_factory() -> FastAPI:
    without = _without()
    _patch(without)

    if "route" in without:
        _fastapi_submit_route()
    app = create_app()
    if "route" in without:
        app.router.routes.remove(pages.submit_route)
    return app


def bare_factory() -> FastAPI:
    _patch(_without())
    from bench import bare

    return bare.app_factory()


def main() -> None:
    """The `appeals` command line, on engines built without BENCH_WITHOUT's mechanisms."""
    _patch(_without())
    from app.cli import app

    app(sys.argv[1:], prog_name="appeals")


if __name__ == "__main__":
    main()
