"""Hooks: one implementation each, a missing one is loud, and the app wires every one of them
whichever of its entry points a process starts from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Protocol

import pytest

from app.hooks import Hook

REPO = Path(__file__).resolve().parent.parent


class Greeter(Protocol):
    def greet(self) -> str: ...


class English:
    def greet(self) -> str:
        return "hello"


class Russian:
    def greet(self) -> str:
        return "привет"


def test_a_hook_without_implementation_names_who_provides_it() -> None:
    hook: Hook[Greeter] = Hook("greetings", provider="app.greetings")
    assert hook.implementation is None
    with pytest.raises(RuntimeError, match=r"greetings: import app\.greetings"):
        hook.get()


def test_a_hook_has_one_implementation() -> None:
    hook: Hook[Greeter] = Hook("greetings", provider="app.greetings")
    english = English()
    hook.register(english)
    hook.register(english)  # importing twice is harmless
    assert hook.get().greet() == "hello"
    with pytest.raises(RuntimeError, match="registered already"):
        hook.register(Russian())
    assert hook.get() is english


def _in_a_fresh_process(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# Only sys.modules is read after the entry point: importing anything else could wire the hooks.
WIRED = """
import sys
import {entry}
modules = sys.modules
campaigns_hooks, letters_hooks = modules["app.campaigns.hooks"], modules["app.letters.hooks"]
letters_service, delivery_service = modules["app.letters.service"], modules["app.delivery.service"]
print(
    campaigns_hooks.letters.implementation is letters_service,
    campaigns_hooks.delivery.implementation is delivery_service,
    letters_hooks.delivery.implementation is delivery_service,
)
"""


@pytest.mark.parametrize("entry", ["app.models", "app.main", "app.cli", "app.delivery.worker"])
def test_every_entry_point_wires_the_hooks(entry: str) -> None:
    # A fresh interpreter: in this one every package was imported long ago.
    assert _in_a_fresh_process(WIRED.format(entry=entry)) == "True True True"


def test_campaigns_alone_refuse_a_withdrawal_rather_than_forget_its_letters() -> None:
    out = _in_a_fresh_process(
        "import sys\n"
        "from app.campaigns import hooks, service\n"
        "print('app.letters' in sys.modules, 'app.delivery' in sys.modules)\n"
        "try:\n"
        "    hooks.letters.get()\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    assert out.splitlines() == [
        "False False",
        "Nothing is registered for the letters of a vetted version: import app.letters "
        "(importing the package registers it).",
    ]
