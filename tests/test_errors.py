"""Error messages: English templates, translated into the request's language when shown."""

from __future__ import annotations

from app.campaigns.models import CampaignStatus
from app.errors import Conflict, InvalidInput, NotFound
from app.i18n import current_language


def test_message_is_english_and_localized_follows_the_language() -> None:
    error = Conflict(
        "A campaign that is {status} cannot become {to}.",
        field="status",
        status=CampaignStatus.closed,
        to=CampaignStatus.published,
    )
    assert error.message == "A campaign that is closed cannot become published."
    assert str(error) == error.message
    token = current_language.set("ru")
    try:
        assert error.localized() == (
            "Кампанию в статусе «закрыта» нельзя перевести в статус «опубликована»."
        )
    finally:
        current_language.reset(token)
    token = current_language.set("en")
    try:
        assert error.localized() == error.message
    finally:
        current_language.reset(token)


def test_parameters_are_not_templates() -> None:
    # A hostile value is inserted as it is, never formatted again.
    error = NotFound("No campaign {slug!r}.", field="campaign", slug="{0.__class__}")
    assert error.message == "No campaign '{0.__class__}'."
    token = current_language.set("ru")
    try:
        assert error.localized() == "Кампании «{0.__class__}» нет."
    finally:
        current_language.reset(token)


def test_messages_without_parameters_keep_their_braces() -> None:
    # Messages made at run time (a template's syntax error) are shown as they are.
    error = InvalidInput("line 1: syntax error: unexpected '}'", field="body")
    assert error.localized() == "line 1: syntax error: unexpected '}'"
