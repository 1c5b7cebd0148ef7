"""The packages under app/ stack like floors: each imports only those below it.

Every module under app/ is parsed with `ast` (imports inside functions and under TYPE_CHECKING
count too) and each import of `app.<unit>` is checked against the floors below. A lower package
that must reach a higher one does it through a hook (app/hooks.py), never an import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# The ground floor: shared infrastructure, which imports nothing but itself.
INFRASTRUCTURE = frozenset(
    {
        "body_limit",
        "config",
        "db",
        "dependencies",
        "errors",
        "failsafe",
        "hooks",
        "i18n",
        "mail",
        "methods",
        "migrate",
        "openapi",
        "outage",
        "ratelimit",
        "security",
        "sqlite_driver",
        "templating",
        "text",
    }
)

# The domain packages, lowest first: a package imports infrastructure and lower floors only
# (packages on the same floor do not import each other).
FLOORS: Mapping[str, int] = {
    "deputies": 1,
    "staff": 1,
    "campaigns": 2,
    "letters": 3,
    "delivery": 4,
    "stats": 5,
}

# The roof: the modules that assemble everything (the app, the command line, the schema for
# Alembic). They may import anything; nothing under app/ imports them.
TOP = frozenset({"main", "cli", "models"})

# Imports that still break the floors, as (importing package, imported module or package), each
# waiting for the change that removes it. test_every_known_exception_is_still_needed fails once
# an entry's imports are gone, so that it is deleted rather than forgotten. None today.
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. app.campaigns.vetting
    target: str  # the imported module or package, e.g. app.letters.service
    line: int


def _unit(name: str) -> str:
    """The package or top-level module of app/ that a dotted name belongs to."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_module(name: str) -> bool:
    path = APP.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def app_modules() -> Iterator[tuple[str, Path]]:
    """Every module under app/, by dotted name."""
    for path in sorted(APP.rglob("*.py")):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def imports_of(module: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """The imports of app.* in a module's source, resolved to the module or package imported."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "app" or alias.name.startswith("app."):
                    yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            if origin != "app" and not origin.startswith("app."):
                continue
            for alias in node.names:
                # `from app.campaigns import service` imports the module app.campaigns.service.
                candidate = f"{origin}.{alias.name}"
                yield Import(module, candidate if _is_module(candidate) else origin, node.lineno)


def _allowed(importer: str, target: str) -> bool | None:
    """Whether a unit may import another; None when either has no declared place."""
    if importer == target or importer in TOP:
        return True
    known = INFRASTRUCTURE | TOP | FLOORS.keys()
    if importer not in known or target not in known:
        return None
    if target in TOP:
        return False
    if target in INFRASTRUCTURE:
        return True
    if importer in INFRASTRUCTURE:
        return False
    return FLOORS[target] < FLOORS[importer]


def _exception_for(found: Import, exceptions: frozenset[tuple[str, str]]) -> tuple[str, str] | None:
    for package, prefix in exceptions:
        if _unit(found.module) == package and (
            found.target == prefix or found.target.startswith(prefix + ".")
        ):
            return package, prefix
    return None


def check(
    sources: Mapping[str, str], exceptions: frozenset[tuple[str, str]] = KNOWN_EXCEPTIONS
) -> tuple[list[str], set[tuple[str, str]]]:
    """The imports that break the floors, as readable lines, and the known exceptions used."""
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    for module, source in sorted(sources.items()):
        is_package = (APP.parent.joinpath(*module.split(".")) / "__init__.py").is_file()
        for found in imports_of(module, source, is_package=is_package):
            importer, target = _unit(found.module), _unit(found.target)
            if not target:
                continue  # `import app` alone names no floor
            allowed = _allowed(importer, target)
            if allowed:
                continue
            exception = _exception_for(found, exceptions)
            if exception is not None:
                used.add(exception)
                continue
            if allowed is None:
                unknown = target if importer in INFRASTRUCTURE | TOP | FLOORS.keys() else importer
                problems.append(
                    f"{found.module}:{found.line} imports {found.target}: give app.{unknown} "
                    "a place in tests/test_layers.py (INFRASTRUCTURE, FLOORS or TOP)"
                )
            else:
                problems.append(
                    f"{found.module}:{found.line} imports {found.target}: "
                    f"{_describe(importer)} must not import {_describe(target)} "
                    "(use a hook: app/hooks.py)"
                )
    return problems, used


def _describe(unit: str) -> str:
    if unit in FLOORS:
        return f"app.{unit} (floor {FLOORS[unit]})"
    if unit in TOP:
        return f"app.{unit} (the top)"
    return f"app.{unit} (infrastructure)"


def _real_sources() -> dict[str, str]:
    return {module: path.read_text(encoding="utf-8") for module, path in app_modules()}


def test_every_package_and_module_has_a_place() -> None:
    declared = INFRASTRUCTURE | TOP | FLOORS.keys()
    units = {_unit(module) for module, _ in app_modules()} - {""}
    assert units - declared == set(), "declare each in INFRASTRUCTURE, FLOORS or TOP"
    assert declared - units == set(), "a declared unit no longer exists"


def test_packages_import_only_the_floors_below() -> None:
    problems, _ = check(_real_sources())
    assert problems == []


def test_every_known_exception_is_still_needed() -> None:
    _, used = check(_real_sources())
    assert KNOWN_EXCEPTIONS - used == set(), "delete these from KNOWN_EXCEPTIONS"


def test_campaigns_importing_letters_or_delivery_is_caught() -> None:
    problems, _ = check(
        {
            "app.campaigns.vetting": (
                "from app.letters import service as letters_service\n"
                "def later() -> None:\n"
                "    from app.delivery.service import pause_campaign\n"
            )
        }
    )
    assert problems == [
        "app.campaigns.vetting:1 imports app.letters.service: app.campaigns (floor 2) must not "
        "import app.letters (floor 3) (use a hook: app/hooks.py)",
        "app.campaigns.vetting:3 imports app.delivery.service: app.campaigns (floor 2) must not "
        "import app.delivery (floor 4) (use a hook: app/hooks.py)",
    ]


def test_the_exceptions_cover_only_what_they_name() -> None:
    problems, used = check(
        {
            "app.letters.service": (
                "from app.delivery import pacing\n"
                "from app.delivery import service as delivery_service\n"
            )
        },
        exceptions=frozenset({("letters", "app.delivery.pacing")}),
    )
    assert used == {("letters", "app.delivery.pacing")}
    assert len(problems) == 1
    assert problems[0].startswith("app.letters.service:2 imports app.delivery.service:")


def test_floors_peers_infrastructure_and_the_top() -> None:
    problems, _ = check(
        {
            "app.staff.service": "import app.deputies.service\n",  # same floor
            "app.db": "from app.letters.models import Letter\n",  # infrastructure reaching up
            "app.stats.routes": "from app import main\n",  # the top is imported by nobody
            "app.delivery.worker": "from ..letters import models\n",  # downward, relative
            "app.main": "from app.stats import routes\n",  # the top imports anything
        }
    )
    assert [problem.split(":", 1)[0] for problem in problems] == [
        "app.db",
        "app.staff.service",
        "app.stats.routes",
    ]
