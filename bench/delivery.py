"""Benchmark: letters per second through the whole worker (claim, send, record) into Postfix's
smtp-sink, beside raw aiosmtplib sending the same prepared messages over the same number of
connections, just before and just after the worker (the ratio is against the mean of the two),
in the same run, on SQLite and PostgreSQL.

Run: .venv/bin/python -m bench.delivery [--letters 45000] [--connections 1,16]
     [--databases sqlite,postgresql] [--variants shipped,driver]
With --variants, each row is measured once for each variant, in the order given, each on a
database of its own beside its own raw aiosmtplib runs: `shipped` is the worker as it is,
`driver` the worker on SQLAlchemy's stock aiosqlite dialect (bench/plain.py).
Needs /usr/sbin/smtp-sink (Debian package postfix); it is started here on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, insert, select, text

from app import mail, migrate
from app.config import Settings
from app.db import create_engine, utcnow
from app.deputies.models import Deputy, Legislature, Region
from app.letters.models import Letter, LetterMessage, LetterStatus
from bench import plain
from tests.databases import fresh_database

SMTP_SINK = "/usr/sbin/smtp-sink"
MAIL_FROM = "appeals@appeals.example"
DOMAINS = [f"duma{i}.example.org" for i in range(8)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def smtp_sink() -> AsyncIterator[int]:
    if not Path(SMTP_SINK).exists():
        raise SystemExit(f"{SMTP_SINK} is missing: apt-get install -y postfix")
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "1024"
    )
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        process.terminate()
        await process.wait()


async def _create_letters(url: str, n: int) -> tuple[float, list[tuple[str, bytes]]]:
    """n queued letters to deputies on a few domains; returns seconds and (rcpt, bytes)."""
    engine = create_engine(url)
    now = utcnow()
    started = time.perf_counter()
    async with engine.begin() as conn:
        region = (
            await conn.execute(
                insert(Region).values(code="RU-BEN", name_ru="Б", name_en="B").returning(Region.id)
            )
        ).scalar_one()
        legislature = (
            await conn.execute(
                insert(Legislature)
                .values(
                    code="RU-BEN-LEG", region_id=region, level="regional", name_ru="Л", name_en="L"
                )
                .returning(Legislature.id)
            )
        ).scalar_one()
        deputies = []
        for i in range(400):
            email = f"deputy{i}@{DOMAINS[i % len(DOMAINS)]}"
            deputy_id = (
                await conn.execute(
                    insert(Deputy)
                    .values(
                        external_id=f"B{i}",
                        legislature_id=legislature,
                        surname="Иванов",
                        first_name="Пётр",
                        patronymic="Сергеевич",
                        position="Депутат",
                        party="",
                        constituency="",
                        email=email,
                        is_active=True,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(Deputy.id)
                )
            ).scalar_one()
            deputies.append((deputy_id, email))
        rows: list[dict[str, object]] = []
        messages: list[tuple[str, bytes]] = []
        body = "Уважаемый Пётр Сергеевич!\n\n" + "Прошу сохранить больницу в нашем посёлке. " * 40
        for i in range(n):
            deputy_id, email = deputies[i % len(deputies)]
            message_id = mail.new_message_id(MAIL_FROM)
            message = mail.build_message(
                mail_from=MAIL_FROM,
                sender_name=f"Мария Петрова {i}",
                sender_email=f"citizen{i}@example.com",
                recipient_name="Иванов Пётр Сергеевич",
                recipient_email=email,
                subject="Обращение о сохранении больницы",
                body=body,
                campaign_id=1,
                campaign_title="Сохраним больницу",
                message_id=message_id,
                date=now,
            )
            messages.append((email, message))
            rows.append(
                {
                    "campaign_id": 1,
                    "appeal_version_id": 1,
                    "deputy_id": deputy_id,
                    "recipient_email": email,
                    "recipient_domain": email.rpartition("@")[2],
                    "id": i + 1,
                    "message_id": message_id,
                    "sender_name": f"Мария Петрова {i}",
                    "sender_email": f"citizen{i}@example.com",
                    "status": LetterStatus.queued,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        bodies = [{"letter_id": i + 1, "message": m} for i, (_, m) in enumerate(messages)]
        for start in range(0, n, 5000):
            await conn.execute(insert(Letter), rows[start : start + 5000])
            await conn.execute(insert(LetterMessage), bodies[start : start + 5000])
    if engine.dialect.name == "postgresql":
        # Autovacuum analyzes a table that grew by this much within a minute or so; the letters
        # were made in one burst just now, so do it here rather than measure whichever of the
        # planner's guesses for an unanalyzed table (or autovacuum's timing) this run gets.
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE letter"))
            await conn.commit()
    seconds = time.perf_counter() - started
    await engine.dispose()
    return seconds, messages


async def _raw(port: int, messages: list[tuple[str, bytes]], connections: int) -> float:
    """Raw aiosmtplib: the same messages over `connections` persistent connections."""
    shares = [messages[i::connections] for i in range(connections)]

    async def one(share: list[tuple[str, bytes]]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await smtp.connect()
        for rcpt, data in share:
            await smtp.sendmail(MAIL_FROM, [rcpt], data)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in shares))
    return len(messages) / (time.perf_counter() - started)


async def _worker(url: str, port: int, n: int, connections: int, batch: int) -> float:
    from app.delivery.worker import Worker

    settings = Settings(
        environment="test",
        database_url=url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
        smtp_pool_size=connections,
        mail_from=MAIL_FROM,
        send_rate=1e9,
        domain_rate=1e9,
        domain_concurrency=connections,
        worker_batch_size=batch,
        worker_poll_seconds=0.05,
        _env_file=None,
    )
    worker = Worker(settings)
    started = time.perf_counter()
    summary = await worker.run(once=True)
    seconds = time.perf_counter() - started
    async with worker.engine.connect() as conn:
        sent = await conn.scalar(
            select(func.count()).select_from(Letter).where(Letter.status == LetterStatus.sent)
        )
    await worker.close()
    if sent != n or summary.sent != n:
        raise SystemExit(f"only {sent} of {n} letters sent ({summary.describe()})")
    return n / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--letters", type=int, default=45_000)
    parser.add_argument("--connections", default="1,16")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--variants",
        default=plain.SHIPPED,
        help=f"comma-separated: {plain.SHIPPED}, or the mechanism replaced by the plain path"
        f" ({', '.join(plain.MECHANISMS)})",
    )
    args = parser.parse_args()
    try:
        variants = {variant: plain.parse(variant) for variant in args.variants.split(",")}
    except ValueError as error:
        parser.error(str(error))
    print(f"{args.letters} letters, batch {args.batch}, into smtp-sink on loopback")
    header = ("database", "conns", "worker/s", "raw/s", "ratio", "wall", "create", "variant")
    print("{:<10} {:>5} {:>9} {:>7} {:>6} {:>7} {:>7}  {}".format(*header))
    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    try:
        async with smtp_sink() as port:
            for kind in args.databases.split(","):
                for connections in (int(c) for c in args.connections.split(",")):
                    for variant, without in variants.items():
                        async with fresh_database(kind, workdir) as url:
                            await asyncio.to_thread(migrate.upgrade, url)
                            create_s, messages = await _create_letters(url, args.letters)
                            # Raw before and after the worker, the ratio against their mean: on a
                            # shared machine the load moves, and it then weighs on both sides.
                            raw_before = await _raw(port, messages, connections)
                            with plain.replaced(without):
                                rate = await _worker(
                                    url, port, args.letters, connections, args.batch
                                )
                            raw = (raw_before + await _raw(port, messages, connections)) / 2
                            print(
                                f"{kind:<10} {connections:>5} {rate:>9,.0f} {raw:>7,.0f} "
                                f"{rate / raw:>6.0%} {args.letters / rate:>6.1f}s"
                                f" {create_s:>6.1f}s  {variant}",
                                flush=True,
                            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
