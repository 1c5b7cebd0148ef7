"""Appeal texts as Jinja2 templates: validation at save time and sandboxed rendering of letters.

Documented variables (the only names a text may use):

| variable             | example                                   |
|----------------------|-------------------------------------------|
| `deputy.surname`     | Петров                                    |
| `deputy.first_name`  | Иван                                      |
| `deputy.patronymic`  | Сергеевич (may be empty)                  |
| `deputy.full_name`   | Петров Иван Сергеевич                     |
| `deputy.salutation`  | Уважаемый Иван Сергеевич / Уважаемая Анна Сергеевна; Уважаемый(ая) … |
| `deputy.position`    | Депутат Законодательного собрания         |
| `deputy.legislature` | Законодательное собрание Тверской области |
| `deputy.region`      | Тверская область                          |
| `citizen.full_name`  | Иванова Мария Сергеевна                   |
| `citizen.locality`   | г. Тверь                                  |
| `citizen.address`    | only in campaigns that require an address |
| `date`               | 27 ноября 2026 г.                         |

Filters: upper, lower, capitalize, title, trim, default. Tags: `{% if %}`/`{% elif %}`/`{% else %}`
with comparisons, `and`, `or`, `not`. Nothing else: no attribute or item access outside the table,
no loops, includes, imports, macros, blocks or calls. A text is checked against these rules when it
is saved and again before each rendering, and renders in an ImmutableSandboxedEnvironment with
StrictUndefined, from plain strings only (never database objects), so even a text that slipped
past the checks could reach nothing but these strings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.deputies.models import Deputy, Gender
from app.errors import InvalidInput

ADDRESS_REFUSED = "citizen.address is only allowed when the campaign requires an address"
SUBJECT_MAX = 300
BODY_MAX = 20_000
RENDERED_SUBJECT_MAX = 998  # an e-mail header line

DEPUTY_FIELDS = (
    "surname",
    "first_name",
    "patronymic",
    "full_name",
    "salutation",
    "position",
    "legislature",
    "region",
)
CITIZEN_FIELDS = ("full_name", "locality", "address")
ALLOWED_FILTERS = frozenset({"upper", "lower", "capitalize", "title", "trim", "default"})
ALLOWED_TESTS = frozenset({"defined", "undefined", "none"})

VARIABLES_DOC: list[tuple[str, str]] = [
    ("deputy.surname", "фамилия депутата"),
    ("deputy.first_name", "имя"),
    ("deputy.patronymic", "отчество (может быть пустым)"),
    ("deputy.full_name", "фамилия, имя, отчество"),
    ("deputy.salutation", "«Уважаемый Иван Петрович» / «Уважаемая Анна Сергеевна»"),
    ("deputy.position", "должность"),
    ("deputy.legislature", "законодательный орган"),
    ("deputy.region", "регион"),
    ("citizen.full_name", "ФИО отправителя"),
    ("citizen.locality", "населённый пункт отправителя"),
    ("citizen.address", "адрес отправителя (только если кампания требует адрес)"),
    ("date", "дата письма, например «27 ноября 2026 г.»"),
]

MONTHS_GENITIVE = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip

SAMPLE_CITIZEN = {
    "full_name": "Иванова Мария Сергеевна",
    "locality": "г. Тверь",
    "address": "ул. Советская, д. 1, кв. 1",
}

# Node types a text may contain; anything else (loops, calls, includes, arithmetic...) is refused.
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Concat,
)
_REFUSED_NAMES: dict[type[nodes.Node], str] = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from … import %}",
    nodes.Extends: "{% extends %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Call: "function calls",
    nodes.For: "{% for %}",
    nodes.Block: "{% block %}",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.With: "{% with %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.Getitem: "item access ([…])",
}


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    # No globals (range, cycler, joiner, namespace, lipsum, dict) and only the whitelisted filters.
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in ALLOWED_FILTERS}
    env.tests = {name: env.tests[name] for name in ALLOWED_TESTS}
    return env


ENV = _environment()


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def _walk(node: nodes.Node, allowed_vars: dict[str, tuple[str, ...] | None]) -> list[Problem]:
    problems: list[Problem] = []
    line = getattr(node, "lineno", None)
    if isinstance(node, nodes.Getattr):
        target = node.node
        fields = allowed_vars.get(target.name) if isinstance(target, nodes.Name) else None
        if isinstance(target, nodes.Name) and target.name == "citizen" and node.attr == "address":
            if fields and "address" not in fields:
                problems.append(Problem(line, ADDRESS_REFUSED))
                return problems
        if isinstance(target, nodes.Name) and target.name not in allowed_vars:
            problems.append(Problem(line, f"unknown variable “{target.name}”"))
            return problems
        if not isinstance(target, nodes.Name) or not fields or node.attr not in fields:
            problems.append(Problem(line, f"“.{node.attr}” is not one of the documented variables"))
        return problems
    if isinstance(node, nodes.Name):
        if node.ctx != "load" or node.name not in allowed_vars:
            problems.append(Problem(line, f"unknown variable “{node.name}”"))
        elif allowed_vars[node.name] is not None:
            problems.append(Problem(line, f"use a field of “{node.name}”, e.g. {node.name}.…"))
        return problems
    if isinstance(node, nodes.Filter | nodes.Test):
        kind = "filter" if isinstance(node, nodes.Filter) else "test"
        names = ALLOWED_FILTERS if kind == "filter" else ALLOWED_TESTS
        if node.name not in names:
            problems.append(Problem(line, f"the {kind} “{node.name}” is not allowed"))
            return problems
        if node.kwargs or node.dyn_args or node.dyn_kwargs:
            problems.append(Problem(line, f"the {kind} “{node.name}” takes no such arguments"))
        for arg in node.args:
            if not isinstance(arg, nodes.Const) or not isinstance(arg.value, str | bool | int):
                problems.append(Problem(line, f"arguments of “{node.name}” must be plain values"))
        if node.node is not None:
            problems.extend(_walk(node.node, allowed_vars))
        return problems
    if isinstance(node, nodes.Const) and not isinstance(node.value, str | int | bool | None):
        problems.append(Problem(line, "only text and number constants are allowed"))
        return problems
    if not isinstance(node, _ALLOWED_NODES):
        name = _REFUSED_NAMES.get(type(node), type(node).__name__)
        problems.append(Problem(line, f"not allowed in appeal texts: {name}"))
        return problems
    for child in node.iter_child_nodes():
        problems.extend(_walk(child, allowed_vars))
    return problems


def _allowed_vars(*, address_allowed: bool) -> dict[str, tuple[str, ...] | None]:
    citizen = (
        CITIZEN_FIELDS if address_allowed else tuple(f for f in CITIZEN_FIELDS if f != "address")
    )
    return {"deputy": DEPUTY_FIELDS, "citizen": citizen, "date": None}


def check_template(source: str, *, field: str, max_length: int, address_allowed: bool) -> None:
    """Raise InvalidInput (with the line) unless the source is a valid, allowed appeal template."""
    if len(source) > max_length:
        raise InvalidInput(
            "At most {limit} characters ({count} given).",
            field=field,
            limit=max_length,
            count=len(source),
        )
    if "\x00" in source:
        raise InvalidInput("The text contains a NUL character.", field=field)
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"line {exc.lineno}: syntax error: {exc.message}", field=field) from None
    allowed = _allowed_vars(address_allowed=address_allowed)
    problems = _walk(tree, allowed)
    if not problems:
        # Jinja's own analysis as a safety net (it compiles: only for trees the walk accepted).
        try:
            unknown = meta.find_undeclared_variables(tree) - allowed.keys()
        except TemplateError as exc:
            raise InvalidInput(f"line {getattr(exc, 'lineno', '?')}: {exc}", field=field) from None
        problems = [Problem(None, f"unknown variable “{name}”") for name in sorted(unknown)]
    if problems:
        unique = list(dict.fromkeys(str(p) for p in problems))
        summary = "; ".join(unique)
        raise InvalidInput(summary, field=field)


def check_version(subject: str, body: str, *, address_allowed: bool) -> None:
    """Both parts of a version; the subject is one line (it becomes an e-mail header)."""
    if not subject.strip():
        raise InvalidInput("The subject is empty.", field="subject")
    if not body.strip():
        raise InvalidInput("The body is empty.", field="body")
    if re.search(r"[\r\n\x0b\x0c\x85\u2028\u2029]", subject):
        raise InvalidInput("The subject must be a single line.", field="subject")
    check_template(
        subject, field="subject", max_length=SUBJECT_MAX, address_allowed=address_allowed
    )
    check_template(body, field="body", max_length=BODY_MAX, address_allowed=address_allowed)


# --- values ------------------------------------------------------------------------------------


def salutation(*, first_name: str, patronymic: str, surname: str, gender: Gender | None) -> str:
    """The polite Russian form of address: «Уважаемый Иван Петрович»."""
    name = f"{first_name} {patronymic or surname}".strip()
    words = {Gender.male: "Уважаемый", Gender.female: "Уважаемая"}
    word = "Уважаемый(ая)" if gender is None else words[gender]
    return f"{word} {name}"


def deputy_values(deputy: Deputy) -> dict[str, str]:
    """The deputy as plain strings; legislature and region must be loaded."""
    return {
        "surname": deputy.surname,
        "first_name": deputy.first_name,
        "patronymic": deputy.patronymic,
        "full_name": deputy.full_name,
        "salutation": salutation(
            first_name=deputy.first_name,
            patronymic=deputy.patronymic,
            surname=deputy.surname,
            gender=deputy.inferred_gender,
        ),
        "position": deputy.position,
        "legislature": deputy.legislature.name_ru,
        "region": deputy.legislature.region.name_ru,
    }


def format_date(date: dt.date) -> str:
    return f"{date.day} {MONTHS_GENITIVE[date.month - 1]} {date.year} г."


@lru_cache(maxsize=256)
def _compiled(source: str, address_allowed: bool) -> Template:
    check_template(source, field="template", max_length=BODY_MAX, address_allowed=address_allowed)
    return ENV.from_string(source)


_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def render(
    subject: str,
    body: str,
    *,
    deputy: Mapping[str, str],
    citizen: Mapping[str, str],
    date: dt.date,
    address_allowed: bool,
) -> tuple[str, str]:
    """Render a checked subject and body; InvalidInput if they cannot be rendered."""
    values = {
        "deputy": {k: str(deputy.get(k, "")) for k in DEPUTY_FIELDS},
        "citizen": {
            k: str(citizen.get(k, "")) for k in CITIZEN_FIELDS if address_allowed or k != "address"
        },
        "date": format_date(date),
    }
    try:
        rendered_subject = _compiled(subject, address_allowed).render(values)
        rendered_body = _compiled(body, address_allowed).render(values)
    except TemplateError as exc:  # SecurityError and UndefinedError included
        raise InvalidInput(f"The text cannot be rendered: {exc.message}", field="body") from None
    # A value must never turn the subject into several header lines.
    rendered_subject = _HEADER_UNSAFE.sub(" ", rendered_subject).strip()[:RENDERED_SUBJECT_MAX]
    rendered_body = rendered_body.replace("\r\n", "\n").replace("\r", "\n")
    return rendered_subject, rendered_body
