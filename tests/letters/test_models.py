"""The letter's state machine: the one table of allowed transitions, enforced by move()."""

from __future__ import annotations

import pytest

from app.letters.models import (
    ALLOWED,
    FINAL,
    InvalidTransition,
    Letter,
    LetterStatus,
    move,
    sources,
)

S = LetterStatus


def _letter(status: LetterStatus) -> Letter:
    return Letter(status=status, lease_owner="w1")


def test_final_statuses_allow_nothing() -> None:
    assert {S.sent, S.failed, S.cancelled} == FINAL
    for status in FINAL:
        for to in S:
            with pytest.raises(InvalidTransition):
                move(_letter(status), to)


@pytest.mark.parametrize(("start", "to"), [(s, t) for s in S for t in ALLOWED[s]])
def test_allowed_moves_change_status(start: LetterStatus, to: LetterStatus) -> None:
    letter = _letter(start)
    move(letter, to)
    assert letter.status == to
    assert (letter.finished_at is not None) == (to in FINAL)
    if to in FINAL:
        assert letter.lease_owner is None


@pytest.mark.parametrize(
    ("start", "to"),
    [(S.queued, S.sent), (S.held, S.sending), (S.held, S.deferred), (S.deferred, S.queued)],
)
def test_forbidden_moves_raise(start: LetterStatus, to: LetterStatus) -> None:
    letter = _letter(start)
    with pytest.raises(InvalidTransition) as raised:
        move(letter, to)
    assert letter.status == start
    assert raised.value.status_code == 409


def test_sources_reads_the_same_table() -> None:
    assert sources(S.held) == {S.queued, S.deferred, S.sending}
    assert sources(S.cancelled) == {S.queued, S.deferred, S.held, S.sending}
    assert sources(S.sending) == {S.queued, S.deferred}
