"""A PostgreSQL server of a test's own, for fault tests that stop and restart it: its own data
directory and port, never the shared server on 5432. Debian's initdb and pg_ctl (found with
`pg_config --bindir`), run as the `postgres` user when the tests run as root (initdb refuses
root)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import migrate
from app.db import create_engine
from tests.databases import unavailable


def _bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0 and (Path(found.stdout.strip()) / "initdb").exists():
            return Path(found.stdout.strip())
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnPostgres:
    """initdb once, then start, stop and restart at will; `url` reaches its `postgres` database
    over TCP on loopback (trust authentication, like the shared test server)."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            unavailable("initdb and pg_ctl not found (Debian package postgresql)")
        assert bindir is not None
        self.bindir = bindir
        self.port = _free_port()
        # Not under pytest's tmp_path: its base directory is private to root, and the server
        # runs as `postgres`, which must reach its data directory.
        self.directory = Path(tempfile.mkdtemp(prefix="appeals-own-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root, and there is no `postgres` user to run initdb as")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}\n{log[-2000:]}")

    def _pg_ctl(self, action: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            action,
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-m",
            "fast",
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        """A fast shutdown: every session is ended at once, as in a real restart."""
        self._pg_ctl("stop")

    def restart(self) -> None:
        self._pg_ctl("restart")

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A started server of the caller's own, stopped and removed afterwards."""
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


async def create_migrated_database(server: OwnPostgres) -> str:
    """A new database on `server`, migrated to head by Alembic; returns its URL."""
    name = f"appeals_own_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = make_url(server.url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate.upgrade, url)
    return url
