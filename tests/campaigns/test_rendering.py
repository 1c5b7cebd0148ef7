"""Appeal texts as sandboxed templates: what is refused at save time, and what rendering does."""

from __future__ import annotations

import datetime as dt

import pytest

from app.campaigns import rendering
from app.deputies.models import Gender
from app.errors import InvalidInput

DEPUTY = {
    "surname": "Петров",
    "first_name": "Иван",
    "patronymic": "Сергеевич",
    "full_name": "Петров Иван Сергеевич",
    "salutation": "Уважаемый Иван Сергеевич",
    "position": "Депутат",
    "legislature": "Законодательное собрание",
    "region": "Тверская область",
}
CITIZEN = {"full_name": "Иванова Мария", "locality": "г. Тверь", "address": "ул. Мира, 1"}
DATE = dt.date(2026, 11, 27)

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__self__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config }}",
    "{{ request }}",
    "{{ deputy.__class__ }}",
    "{{ deputy.items() }}",
    "{{ deputy['surname'] }}",
    "{{ deputy.surname.upper() }}",
    "{{ deputy.surname | attr('__class__') }}",
    "{{ deputy.surname | format('%s') }}",
    "{{ deputy.surname | map('upper') | list }}",
    "{% include 'base.html' %}",
    "{% import 'x' as y %}",
    "{% from 'x' import y %}",
    "{% extends 'base.html' %}",
    "{% macro m() %}x{% endmacro %}",
    "{% call deputy.surname() %}x{% endcall %}",
    "{% for c in deputy.surname %}{{ c }}{% endfor %}",
    "{% set x = 1 %}",
    "{% with x = deputy %}{{ x }}{% endwith %}",
    "{% filter upper %}x{% endfilter %}",
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ {'a': 1} }}",
    "{{ [1, 2] }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_are_refused_at_save_time(source: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rendering.check_version("Тема", source, address_allowed=True)
    assert caught.value.field == "body"
    assert "line 1" in caught.value.message or "unknown variable" in caught.value.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% include 'base.html' %}",
        "{{ deputy.__class__ }}",
        "{{ lipsum.__globals__ }}",
    ],
)
def test_sandbox_escapes_are_harmless_at_render_time(source: str) -> None:
    # Even if such a text reached the database some other way, rendering refuses it cleanly.
    with pytest.raises(InvalidInput):
        rendering.render(
            "Тема", source, deputy=DEPUTY, citizen=CITIZEN, date=DATE, address_allowed=True
        )


def test_the_raw_environment_blocks_internals_too() -> None:
    # Below the save-time checks, the sandbox itself refuses: defence in depth.
    from jinja2.exceptions import SecurityError

    for source in ("{{ ''.__class__ }}", "{{ deputy.__class__.__mro__ }}"):
        with pytest.raises(SecurityError):
            rendering.ENV.from_string(source).render(deputy={})
    with pytest.raises(TypeError):  # no loader: include has nothing to read
        rendering.ENV.from_string("{% include 'base.html' %}").render()


def test_syntax_errors_are_reported_with_their_line() -> None:
    with pytest.raises(InvalidInput) as caught:
        rendering.check_version(
            "Тема", "Строка 1\nСтрока 2\n{{ deputy.surname ", address_allowed=False
        )
    assert caught.value.message.startswith("line 3: syntax error")


def test_unknown_variables_are_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        rendering.check_version(
            "Тема", "{{ deputy.surname }}\n{{ citizen.phone }}\n{{ secret }}", address_allowed=False
        )
    assert "line 2: “.phone” is not one of the documented variables" in caught.value.message
    assert "line 3: unknown variable “secret”" in caught.value.message


def test_address_only_where_the_campaign_requires_it() -> None:
    with pytest.raises(InvalidInput, match="requires an address"):
        rendering.check_version("Тема", "{{ citizen.address }}", address_allowed=False)
    rendering.check_version("Тема", "{{ citizen.address }}", address_allowed=True)


@pytest.mark.parametrize(
    ("subject", "body", "field"),
    [
        ("Т" * (rendering.SUBJECT_MAX + 1), "текст", "subject"),
        ("Тема", "т" * (rendering.BODY_MAX + 1), "body"),
        ("Тема\nBcc: everyone@example.org", "текст", "subject"),
        ("", "текст", "subject"),
        ("Тема", "   ", "body"),
        ("Тема", "текст\x00", "body"),
    ],
)
def test_limits_and_single_line_subject(subject: str, body: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rendering.check_version(subject, body, address_allowed=False)
    assert caught.value.field == field


def test_render_a_letter_with_conditions_and_filters() -> None:
    subject = "Обращение к депутату {{ deputy.surname | upper }}"
    body = (
        "{{ deputy.salutation }}!\n"
        "{% if deputy.patronymic %}С отчеством{% else %}Без отчества{% endif %}\n"
        "{{ citizen.full_name }}, {{ citizen.locality | default('—') }}, {{ date }}"
    )
    rendering.check_version(subject, body, address_allowed=False)
    got = rendering.render(
        subject, body, deputy=DEPUTY, citizen=CITIZEN, date=DATE, address_allowed=False
    )
    assert got == (
        "Обращение к депутату ПЕТРОВ",
        "Уважаемый Иван Сергеевич!\nС отчеством\nИванова Мария, г. Тверь, 27 ноября 2026 г.",
    )


def test_values_cannot_inject_headers_into_the_subject() -> None:
    deputy = {**DEPUTY, "surname": "Петров\r\nBcc: all@example.org"}
    subject, _ = rendering.render(
        "{{ deputy.surname }}",
        "x",
        deputy=deputy,
        citizen=CITIZEN,
        date=DATE,
        address_allowed=False,
    )
    assert "\n" not in subject
    assert "\r" not in subject
    assert subject == "Петров Bcc: all@example.org"


@pytest.mark.parametrize(
    ("gender", "patronymic", "expected"),
    [
        (Gender.male, "Петрович", "Уважаемый Иван Петрович"),
        (Gender.female, "Сергеевна", "Уважаемая Иван Сергеевна"),
        (None, "Петрович", "Уважаемый(ая) Иван Петрович"),
        (Gender.male, "", "Уважаемый Иван Сидоров"),
    ],
)
def test_salutation(gender: Gender | None, patronymic: str, expected: str) -> None:
    got = rendering.salutation(
        first_name="Иван", patronymic=patronymic, surname="Сидоров", gender=gender
    )
    assert got == expected
