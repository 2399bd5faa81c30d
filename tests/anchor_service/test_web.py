"""The verification web page, end to end in headless Chromium (Debian's, driven by Playwright):
a real service on anvil, real bundles, real clicks and drops, screenshots checked for size.

Screenshots go to $MICROCRED_SCREENSHOT_DIR when set (to look at them), else to a temp dir.
The fixtures (service, browser, screenshots, errors) are in this folder's conftest.py."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from anchor_service.samples import make_credential
from tests.anchor_service.harness import Service, anchor_now
from verifier.receipt import Receipt
from verifier.verify import CHECK_NAMES

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True, "timezone_id": "UTC"}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "timezone_id": "UTC"}


def take_refusal(errors: list[str], status: int, url: str) -> None:
    """Take the one refused request a test expects out of ``errors``: the browser logs it
    twice (the response and a console line), and nothing else may be logged."""
    refused = [e for e in errors if str(status) in e]
    assert len(refused) == 2, errors
    assert f"{status} {url}" in refused
    errors[:] = [e for e in errors if e not in refused]


def new_page(browser: Browser, errors: list[str], device: dict[str, Any]) -> Page:
    """A page in a new browser context for ``device``, whose script errors, CSP violations
    and failed requests go to ``errors`` (the conftest's fixture fails the test on any)."""
    context = browser.new_context(**device)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
            else None)
    return page


def open_page(browser: Browser, service: Service, errors: list[str],
              device: dict[str, Any]) -> Page:
    page = new_page(browser, errors, device)
    response = page.goto(service.url + "/")  # redirects to /verify
    assert response is not None
    assert response.ok
    assert page.url == service.url + "/verify"
    page.wait_for_selector("body[data-ready=true]")
    return page


def issue(service: Service, tag: str, **extra: Any) -> tuple[str, str]:
    """Submit and anchor one credential; its public id and its bundle's text."""
    with service.client(service.issuer_token) as client:
        public_id = client.post(
            "/v1/credentials", json={"credentials": [make_credential(tag, **extra)]}
        ).json()["accepted"][0]["id"]
        anchor_now(client, [public_id])
        return public_id, client.get(f"/v1/credentials/{public_id}/bundle").text


def statuses(page: Page) -> dict[str, str]:
    items = page.locator("#checks li").all()
    return {str(i.get_attribute("data-check")): str(i.get_attribute("data-status"))
            for i in items}


def shoot(page: Page, path: Path, width: int) -> None:
    png = page.screenshot(path=str(path), full_page=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    png_width, png_height = struct.unpack(">II", png[16:24])
    assert png_width == width, (png_width, width)
    assert png_height >= 600


NAMED = {"issuer": {"id": "did:web:uni-a.example", "name": "University A"},
         "validFrom": "2026-01-01T00:00:00Z"}


def test_a_valid_bundle_shows_every_check_with_issuer_and_time(
    browser: Browser, service: Service, screenshots: Path, errors: list[str], tmp_path: Path,
) -> None:
    _, bundle = issue(service, "web-valid", **NAMED)
    file = tmp_path / "bundle.json"
    file.write_text(bundle, encoding="utf-8")
    page = open_page(browser, service, errors, DESKTOP)
    page.set_input_files("#files", str(file))
    page.wait_for_selector("#verdict.valid")
    assert page.inner_text("#verdict").startswith("✓ Valid credential")
    assert len(statuses(page)) == len(CHECK_NAMES)
    assert set(statuses(page).values()) == {"passed", "not_applicable"}
    assert statuses(page)["issuer_trusted_at_anchoring"] == "passed"
    # The issuer's signature: its checks each with their own label, and the summary names it.
    for name in ("signature_valid", "signing_key_registered",
                 "signing_key_trusted_at_anchoring"):
        assert statuses(page)[name] == "passed", name
    checks = page.inner_text("#checks")
    assert "Issuer's signature is valid" in checks
    assert "Signing key was trusted when the credential was anchored" in checks
    summary = page.inner_text("#summary")
    assert "University A" in summary
    assert "did:web:uni-a.example" in summary
    proof = json.loads(bundle)["credential"]["proof"]
    assert proof["cryptosuite"] in summary
    assert proof["verificationMethod"] in summary
    receipt = Receipt.from_json(json.dumps(json.loads(bundle)["receipt"]))
    block = service.world.chain.w3.eth.get_block(receipt.anchor.block_number)
    anchored = datetime.fromtimestamp(block["timestamp"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert anchored in summary  # the anchoring block's own time
    assert str(receipt.anchor.block_number) in summary
    shoot(page, screenshots / "valid-desktop.png", 1280)
    page.context.close()


def test_a_tampered_credential_dropped_fails_its_own_check(
    browser: Browser, service: Service, screenshots: Path, errors: list[str],
) -> None:
    _, bundle = issue(service, "web-tampered")
    forged = json.loads(bundle)
    forged["credential"]["credentialSubject"]["ects"] = 60  # 2.5 ECTS become 60
    page = open_page(browser, service, errors, DESKTOP)
    # A real drop event carrying a file, as a person dragging it from their desktop makes.
    transfer = page.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, {type: "application/json"}));
            return transfer;
        }""", ["forged.json", json.dumps(forged)])
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#verdict.invalid")
    assert "Credential unchanged" in page.inner_text("#verdict")
    found = statuses(page)
    assert found["digest_matches"] == "failed"
    assert [n for n, s in found.items() if s == "failed"] == ["digest_matches"]
    assert found["anchored_on_chain"] == "not_checked"
    shoot(page, screenshots / "tampered-desktop.png", 1280)
    page.context.close()


def test_credential_and_receipt_as_two_files_on_a_phone(
    browser: Browser, service: Service, screenshots: Path, errors: list[str], tmp_path: Path,
) -> None:
    _, bundle = issue(service, "web-phone", **NAMED)
    document = json.loads(bundle)
    credential, receipt = tmp_path / "credential.json", tmp_path / "receipt.json"
    credential.write_text(json.dumps(document["credential"], indent=2), encoding="utf-8")
    receipt.write_text(json.dumps(document["receipt"], indent=2), encoding="utf-8")
    page = open_page(browser, service, errors, PHONE)
    shoot(page, screenshots / "start-phone.png", 390 * 2)
    page.set_input_files("#files", [str(receipt), str(credential)])  # in any order
    page.wait_for_selector("#verdict.valid")
    assert "University A" in page.inner_text("#summary")
    # Readable on a phone: nothing wider than the screen, text not shrunk below 14 px.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    smallest = page.evaluate("""Math.min(...[...document.querySelectorAll('#result *')]
        .filter(e => e.childElementCount === 0 && e.textContent.trim())
        .map(e => parseFloat(getComputedStyle(e).fontSize)))""")
    assert smallest >= 14, smallest
    shoot(page, screenshots / "valid-phone.png", 390 * 2)
    page.context.close()


def test_a_revoked_credential_shows_revoked_but_valid_before(
    browser: Browser, service: Service, screenshots: Path, errors: list[str], tmp_path: Path,
) -> None:
    public_id, bundle = issue(service, "web-revoked", **NAMED)
    chain = service.world.chain
    anchored_at = chain.w3.eth.get_block(json.loads(bundle)["receipt"]["anchor"]["blockNumber"])[
        "timestamp"]
    chain.increase_time(120)  # the revocation comes two minutes after the anchor
    with service.client(service.issuer_token) as client:
        assert client.post(f"/v1/credentials/{public_id}/revoke", json={"reason": 1}).is_success
    file = tmp_path / "bundle.json"
    file.write_text(bundle, encoding="utf-8")
    page = open_page(browser, service, errors, PHONE)
    page.set_input_files("#files", str(file))
    page.wait_for_selector("#verdict.invalid")
    assert statuses(page)["not_revoked"] == "failed"
    assert [n for n, s in statuses(page).items() if s == "failed"] == ["not_revoked"]
    assert "Not revoked" in page.inner_text("#verdict")
    shoot(page, screenshots / "revoked-phone.png", 390 * 2)
    # As of a minute after anchoring (the page runs in UTC here), it was not revoked yet.
    then = datetime.fromtimestamp(anchored_at + 60, UTC)
    page.click("#as-of-box summary")
    page.fill("#as-of", then.strftime("%Y-%m-%dT%H:%M:%S"))
    page.set_input_files("#files", str(file))
    page.wait_for_selector("#verdict.valid")
    assert then.strftime("%Y-%m-%dT%H:%M:%SZ") in page.inner_text("#verdict")
    assert "as of block" in page.inner_text("[data-check=not_revoked]")
    shoot(page, screenshots / "as-of-phone.png", 390 * 2)
    page.context.close()


def test_wrong_files_get_a_clear_message_and_pasting_works(
    browser: Browser, service: Service, errors: list[str], tmp_path: Path,
) -> None:
    _, bundle = issue(service, "web-paste")
    page = open_page(browser, service, errors, DESKTOP)
    junk = tmp_path / "notes.json"
    junk.write_text("{not json", encoding="utf-8")
    page.set_input_files("#files", str(junk))
    page.wait_for_selector("#message:not([hidden])")
    assert "notes.json is not JSON" in page.inner_text("#message")
    lone = tmp_path / "credential.json"
    lone.write_text(json.dumps(json.loads(bundle)["credential"]), encoding="utf-8")
    page.set_input_files("#files", str(lone))
    # (expect, not wait_for_function: the page's CSP rightly forbids evaluating strings.)
    expect(page.locator("#message")).to_contain_text("drop its receipt")
    assert page.is_hidden("#result")
    # A bundle the server rejects (a duplicate key, which JSON.parse would quietly accept).
    page.click("#paste summary")
    page.fill("#pasted", bundle[:-1] + ', "version": 1}')
    page.click("#verify-pasted")
    expect(page.locator("#message")).to_contain_text("duplicate key 'version'")
    assert page.is_hidden("#result")
    # That refusal is the one 4xx of this test.
    take_refusal(errors, 400, f"{service.url}/v1/verify")
    page.fill("#pasted", bundle)
    page.click("#verify-pasted")
    page.wait_for_selector("#verdict.valid")
    page.click("#again")
    assert page.is_hidden("#result")
    page.context.close()


def strict_page(client: httpx.Client, path: str) -> httpx.Response:
    """The HTML page at ``path``, checked to be served with a policy that allows only this
    origin's scripts."""
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    return page


def test_the_page_is_served_with_a_strict_policy(service: Service) -> None:
    with service.client() as client:
        policy = strict_page(client, "/verify").headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert client.get("/verify/verify.js").headers["content-type"].startswith(
            "text/javascript")
        missing = client.get("/verify/..%2Fverify.py")
        assert missing.status_code == 404
        assert client.get("/verify/index.html").status_code == 404
        assert "/verify" not in client.get("/openapi.json").json()["paths"]
