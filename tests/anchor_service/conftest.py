"""Fixtures of the browser tests of this folder: a service on anvil and the page's error log
(test_web.py, test_web_hostile.py), headless Chromium (those and test_docs_page.py), and the
screenshot folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from testkit.world import World
from tests.anchor_service.harness import Service, running_service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google on this closed
# network; --no-sandbox because the suite may run as root.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def service(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(anvil_world, tmp_path_factory.mktemp("web"),
                         max_body_bytes=1024 * 1024) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), (
        "Chromium is missing: scripts/setup.sh --tests installs Debian's chromium")
    playwright: Playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("MICROCRED_SCREENSHOT_DIR")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def errors() -> Iterator[list[str]]:
    seen: list[str] = []
    yield seen
    assert seen == [], f"the page logged errors: {seen}"
