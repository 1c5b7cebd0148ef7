"""The shipped sample registry imports cleanly, stays synthetic, and matches its generator."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deputies import importer
from app.deputies.models import Deputy, Legislature, Region

DATA = Path(__file__).resolve().parents[2] / "deputies_data"
RESERVED = re.compile(r"@([a-z0-9-]+\.)*(example\.(org|com|net)|[a-z0-9-]+\.test)$")


async def test_sample_imports_cleanly(session: AsyncSession) -> None:
    await importer.import_legislatures(session, (DATA / "legislatures.csv").read_bytes())
    summary = await importer.import_deputies(session, (DATA / "deputies.csv").read_bytes())
    await session.commit()
    assert await session.scalar(select(func.count()).select_from(Region)) == 83
    assert 5500 <= summary.added <= 6500
    sizes = (
        await session.scalars(
            select(func.count(Deputy.id)).join(Legislature).group_by(Legislature.id)
        )
    ).all()
    assert len(sizes) == 83
    assert min(sizes) >= 15
    assert max(sizes) <= 110
    emails = (await session.scalars(select(Deputy.email))).all()
    assert all(RESERVED.search(email) for email in emails)


def test_sample_is_what_the_generator_makes(tmp_path: Path) -> None:
    out = tmp_path / "deputies.csv"
    subprocess.run(
        [sys.executable, str(DATA / "generate.py"), "--out", str(out)], check=True, timeout=60
    )
    assert out.read_bytes() == (DATA / "deputies.csv").read_bytes()
