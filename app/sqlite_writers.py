"""On SQLite, writers queue for the write lock instead of polling for it.

SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps
between attempts (1, 2, 5, … then 100 ms each). Under load the lock falls free while every waiter
sleeps: with two web processes, submissions waited up to 1.4 s (p99) for a lock held about 3 ms.

So a transaction begun with BEGIN IMMEDIATE (db.begin_write, the worker's claims, and
db.insert_and_commit through queue_pooled) first takes an exclusive `flock` on a file beside the
database, through an open file of its own connection, or, when it has to wait, of its wait (in a
thread the connection keeps for its waits). The kernel hands it to the next waiter the moment it
is let go: by the driver (app.sqlite_driver), in the connection's thread, as soon as COMMIT or
ROLLBACK returns; failing that when the connection goes back to the pool or is closed (a process
that dies lets it go with its files). This lock only orders the writers that ask for it; SQLite's
own lock still guards the data, and a writer that does not queue (another program, a deferred
BEGIN that writes) waits in the busy handler as before. A wait longer than the busy timeout gives
up the queue and falls back to the busy handler, so a stuck holder cannot stop the others for
longer than SQLite itself would.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

_FD = "appeals_writer_fd"
_HELD = "appeals_writer_held"
_WAITER = "appeals_writer_waiter"
_PATH = "appeals_writer_path"
_TIMEOUT = "appeals_writer_timeout"


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + "-writers")


class _Wait:
    """One connection's wait for the lock, in its waiter thread, through an open file of its own
    (the lock belongs to an open file: a wait given up must never let go of a lock its
    connection took since through the connection's own file). Once acquired, the lock is held
    through this file, which the holder closes to let it go; if the waiter gave up (cancelled,
    timed out), the thread closes it as soon as it gets the lock."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.mutex = threading.Lock()
        self.state = "waiting"  # -> "acquired" | "abandoned"

    def run(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            with self.mutex:
                self.state = "abandoned"
            os.close(self.fd)
            raise
        with self.mutex:
            if self.state == "abandoned":
                os.close(self.fd)  # lets the lock go
            else:
                self.state = "acquired"

    def abandon(self) -> None:
        with self.mutex:
            if self.state == "acquired":  # got it just as the waiter left
                os.close(self.fd)
            self.state = "abandoned"


_Job = tuple[_Wait, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class _Waiter:
    """A daemon thread that waits for the lock on behalf of one pooled connection, kept for all
    its waits: under load most writes wait, and starting a thread for each cost about 0.1 ms of
    CPU here. Daemon, as an executor's threads are joined at exit and one blocked on a lock
    another process holds would keep this process from ending. A wait given up (timed out) while
    the thread still blocks delays that connection's next wait, which gives up in turn and falls
    back to the busy handler: only a stuck holder does that."""

    def __init__(self) -> None:
        self.jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self.thread: threading.Thread | None = None

    def wait(self, wait: _Wait) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="sqlite-writer-wait", daemon=True)
            self.thread.start()
        self.jobs.put((wait, loop, future))
        return future

    def stop(self) -> None:
        if self.thread is not None:
            self.jobs.put(None)

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            wait, loop, future = job
            error: BaseException | None = None
            try:
                wait.run()
            except BaseException as exc:  # handed to the waiting coroutine
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


async def _acquire(waiter: _Waiter, path: Path, timeout: float) -> int | None:
    """Wait for the lock; the open file that holds it, or None if the wait gave up after
    `timeout` seconds."""
    wait = _Wait(path)
    future = waiter.wait(wait)
    try:
        await asyncio.wait_for(asyncio.shield(future), timeout)
        return wait.fd
    except TimeoutError:
        wait.abandon()
        return None
    except BaseException:
        wait.abandon()
        raise


def install(engine: AsyncEngine, database: Path, *, timeout: float) -> None:
    """Queue this engine's BEGIN IMMEDIATE transactions on `database`'s lock file, a wait giving
    up after `timeout` seconds (SQLite's busy timeout)."""
    path = lock_path(database)

    @event.listens_for(engine.sync_engine, "connect")
    def _open(_dbapi_connection: Any, record: Any) -> None:
        record.info[_FD] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        record.info[_PATH] = path
        record.info[_WAITER] = _Waiter()
        record.info[_TIMEOUT] = timeout

    @event.listens_for(engine.sync_engine, "checkin")
    def _release(_dbapi_connection: Any, record: Any) -> None:
        held = record.info.pop(_HELD, None)
        if held is not None:
            held.release()

    # A connection closed, invalidated or detached from the pool: its file closes, which lets
    # the lock go if it held it.
    @event.listens_for(engine.sync_engine, "close")
    @event.listens_for(engine.sync_engine, "detach")
    def _close(_dbapi_connection: Any, record: Any) -> None:
        held = record.info.pop(_HELD, None)
        if held is not None:
            held.release()  # before its file closes (the driver would then try on a closed fd)
        waiter = record.info.pop(_WAITER, None)
        if waiter is not None:
            waiter.stop()
        fd = record.info.pop(_FD, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Held:
    """The lock held for one transaction, let go once: by the driver in the connection's thread
    the moment COMMIT or ROLLBACK returns, or else when the connection goes back to the pool.
    Held through the connection's file, or through a wait's own (`owned`: closed to let go)."""

    def __init__(self, fd: int, *, owned: bool) -> None:
        self.fd = fd
        self.owned = owned
        self.mutex = threading.Lock()
        self.held = True

    def release(self) -> None:
        with self.mutex:
            if self.held:
                self.held = False
                with contextlib.suppress(OSError):  # its file closed: the lock went with it
                    if self.owned:
                        os.close(self.fd)
                    else:
                        fcntl.flock(self.fd, fcntl.LOCK_UN)


def queue(connection: Any) -> None:
    """Take the writers' lock for this connection (from the "begin" event, before BEGIN
    IMMEDIATE, in SQLAlchemy's greenlet); nothing on an engine without a lock file."""
    pooled = connection.connection
    if not _take_now(pooled):
        await_(_wait(pooled))


async def queue_pooled(pooled: Any) -> None:
    """The same for a connection taken from the pool directly (AsyncEngine.raw_connection),
    before its BEGIN IMMEDIATE."""
    if not _take_now(pooled):
        await _wait(pooled)


def _take_now(pooled: Any) -> bool:
    """Whether the connection holds the lock now (taken at once, held already, or no lock file
    on this engine); False if it has to wait."""
    info = pooled.info  # the pooled connection's, kept across checkouts
    fd = info.get(_FD)
    held = info.get(_HELD)
    if fd is None or (held is not None and held.held):
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    _hold(pooled, _Held(fd, owned=False))
    return True


async def _wait(pooled: Any) -> None:
    info = pooled.info
    acquired = await _acquire(info[_WAITER], info[_PATH], info[_TIMEOUT])
    if acquired is not None:  # else it waited too long: SQLite's busy handler takes over
        _hold(pooled, _Held(acquired, owned=True))


def _hold(pooled: Any, held: _Held) -> None:
    pooled.info[_HELD] = held
    when_done = getattr(pooled.dbapi_connection, "when_done", None)
    if when_done is not None:
        when_done(held.release)
