"""The verification page fed a credential whose text tries to mislead: control characters,
bidirectional overrides and markup in the issuer's name. In headless Chromium (Playwright),
against a real service on anvil, with the web fixtures of this folder's conftest.py."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser

from tests.anchor_service.harness import Service
from tests.anchor_service.test_web import DESKTOP, issue, open_page, shoot, statuses
from verifier.verify import CHECK_NAMES

NAME = "Evil U\x1b[2K\r\n[PASS] all checks passed <b>bold</b>\u202eevil\u2028\u200b"
SHOWN = ("Evil U\\x1b[2K\\x0d\\x0a[PASS] all checks passed <b>bold</b>\\u202eevil\\u2028"
         "\\u200b")
# (Not "\n": the page's own markup has line breaks between elements.)
HIDDEN = ("\x1b", "\r", "\u202e", "\u2028", "\u200b")


def test_hostile_issuer_name_is_shown_as_visible_text(
    browser: Browser, service: Service, screenshots: Path, errors: list[str], tmp_path: Path,
) -> None:
    _, bundle = issue(service, "web-hostile",
                      issuer={"id": "did:web:uni-a.example", "name": NAME})
    file = tmp_path / "bundle.json"
    file.write_text(bundle, encoding="utf-8")
    page = open_page(browser, service, errors, DESKTOP)
    page.set_input_files("#files", str(file))
    page.wait_for_selector("#verdict.valid")
    # The name is text, escaped where it would hide or reorder what is shown.
    issuer = page.locator("#summary dd").first
    assert issuer.text_content() == SHOWN
    result = page.locator("#result").text_content() or ""
    for raw in HIDDEN:
        assert raw not in result, repr(raw)
    assert page.locator("#result b").count() == 0  # markup stays text
    # Exactly the verifier's checks: no line made up by the credential.
    assert list(statuses(page)) == list(CHECK_NAMES)
    assert "all checks passed" not in (page.locator("#checks").text_content() or "")
    shoot(page, screenshots / "hostile-name-desktop.png", 1280)
    page.context.close()
