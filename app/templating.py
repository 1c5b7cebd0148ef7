"""The page templates (autoescaped Jinja2) shared by every domain's page routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

templates = Jinja2Templates(directory=TEMPLATES_DIR)


@jinja2.pass_context
def path_for(context: dict[str, Any], name: str, /, **params: Any) -> str:
    """A route's path, relative to the site: pages never embed the host they were reached by."""
    return str(context["request"].app.url_path_for(name, **params))


templates.env.globals["path_for"] = path_for
