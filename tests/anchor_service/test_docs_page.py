"""The API documentation page, ``/docs``: Swagger UI from this service's own files, under the
verification page's strict Content-Security-Policy, rendering every operation in real Chromium
with every non-local request blocked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Route

from testkit.world import World
from tests.anchor_service.harness import Service, running_service

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def service(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(anvil_world, tmp_path_factory.mktemp("docs"),
                         max_body_bytes=1024 * 1024) as running:
        yield running


def test_docs_is_served_with_the_strict_policy_and_no_inline_script(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                          "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
            assert directive in policy, policy
        assert "unsafe" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        # Every script is a file of this origin: none inline, none from elsewhere.
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.DOTALL)
        assert scripts
        for attributes, body in scripts:
            assert body.strip() == ""
            source = re.search(r'src="([^"]+)"', attributes)
            assert source is not None
            assert "//" not in source.group(1)
        assert "cdn" not in page.text.lower()
        for name, media in (("swagger-ui-bundle.js", "text/javascript"),
                            ("swagger-init.js", "text/javascript"),
                            ("swagger-ui.css", "text/css"), ("favicon.png", "image/png")):
            asset = http.get(f"/docs/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"].startswith(media)
            assert asset.headers["content-security-policy"] == policy
        assert http.get("/docs/index.py").status_code == 404
        assert http.get("/docs/..%2f..%2fsettings.py").status_code == 404
        # FastAPI's own CDN pages are gone.
        assert http.get("/redoc").status_code == 404
        assert http.get("/docs/oauth2-redirect").status_code == 404


def test_docs_renders_every_operation_offline_in_chromium(service: Service, browser: Browser,
                                                           tmp_path: Path) -> None:
    outside: list[str] = []
    errors: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    try:
        context.route("**/*", only_local)
        page = context.new_page()
        page.set_default_timeout(30_000)
        # A CSP violation, a script error or a failed request is a console error.
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed {r.url}"))
        response = page.goto(service.url + "/docs")
        assert response is not None
        assert response.ok
        page.wait_for_selector(".opblock-summary-path")
        paths = set(page.locator(".opblock-summary-path").all_inner_texts())
        with httpx.Client(base_url=service.url, timeout=30) as http:
            spec = http.get("/openapi.json").json()
        assert {p.replace("\u200b", "") for p in paths} == set(spec["paths"])
        assert page.locator(".info .title").inner_text().startswith("microcred-anchor")
        # An opened operation draws Swagger UI's icons (data: SVGs in its stylesheet).
        page.locator(".opblock-summary").first.click()
        page.wait_for_selector(".opblock-body .responses-wrapper")
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    finally:
        context.close()
    assert outside == [], f"the page asked for non-local URLs: {outside}"
    assert errors == [], f"the page logged errors: {errors}"
