"""app.outage, the background loops' side: an outage logged once when it starts and once when it
ends, a back-off that doubles up to its cap, and the errors that mean "the database is away"."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from app.failsafe import is_outage
from app.outage import Outage


def _disconnect() -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, ConnectionResetError(), connection_invalidated=True)


def test_the_loops_take_the_webs_test_of_an_outage() -> None:
    locked = sqlite3.OperationalError("database is locked")
    assert is_outage(ConnectionRefusedError())
    assert is_outage(TimeoutError())
    assert is_outage(_disconnect())
    assert is_outage(sa_exc.OperationalError("BEGIN", None, locked))
    assert not is_outage(sa_exc.IntegrityError("INSERT", None, Exception("duplicate")))
    assert not is_outage(ValueError())


def test_one_line_for_the_outage_one_for_the_recovery(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(logging.getLogger("appeals.test"), "loop", first_delay=0.1, max_delay=0.5)
    caplog.set_level(logging.INFO, logger="appeals.test")
    delays = []
    for _ in range(6):
        outage.failed(ConnectionRefusedError(), outage.clock())
        delays.append(outage.delay)
    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    outage.succeeded(outage.clock())
    assert not outage.active
    assert outage.delay == 0.1
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records[0] == (
        "WARNING",
        "loop: database unreachable (ConnectionRefusedError); retrying with back-off up to 0.5 s",
    )
    assert records[1][0] == "WARNING"
    assert records[1][1].startswith("loop: database reachable again after ")
    assert records[1][1].endswith("(6 failed attempts)")
    assert len(records) == 2


def test_steps_begun_on_the_other_side_of_a_change_change_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(logging.getLogger("appeals.test"), "loop")
    caplog.set_level(logging.INFO, logger="appeals.test")
    before = outage.clock()
    outage.failed(_disconnect(), outage.clock())
    outage.succeeded(before)  # begun before the failure: says nothing of the database now
    assert outage.active
    during = outage.clock()
    outage.succeeded(outage.clock())
    assert not outage.active
    outage.failed(_disconnect(), during)  # a connection gone stale in the outage that ended
    assert not outage.active
    assert len(caplog.records) == 2


def test_another_fault_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(logging.getLogger("appeals.test"), "loop")
    outage.failed(ValueError("a fault, not an outage"), outage.clock())
    (record,) = caplog.records
    assert record.levelname == "ERROR"
    assert "ValueError" in record.getMessage()
    assert "a fault" not in record.getMessage()  # the type only, never the message
