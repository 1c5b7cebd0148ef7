"""The page templates (autoescaped Jinja2) shared by every domain's page routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi.templating import Jinja2Templates

from app import i18n

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

templates = Jinja2Templates(directory=TEMPLATES_DIR)


@jinja2.pass_context
def path_for(context: dict[str, Any], name: str, /, **params: Any) -> str:
    """A route's path, relative to the site: pages never embed the host they were reached by."""
    return str(context["request"].app.url_path_for(name, **params))


templates.env.globals["path_for"] = path_for
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
templates.env.globals.update(
    language=i18n.current_language.get,
    languages=i18n.LANGUAGE_NAMES,
    format_number=i18n.format_number,
    format_date=i18n.format_date,
    format_datetime=i18n.format_datetime,
)
