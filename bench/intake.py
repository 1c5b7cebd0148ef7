"""Benchmark: the citizen's intake under wrk, on SQLite and PostgreSQL.

Run: .venv/bin/python -m bench.intake [--duration 10] [--connections 16] [--workers 2]
     [--databases sqlite,postgresql] [--variants shipped,driver]

For each database: a fresh migrated database with a region of 50 deputies and an open campaign;
the app (N uvicorn processes of app.main:app_factory, each on a port of its own, wrk's threads
spread over them: see Server; no embedded worker, limits raised, relay = a Postfix smtp-sink on
loopback) and the peer (bench/bare.py: validate the same form, insert one row; served the same
way) run on loopback, one after the other. wrk measures
1. form submissions (POST /campaigns/…/submit, all 50 deputies ticked, a distinct e-mail each) and
   the bare endpoint: requests/s, p50 and p99; the ratio is the figure (target >= 0.5). During the
   submissions `appeals worker` runs beside the app, as in production, and sends the confirmation
   e-mails from the outbox to the SMTP server; the run waits until every one was received;
2. confirmations (POST /api/v1/confirmations, 50 letters each, from pre-made submissions):
   confirmations/s and letters/s (target >= 100/s, i.e. 5,000 letters/s).
Beside each rate, the CPU time the server's processes used per request (from /proc: Linux), a
figure that moves less than the rate when other work shares the machine, and the busiest
process's share of it (1/N when the load was even); beside the submissions, the worker's per
e-mail sent.

With --variants, each database is measured once for each variant, each on a database of its
own with its own peer, in the order given: `shipped` is the app as it is, `driver` the app (its
web processes, its worker and the peer) on SQLAlchemy's stock aiosqlite dialect instead of
app.sqlite_driver (bench/plain.py; PostgreSQL is the same in both).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import httpx
from sqlalchemy import Table, func, select

from app import migrate
from app.campaigns.models import CampaignStatus, VersionStatus
from app.config import Settings
from app.db import create_engine, create_sessionmaker, insert_and_commit
from app.letters import flow, open_campaigns
from app.letters.models import Letter
from app.letters.schemas import SenderIn
from app.letters.submissions import ConfirmationEmail, Submission
from bench import bare as bare_module
from bench import plain
from tests.databases import fresh_database
from tests.e2e.citizen_server import free_port
from tests.factories import (
    create_campaign,
    create_deputy,
    create_legislature,
    create_region,
    create_staff,
    create_version,
)

REPO = Path(__file__).resolve().parent.parent
DEPUTIES = 50
SECRET = "b" * 40
HIGH = "1000000/minute"
SMTP_SINK = "/usr/sbin/smtp-sink"  # Debian package postfix

SUBMIT_LUA = """
counter = 0
local ids = "{ids}"
request = function()
  counter = counter + 1
  local body = "full_name=%D0%9C%D0%B0%D1%80%D0%B8%D1%8F"
    .. "+%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2%D0%B0"
    .. "&email=b" .. offset .. "t" .. counter .. "%40example.org"
    .. "&locality=%D0%A2%D0%B2%D0%B5%D1%80%D1%8C&consent=yes&website=" .. ids
  local headers = {{["Content-Type"]="application/x-www-form-urlencoded"}}
  return wrk.format("POST", "{path}", headers, body)
end
"""
# Prepended to both scripts: wrk's threads (as many as server processes, or a multiple) connect
# to the processes' ports in turn, so that each process gets the same number of connections.
SPREAD_LUA = """
local ports = {{{ports}}}
local threads = 0
setup = function(thread)
  thread.addr = wrk.lookup("127.0.0.1", ports[threads % #ports + 1])[1]
  thread:set("offset", threads)
  threads = threads + 1
end
"""
CONFIRM_LUA = """
tokens = {{}}
for line in io.lines("{tokens}") do tokens[#tokens + 1] = line end
counter = 0
request = function()
  -- each wrk thread takes every {threads}th token from its own offset: none is used twice
  local index = offset + counter * {threads} + 1
  counter = counter + 1
  local token = tokens[index] or "exhausted"
  return wrk.format("POST", "/api/v1/confirmations", {{["Content-Type"]="application/json"}},
    '{{"token": "' .. token .. '"}}')
end
"""


async def _seed(url: str) -> tuple[list[int], int]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            region = await create_region(
                session, code="RU-BEN", name_ru="Область", name_en="Oblast"
            )
            legislature = await create_legislature(session, region=region, code="RU-BEN-LEG")
            ids = [
                (
                    await create_deputy(
                        session, legislature=legislature, email=f"d{n}@bench.example.org"
                    )
                ).id
                for n in range(DEPUTIES)
            ]
            author = await create_staff(session)
            campaign = await create_campaign(
                session, slug="bench", title="Бенчмарк", status=CampaignStatus.published
            )
            await create_version(
                session, campaign=campaign, author=author, status=VersionStatus.approved
            )
            await session.commit()
            return ids, campaign.id
    finally:
        await engine.dispose()


async def _pending(url: str, settings: Settings, count: int, path: Path) -> None:
    """`count` pending submissions to all 50 deputies; their confirmation tokens to `path`."""
    engine = create_engine(url)
    tokens = []
    try:
        async with create_sessionmaker(engine)() as session:
            campaign = await open_campaigns.get_open_campaign(session, slug="bench")
            deputy_ids = await open_campaigns.campaign_deputy_ids(
                session, campaign=campaign, region_code="RU-BEN"
            )
            for n in range(count):
                submitted = flow.submit(
                    campaign=campaign,
                    region_code="RU-BEN",
                    deputy_ids=deputy_ids,
                    sender=SenderIn(
                        full_name="Мария Петрова", email=f"c{n}@example.org", locality="Тверь"
                    ),
                    reply_to=False,
                    language="ru",
                    settings=settings,
                )
                submission = cast(Table, Submission.__table__)
                await insert_and_commit(engine, [(submission, submitted.row)])
                tokens.append(submitted.confirm_token)
    finally:
        await engine.dispose()
    path.write_text("\n".join(tokens) + "\n")


async def _count_letters(url: str) -> int:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count(Letter.id))) or 0)
    finally:
        await engine.dispose()


class Server:
    """One service as `workers` uvicorn processes, each on a port of its own.

    Not `uvicorn --workers N`: there the processes race to accept from one socket and asyncio
    accepts every pending connection at each wake-up, so wrk's connections, opened at once,
    mostly land in one process while the others idle (measured: 16 connections split 16/0 in
    a run of the bare endpoint, 8.3 s of CPU in one process and 0.02 s in the other), and the
    rate measured was one process's or two's by chance. Here wrk's threads take the ports in
    turn (SPREAD_LUA), as a load balancer in front would."""

    def __init__(self, target: str, env: dict[str, str], workers: int) -> None:
        self.ports = [free_port() for _ in range(workers)]
        self.processes = [self._start(target, env, port) for port in self.ports]

    @staticmethod
    def _start(target: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    def script(self, text: str) -> str:
        """A wrk script with the threads spread over this server's ports."""
        ports = ", ".join(f'"{port}"' for port in self.ports)
        return SPREAD_LUA.format(ports=ports) + text

    def cpu(self) -> list[float]:
        return [_cpu_seconds(process.pid) for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _count_submissions(url: str) -> int:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count(Submission.id))) or 0)
    finally:
        await engine.dispose()


async def _outbox(url: str) -> int:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count(ConfirmationEmail.id))) or 0)
    finally:
        await engine.dispose()


async def _wait(port: int, method: str = "GET", path: str = "/healthz") -> None:
    """Until the server on `port` answers (any answer): a minute at most, as a busy machine
    takes several seconds to import the app in each of the processes started at once."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                await client.request(method, f"http://127.0.0.1:{port}{path}")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def _processes() -> dict[int, tuple[int, str, float]]:
    """Every process now: pid -> (parent pid, name, CPU seconds used, user + system, its own and
    its ended children's: a database backend that exits between two readings is not lost)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) "
        used = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        found[int(entry.name)] = (int(fields[1]), name, used / tick)
    return found


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants, those alive now and those ended (counted in
    their parents'), from Linux's /proc; 0 for pid 0."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for child, (parent, _name, _cpu) in processes.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid] if pid else []
    while todo:
        current = todo.pop()
        total += processes[current][2] if current in processes else 0.0
        todo += children.get(current, [])
    return total


def _postmaster() -> int:
    """The local PostgreSQL server's main process (its backends are its children), or 0."""
    processes = _processes()
    for pid, (parent, name, _cpu) in processes.items():
        if name == "postgres" and processes.get(parent, (0, "", 0.0))[1] != "postgres":
            return pid
    return 0


def _threads(args: argparse.Namespace) -> int:
    """wrk's threads: two at least, a multiple of the server's processes."""
    workers: int = args.workers
    return workers * max(1, -(-2 // workers))


def _wrk(server: Server, script: Path, args: argparse.Namespace, db: int = 0) -> dict[str, float]:
    before, db_cpu = server.cpu(), _cpu_seconds(db)
    output = subprocess.run(
        ["wrk", "-t", str(_threads(args)), "-c", str(args.connections), "-d",
         f"{args.duration}s", "--latency", "-s", str(script), server.url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    used = [after - was for after, was in zip(server.cpu(), before, strict=True)]
    cpu, db_cpu = sum(used), _cpu_seconds(db) - db_cpu
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", output)
        return float(match.group(1)) * units[match.group(2)] if match else float("nan")

    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    seconds = float(re.search(r"requests in ([\d.]+)s", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = int(bad.group(1)) if bad else 0
    return {
        # The server's processes' CPU per request: steadier than the rate on a shared machine.
        "cpu_ms": cpu / requests * 1000,
        # The busiest process's share of that CPU (1/N with N processes: the load was even).
        "busiest": max(used) / cpu if cpu > 0 else float("nan"),
        # PostgreSQL's server processes (SQLite works inside the app's).
        "db_ms": db_cpu / requests * 1000 if db else float("nan"),
        "ok_per_s": (requests - errors) / seconds,
        "errors": errors,
        "p50": latency("50%"),
        "p99": latency("99%"),
    }


def _cpu(result: dict[str, float]) -> str:
    """CPU per request: the server's processes, and PostgreSQL's where measured."""
    text = f"CPU {result['cpu_ms']:.2f}"
    if result["db_ms"] == result["db_ms"]:  # not NaN
        text += f" + db {result['db_ms']:.2f}"
    return text + f" ms (busiest process {result['busiest']:.0%})"


async def run(kind: str, args: argparse.Namespace, directory: Path, variant: str) -> list[str]:
    lines = []
    label = kind if variant == plain.SHIPPED else f"{kind} w/o {variant}"
    async with fresh_database(kind, directory) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        ids, _campaign = await _seed(url)
        # The peer's table, made here once (its processes would race to make it).
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(bare_module.metadata.create_all)
        await engine.dispose()
        # Postfix's smtp-sink (C) receives the confirmation e-mails: the SMTP server is not what
        # is measured, and aiosmtpd in this process would take a good share of the 2 cores.
        smtp_port = free_port()
        smtp = subprocess.Popen([SMTP_SINK, "-u", "nobody", f"127.0.0.1:{smtp_port}", "1024"])
        env = {
            **os.environ,
            "APPEALS_DATABASE_URL": url,
            "APPEALS_ENVIRONMENT": "test",
            "APPEALS_SECRET_KEY": SECRET,
            "APPEALS_EMBEDDED_WORKER": "false",
            "APPEALS_SMTP_HOST": "127.0.0.1",
            "APPEALS_SMTP_PORT": str(smtp_port),
            "APPEALS_SMTP_TLS": "none",
            "APPEALS_PUBLIC_URL": "http://127.0.0.1",
            "APPEALS_LIMIT_SUBMIT_PER_ADDRESS": HIGH,
            "APPEALS_LIMIT_SUBMIT_PER_NET24": HIGH,
            "APPEALS_LIMIT_SUBMIT_PER_NET16": HIGH,
            "APPEALS_LIMIT_SUBMIT_PER_EMAIL": HIGH,
            "APPEALS_LIMIT_LINKS_PER_ADDRESS": HIGH,
            "BENCH_DATABASE_URL": url,
        }
        if variant == plain.SHIPPED:
            app = Server("app.main:app_factory", env, args.workers)
            bare = Server("bench.bare:app_factory", env, args.workers)
            worker_command = [str(Path(sys.executable).parent / "appeals"), "worker"]
        else:
            env.update(plain.environment(variant))
            app = Server("bench.plain:app_factory", env, args.workers)
            bare = Server("bench.plain:bare_factory", env, args.workers)
            worker_command = [sys.executable, "-m", "bench.plain", "worker"]
        worker = subprocess.Popen(
            worker_command,
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for port in app.ports:
                await _wait(port)
            for port in bare.ports:  # the bare app has no /healthz
                await _wait(port, "POST", "/bare")
            deputy_fields = "".join(f"&deputy={i}" for i in ids)
            submit_lua = directory / f"submit-{kind}.lua"
            submit_lua.write_text(
                app.script(
                    SUBMIT_LUA.format(ids=deputy_fields, path="/campaigns/bench/RU-BEN/submit")
                )
            )
            bare_lua = directory / f"bare-{kind}.lua"
            bare_lua.write_text(bare.script(SUBMIT_LUA.format(ids="", path="/bare")))
            db = _postmaster() if kind == "postgresql" else 0
            worker_cpu = _cpu_seconds(worker.pid)
            submit = _wrk(app, submit_lua, args, db=db)
            ended = time.perf_counter()
            while await _outbox(url) and time.perf_counter() - ended < 120:
                await asyncio.sleep(0.2)
            drained = time.perf_counter() - ended
            worker_cpu = _cpu_seconds(worker.pid) - worker_cpu
            worker.terminate()  # the letters made by the confirmations below are not sent
            worker.wait(30)
            left = await _outbox(url)  # an e-mail leaves the outbox once the server took it
            sent = await _count_submissions(url) - left
            peer = _wrk(bare, bare_lua, args, db=db)
            ratio = submit["ok_per_s"] / peer["ok_per_s"]
            lines.append(
                f"{label:10} submissions  {submit['ok_per_s']:8.0f}/s  p50 {submit['p50']:6.1f} ms"
                f"  p99 {submit['p99']:6.1f} ms  {_cpu(submit)}"
                f"  (errors {submit['errors']:.0f};"
                f" {sent} e-mails sent by `appeals worker`, the last {drained:.1f} s after,"
                f" its CPU {worker_cpu / max(sent, 1) * 1000:.2f} ms each; {left} left)"
            )
            lines.append(
                f"{label:10} bare insert  {peer['ok_per_s']:8.0f}/s  p50 {peer['p50']:6.1f} ms"
                f"  p99 {peer['p99']:6.1f} ms  {_cpu(peer)}"
                f"  ratio {ratio:.2f} (target >= 0.50)"
            )
            # Confirmations: enough pending submissions for the whole run.
            settings = Settings(environment="test", database_url=url, secret_key=SECRET)
            tokens = directory / f"tokens-{kind}.txt"
            await _pending(url, settings, args.confirmations, tokens)
            before = await _count_letters(url)
            confirm_lua = directory / f"confirm-{kind}.lua"
            confirm_lua.write_text(
                app.script(CONFIRM_LUA.format(tokens=tokens, threads=_threads(args)))
            )
            started = time.perf_counter()
            confirm = _wrk(app, confirm_lua, args, db=db)
            elapsed = time.perf_counter() - started
            letters = await _count_letters(url) - before
            lines.append(
                f"{label:10} confirmations {confirm['ok_per_s']:7.0f}/s"
                f"  p50 {confirm['p50']:6.1f} ms"
                f"  p99 {confirm['p99']:6.1f} ms  {_cpu(confirm)}"
                f"  letters {letters} = {letters / elapsed:,.0f}/s"
                f"  (errors {confirm['errors']:.0f}; target >= 100/s)"
            )
        finally:
            app.stop()
            bare.stop()
            worker.terminate()
            worker.wait(10)
            smtp.terminate()
            smtp.wait(10)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes of each server")
    parser.add_argument("--confirmations", type=int, default=3000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--variants",
        default=plain.SHIPPED,
        help=f"comma-separated: {plain.SHIPPED}, or the mechanism replaced by the plain path"
        f" ({', '.join(plain.MECHANISMS)})",
    )
    args = parser.parse_args()
    variants = args.variants.split(",")
    for variant in variants:
        try:
            plain.parse(variant)
        except ValueError as error:
            parser.error(str(error))
    if args.connections % _threads(args):
        parser.error(f"--connections must be a multiple of wrk's threads ({_threads(args)})")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    if not Path(SMTP_SINK).exists():
        sys.exit(f"{SMTP_SINK} is missing: apt-get install -y postfix")
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases.split(","):
            for variant in variants:
                lines += asyncio.run(run(kind, args, Path(tmp), variant))
            print("\n".join(lines[-3:]), flush=True)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
