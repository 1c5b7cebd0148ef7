"""Properties of the assembled application."""

from __future__ import annotations

from collections import Counter

from starlette.routing import Route

from app.config import Settings
from app.main import create_app


def test_route_names_are_unique() -> None:
    # path_for(name) resolves to the first route of that name: a duplicate silently sends a page
    # link to the JSON API (or the reverse).
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite://"))
    names = Counter(route.name for route in app.routes if isinstance(route, Route))
    assert [name for name, count in names.items() if count > 1] == []


def test_openapi_documents_the_staff_api() -> None:
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite://"))
    paths = app.openapi()["paths"]
    assert "/api/v1/staff/versions/{version_id}/approve" in paths
    assert not any(path.startswith("/staff") for path in paths)  # pages stay out of the schema
