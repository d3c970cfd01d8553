"""``/docs`` and ``/redoc`` work offline: every asset is served by the server itself, and a real headless Chromium
that cannot resolve any other host renders the operations."""

from __future__ import annotations

import asyncio
import re
import shutil
from urllib.parse import urljoin, urlparse

import pytest

from tests.integration.api.conftest import Stack

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


def _assets(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_doc_pages_name_no_external_url_and_their_assets_load(stack: Stack, page: str) -> None:
    response = await stack.http.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    html = response.text
    assets = _assets(html)
    assert assets, html
    for asset in assets:
        assert not urlparse(asset).netloc, f"{page} loads {asset} from another host"
    assert not re.search(r"https?://(?!127\.0\.0\.1|localhost)", html), html  # not even in inline script
    for asset in assets:
        loaded = await stack.http.get(urljoin(stack.url + page, asset))
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 1000 or asset.endswith(".png"), asset


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize(("page", "marker"), [("/docs", 'class="opblock-summary-path"'),
                                              ("/redoc", "/api/rollouts")])  # fmt: skip
async def test_headless_chromium_renders_the_docs_with_no_other_host_reachable(stack: Stack, page: str,
                                                                                marker: str) -> None:
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=15000",
        "--dump-dom", stack.url + page,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    dom = out.decode(errors="replace")
    assert marker in dom, dom[-2000:]  # the JS bundle ran and drew the operations from /openapi.json
