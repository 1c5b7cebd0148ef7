"""The citizen flow's path parameters (a campaign's slug, a region's code, a link's token), their
checks (app.text's gate, then a pattern), and the pages' paths by route name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import RedirectResponse

from app.text import ONE_LINE

SLUG_PATTERN, SLUG_MAX = r"^[A-Za-z0-9_-]+$", 80
CODE_PATTERN, CODE_MAX = r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$", 6
SlugPath = Annotated[str, Path(max_length=SLUG_MAX, pattern=SLUG_PATTERN), ONE_LINE]
CodePath = Annotated[str, Path(max_length=CODE_MAX, pattern=CODE_PATTERN), ONE_LINE]
TokenPath = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9_.-]+$"), ONE_LINE]


# Looking a route up by name walks every route of the app (about a hundred, some 0.1 ms a time
# here): each of these pages' paths is looked up once per process, with markers for its
# parameters, then filled in (string parameters, inserted unescaped as url_path_for does).
_PATHS: dict[tuple[str, tuple[str, ...]], str] = {}


def path_for(request: Request, name: str, **params: str) -> str:
    """The path of the route `name` with these parameters, as url_path_for gives it."""
    key = (name, tuple(sorted(params)))
    path = _PATHS.get(key)
    if path is None:
        markers = {k: f"\x00{k}\x00" for k in params}
        path = _PATHS[key] = str(request.app.url_path_for(name, **markers))
    for k, value in params.items():
        path = path.replace(f"\x00{k}\x00", value)
    return path


def redirect(request: Request, name: str, **params: str) -> RedirectResponse:
    """A 303 to the route `name` (after a form's POST)."""
    return RedirectResponse(path_for(request, name, **params), status_code=303)
