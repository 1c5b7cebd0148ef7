"""A PostgreSQL server of a test's own (Debian's binaries, `pg_config --bindir`), on its own port
and data directory, that the test stops and starts again: real outages, real restarts.

As root (the CI container), the server runs as the `postgres` user through `runuser`, in a
directory under the system's temporary directory (pytest's own is readable by root only).
"""

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

SERVER_USER = "postgres"


def _bindir() -> Path | None:
    """Where initdb and pg_ctl are: `pg_config --bindir`, else Debian's newest version."""
    try:
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=10
        )
        path = Path(out.stdout.strip())
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    except (OSError, subprocess.SubprocessError):
        pass
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda initdb: [int(part) for part in initdb.parts[-3].split(".") if part.isdigit()],
    )
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OwnPostgres:
    """initdb once, then start/stop/restart at will; `url` stays the same across restarts.

    `settings` are extra server settings (postgresql.conf lines), e.g.
    {"log_min_error_statement": "error"}; the server's log is `log_text()`.
    """

    def __init__(
        self, directory: Path | None = None, *, settings: dict[str, str] | None = None
    ) -> None:
        bindir = _bindir()
        if bindir is None:
            unavailable("PostgreSQL's initdb and pg_ctl are not installed (pg_config --bindir)")
            raise AssertionError("unreachable")
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self._own_tmp: Path | None = None
        if directory is None and not self.as_root:
            directory = self._own_tmp = Path(tempfile.mkdtemp(prefix="appeals-pg-"))
        if self.as_root:
            try:
                server_user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                unavailable(f"running as root, and there is no {SERVER_USER!r} user to run initdb")
                raise AssertionError("unreachable") from None
            directory = self._own_tmp = Path(tempfile.mkdtemp(prefix="appeals-pg-"))
            os.chown(directory, server_user.pw_uid, server_user.pw_gid)
            directory.chmod(0o700)
        assert directory is not None
        self.directory = directory
        self.data = directory / "data"
        self.logfile = directory / "server.log"
        self.port = _free_port()
        self.settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{directory}'",
            "fsync": "off",  # a test's throw-away data
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            "shared_buffers": "16MB",
        } | (settings or {})
        self.running = False
        self._init()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )

    def _init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", SERVER_USER, "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            for name, value in self.settings.items():
                conf.write(f"{name} = {value}\n")

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60", "start"
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session at once, `immediate` as a crash would."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def restart(self) -> None:
        if self.running:
            self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        """Stop the server if it runs and remove its directory."""
        if self.running:
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                self.stop("immediate")
        if self._own_tmp is not None:
            shutil.rmtree(self._own_tmp, ignore_errors=True)
        else:
            shutil.rmtree(self.data, ignore_errors=True)


@contextlib.contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A started server of the caller's own, stopped and removed afterwards."""
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


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
