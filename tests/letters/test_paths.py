"""The pages' paths by route name, as the app's own url_path_for gives them."""

from __future__ import annotations

from fastapi import FastAPI, Request

from app.letters import paths


def test_page_paths_are_those_of_url_path_for(citizen_app: FastAPI) -> None:
    request = Request({"type": "http", "app": citizen_app, "method": "GET", "headers": []})
    for name, params in (
        ("check_email", {}),
        ("confirm_page", {"token": "Ab-1.x_Y"}),
        ("status_page", {"token": "zz9"}),
        ("status_page", {"token": "other"}),
    ):
        expected = str(citizen_app.url_path_for(name, **params))
        assert paths.path_for(request, name, **params) == expected
