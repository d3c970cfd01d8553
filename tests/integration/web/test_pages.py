"""The page shells over real HTTP: every page renders, carries no fleet data (that comes from the API with the
token), references only assets the package ships, and every shipped asset is in the wheel's package data."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

from lwm2m_server.web import pages
from lwm2m_server.web.urls import dashboard_url
from tests.integration.api.conftest import Stack
from tests.support.browser import auth_headers

PAGES = ["/", "/login", "/devices/secret-device-0", "/models", "/rollouts", "/rollouts/abc123", "/events"]
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("path", PAGES)
async def test_page_shells_render_without_fleet_data(stack: Stack, path: str) -> None:
    await stack.add_device("secret-device-0")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10.0) as anonymous:  # no token: a shell needs none
        response = await anonymous.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        html = response.text
        assert '<html lang="en">' in html and 'name="viewport"' in html and 'id="errors" role="alert"' in html
        assert "secret-device-0" not in html and "cortex-m4f" not in html  # no fleet data in the HTML itself
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert (await anonymous.get(asset)).status_code == 200, asset
    assert re.search(r'<script type="module" src="/static/js/\w+\.js">', html)


async def test_every_module_import_resolves(stack: Stack) -> None:
    for script in sorted((pages.STATIC_DIR / "js").glob("*.js")):
        response = await stack.http.get(f"/static/js/{script.name}")
        assert response.status_code == 200 and "javascript" in response.headers["content-type"]
        for imported in re.findall(r'from "\./([\w.]+)"', response.text):
            assert (pages.STATIC_DIR / "js" / imported).is_file(), (script.name, imported)


async def test_unknown_asset_and_page_are_404_in_the_error_shape(stack: Stack) -> None:
    for path in ("/static/js/nope.js", "/nope"):
        response = await stack.http.get(path, headers=auth_headers())
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    too_long = await stack.http.get("/devices/" + "x" * 300)
    assert too_long.status_code == 400 and too_long.json()["error"] == "bad_request"


def test_package_data_ships_every_template_and_asset() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["lwm2m_server.web"]
    web = pages.HERE
    files = [p.relative_to(web).as_posix() for p in web.rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and p.suffix != ".py"]  # fmt: skip
    assert files and all(any(fnmatch(f, pat) for pat in patterns) for f in files), files


def test_dashboard_url_carries_the_token_in_the_fragment() -> None:
    assert dashboard_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/"
    assert dashboard_url("http://127.0.0.1:8080/", "a b/c") == "http://127.0.0.1:8080/#token=a%20b%2Fc"
