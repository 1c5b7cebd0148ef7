"""Exports in each format, read back with a real reader, agree with the totals and hold no
sender's data; the CLI writes the same files and refuses bad filters clearly."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import CampaignStatus
from app.config import Settings
from app.staff.models import Role, StaffMember
from app.stats.aggregates import EXPORT_COLUMNS
from app.stats.schemas import STATUSES
from tests.factories import (
    create_api_token,
    create_campaign,
    create_deputy,
    create_legislature,
    create_letter,
    create_region,
    create_staff,
)
from tests.staff.auth import login_ok
from tests.stats.seed import DAY2, SENDER_EMAIL, SENDER_NAME, seed

APPEALS = str(Path(sys.executable).with_name("appeals"))


async def analyst_auth(session: AsyncSession) -> tuple[StaffMember, dict[str, str]]:
    """An analyst (committed) and the headers of an API token of theirs."""
    analyst = await create_staff(session, Role.analyst)
    token = await create_api_token(session, analyst)
    await session.commit()
    return analyst, {"authorization": f"Bearer {token}"}


def read_rows(fmt: str, data: bytes) -> list[dict[str, Any]]:
    """The export's rows as dicts, through the csv module, openpyxl or json."""
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    if fmt == "json":
        rows: list[dict[str, Any]] = json.loads(data)
        return rows
    sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True)["letters"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == list(EXPORT_COLUMNS)
    return [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in values[1:]]


def sums(rows: list[dict[str, Any]]) -> dict[str, int]:
    totals = {s: sum(int(r[s]) for r in rows) for s in STATUSES}
    assert sum(int(r["total"]) for r in rows) == sum(totals.values())
    return {s: n for s, n in totals.items() if n}


def assert_no_sender(data: bytes) -> None:
    for secret in (SENDER_EMAIL, SENDER_NAME, "maria"):
        assert secret.encode() not in data


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
async def test_exports_agree_with_the_totals(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, fmt: str
) -> None:
    seeded = await seed(session, settings)
    analyst, auth = await analyst_auth(session)
    response = await client.get("/api/v1/staff/stats/export", params={"format": fmt}, headers=auth)
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="appeals-letters-')
    assert disposition.endswith(f'.{fmt}"')
    assert_no_sender(response.content)
    rows = read_rows(fmt, response.content)
    assert sums(rows) == seeded.totals
    assert {str(r["campaign"]) for r in rows} == {"save-hospital", "clean-river"}
    assert {str(r["region"]) for r in rows} == {"RU-TSA", "RU-TSB"}
    assert set(rows[0]) == set(EXPORT_COLUMNS)

    summary = (
        await client.get(
            "/api/v1/staff/stats",
            params={"campaign": "save-hospital", "since": DAY2.isoformat()},
            headers=auth,
        )
    ).json()
    filtered = await client.get(
        "/api/v1/staff/stats/export",
        params={"format": fmt, "campaign": "save-hospital", "since": DAY2.isoformat()},
        headers=auth,
    )
    expected = {k: v for k, v in summary["totals"].items() if v}
    assert (
        sums(read_rows(fmt, filtered.content))
        == expected
        == {
            "deferred": 2,
            "queued": 2,
            "cancelled": 1,
        }
    )

    # The dashboard's links serve the same file to a logged-in analyst.
    await login_ok(client, analyst.email)
    page = await client.get(f"/staff/stats/export.{fmt}")
    assert page.status_code == 200
    assert sums(read_rows(fmt, page.content)) == seeded.totals


# Registry text is free text: markup, ampersands, control characters, formula-like values.
TRICKY_ID = "=cmd|' /C calc'!A0"
TRICKY_SURNAME = "<b>Ёлкина</b> & \x07Сыновья"


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
async def test_export_of_tricky_text_and_of_nothing(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, fmt: str
) -> None:
    campaign = await create_campaign(session, slug="tricky", status=CampaignStatus.published)
    region = await create_region(session, code="RU-TSX")
    legislature = await create_legislature(session, region=region, code="RU-TSX-<&>")
    deputy = await create_deputy(
        session,
        legislature=legislature,
        external_id=TRICKY_ID,
        surname=TRICKY_SURNAME,
        first_name="+Анна",
        patronymic="",
        email="tricky@duma-x.example.org",
    )
    letters = [
        await create_letter(session, settings=settings, deputy=deputy, campaign_id=campaign.id)
        for _ in range(2)
    ]
    day = letters[0].created_at.astimezone(dt.UTC).date()
    _analyst, auth = await analyst_auth(session)

    response = await client.get("/api/v1/staff/stats/export", params={"format": fmt}, headers=auth)
    assert response.status_code == 200
    [row] = read_rows(fmt, response.content)
    # CSV and XLSX quote formula-like text (the XLSX drops the BEL that XML cannot carry);
    # JSON is data for programs and keeps the text as it is.
    quoted = fmt != "json"
    assert row["deputy_id"] == ("'" if quoted else "") + TRICKY_ID
    name = TRICKY_SURNAME.replace("\x07", "") if fmt == "xlsx" else TRICKY_SURNAME
    assert row["deputy"] == f"{name} +Анна"
    assert row["legislature"] == "RU-TSX-<&>"
    assert row["region"] == "RU-TSX"
    assert row["campaign"] == "tricky"
    assert row["recipient_domain"] == "duma-x.example.org"
    assert int(row["queued"]) == int(row["total"]) == 2
    # A real date cell in the workbook (openpyxl reads it as a midnight datetime).
    assert row["day"] == (dt.datetime.combine(day, dt.time()) if fmt == "xlsx" else str(day))

    # Nothing under the filter: the header (or an empty array) alone, still a valid file.
    empty = await client.get(
        "/api/v1/staff/stats/export",
        params={"format": fmt, "until": "2001-01-01"},
        headers=auth,
    )
    assert empty.status_code == 200
    assert read_rows(fmt, empty.content) == []


async def _appeals(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "APPEALS_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        APPEALS, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_export_and_check(
    database_url: str, session: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    seeded = await seed(session, settings)
    # Each run is a process start (about 2 s): the formats are covered over HTTP as well.
    for fmt in ("xlsx", "json"):
        target = tmp_path / f"letters.{fmt}"
        code, out, err = await _appeals(
            database_url, "stats", "export", "--format", fmt, "-o", str(target)
        )
        assert code == 0, err
        # (day, campaign, deputy, domain): 5 groups in the seed
        assert out.strip() == f"wrote 5 rows ({fmt}) to {target}"
        data = target.read_bytes()
        assert_no_sender(data)
        assert sums(read_rows(fmt, data)) == seeded.totals
    target = tmp_path / "one.csv"
    code, out, err = await _appeals(
        database_url,
        "stats",
        "export",
        "--format=csv",
        "--campaign=clean-river",
        "--until=2026-11-20",
        "-o",
        str(target),
    )
    assert code == 0, err
    assert_no_sender(target.read_bytes())
    assert sums(read_rows("csv", target.read_bytes())) == {"sent": 2}

    bad = tmp_path / "bad.csv"
    code, out, err = await _appeals(
        database_url, "stats", "export", "--format", "csv", "-o", str(bad), "--campaign", "nope"
    )
    assert code == 1
    assert "error: Unknown campaign 'nope'." in err
    assert not bad.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".export-")] == []

    code, out, _ = await _appeals(database_url, "stats", "check")
    assert code == 0
    assert out.strip() == "counters agree with the letters"
