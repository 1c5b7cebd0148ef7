"""Hooks: how a lower package calls a higher one without importing it.

The domain packages stack like floors (tests/test_layers.py holds the order): a package imports
only those below it. When a decision taken on a lower floor must reach a higher one in the same
transaction (a withdrawn approval holds the letters made from that version), the lower package
declares what it needs as a `typing.Protocol` and a `Hook` for it, and the higher package
registers its implementation (usually its service module: mypy checks that a module fits a
Protocol) in its own `__init__.py`, so that importing anything of it wires the hook.

A hook has exactly one implementation, and asking for one that was never registered is an error,
never a silent skip: a withdrawal that forgot to hold its letters would send them.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Hook(Generic[T]):
    """The one implementation of T, registered by the package that provides it."""

    def __init__(self, what: str, *, provider: str) -> None:
        self.what = what
        self.provider = provider
        self._implementation: T | None = None

    def register(self, implementation: T) -> None:
        """Wire the implementation; registering the same one again changes nothing."""
        if self._implementation is not None and self._implementation is not implementation:
            raise RuntimeError(
                f"{self.what}: {self._implementation!r} is registered already, "
                f"not {implementation!r}"
            )
        self._implementation = implementation

    @property
    def implementation(self) -> T | None:
        """What is registered, or None."""
        return self._implementation

    def get(self) -> T:
        """The registered implementation; RuntimeError if there is none."""
        if self._implementation is None:
            raise RuntimeError(
                f"Nothing is registered for {self.what}: import {self.provider} "
                "(importing the package registers it)."
            )
        return self._implementation
