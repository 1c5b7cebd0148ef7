"""The `appeals` command line, run as a real process against the test database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deputies.models import Deputy, Legislature
from tests.deputies.csvdata import deputies_csv, deputy, legislatures_csv

APPEALS = str(Path(sys.executable).with_name("appeals"))


async def _appeals(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "APPEALS_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        APPEALS, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _deputies(session: AsyncSession) -> int:
    await session.rollback()  # a fresh snapshot: the process wrote in between
    return await session.scalar(select(func.count()).select_from(Deputy)) or 0


async def test_help_lists_every_command(database_url: str) -> None:
    code, out, _ = await _appeals(database_url, "--help")
    assert code == 0
    for command in ("serve", "db", "deputies"):
        assert command in out
    code, out, _ = await _appeals(database_url, "deputies", "--help")
    assert code == 0
    assert "import-legislatures" in out


async def test_import_reports_problems_and_exits_non_zero(
    database_url: str, session: AsyncSession, tmp_path: Path
) -> None:
    legislatures = tmp_path / "legislatures.csv"
    legislatures.write_bytes(legislatures_csv())
    code, out, _ = await _appeals(
        database_url, "deputies", "import-legislatures", str(legislatures)
    )
    assert code == 0, out
    bad = tmp_path / "bad.csv"
    bad.write_bytes(deputies_csv([deputy(1), deputy(2, email="x"), deputy(3, surname="")]))
    code, out, err = await _appeals(database_url, "deputies", "import", str(bad))
    assert code == 1
    assert f"{bad}:3: email: " in err
    assert f"{bad}:4: surname: required" in err
    assert "nothing was imported" in err
    assert await _deputies(session) == 0


async def test_import_dry_run_then_real_then_again(
    database_url: str, session: AsyncSession, tmp_path: Path
) -> None:
    legislatures = tmp_path / "legislatures.csv"
    legislatures.write_bytes(legislatures_csv())
    await _appeals(database_url, "deputies", "import-legislatures", str(legislatures))
    good = tmp_path / "good.csv"
    good.write_bytes(deputies_csv([deputy(1), deputy(2)]))
    code, out, _ = await _appeals(database_url, "deputies", "import", str(good), "--dry-run")
    assert (code, "added 2") == (0, out.split("; ")[1].split(",")[0])
    assert "would be written" in out
    assert await _deputies(session) == 0
    code, out, _ = await _appeals(database_url, "deputies", "import", str(good))
    assert code == 0
    assert "added 2" in out
    code, out, _ = await _appeals(database_url, "deputies", "import", str(good))
    assert "added 0" in out
    assert "unchanged 2" in out
    assert await _deputies(session) == 2


async def test_serve_answers_health_checks(database_url: str, unused_tcp_port: int) -> None:
    # The test environment: no embedded worker, so no mail sink on its fixed port.
    env = {**os.environ, "APPEALS_DATABASE_URL": database_url, "APPEALS_ENVIRONMENT": "test"}
    process = await asyncio.create_subprocess_exec(
        APPEALS, "serve", "--port", str(unused_tcp_port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{unused_tcp_port}") as client:
            for _ in range(100):
                try:
                    response = await client.get("/healthz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("appeals serve did not answer within 10 s")
            assert response.json() == {"status": "ok", "database": "ok"}
            assert (await client.get("/api/v1/regions")).status_code == 200
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
        assert await asyncio.wait_for(process.wait(), 10) in (0, -signal.SIGTERM)


async def test_import_into_an_unmigrated_database_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "deputies.csv"
    data.write_bytes(deputies_csv([deputy(1)]))
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    code, _, err = await _appeals(url, "deputies", "import", str(data))
    assert code == 1
    assert "not migrated" in err
    assert "Traceback" not in err


async def test_legislatures_dry_run_writes_nothing(
    database_url: str, session: AsyncSession, tmp_path: Path
) -> None:
    legislatures = tmp_path / "legislatures.csv"
    legislatures.write_bytes(legislatures_csv())
    code, out, _ = await _appeals(
        database_url, "deputies", "import-legislatures", str(legislatures), "--dry-run"
    )
    assert code == 0
    assert "added 2" in out
    await session.rollback()
    assert await session.scalar(select(func.count()).select_from(Legislature)) == 0
