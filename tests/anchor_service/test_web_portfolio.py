"""The portfolio view (/verify/portfolio), end to end in headless Chromium (Playwright): a
real service on anvil, credentials with ECTS issued and anchored through it, files chosen in
the file inputs, the table, the stacked bar (segment widths proportional to the ECTS), the
requirement line and the chain evidence; screenshots at desktop width and on a 375 px phone,
where the page does not scroll sideways; the print layout.

The fixtures (service, browser, screenshots, errors) are in this folder's conftest.py; any
script error, CSP violation or failed request fails the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from anchor_service.samples import make_credential
from tests.anchor_service.harness import Service, anchor_now
from tests.anchor_service.test_web import new_page, strict_page, take_refusal
from tests.anchor_service.test_web import shoot as shoot_page

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "timezone_id": "UTC"}
PHONE = {"viewport": {"width": 375, "height": 812}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True, "timezone_id": "UTC"}
ISSUER = {"id": "did:web:uni-a.example", "name": "University A"}
# Each credential: (ECTS, kind). The last one is tampered with after anchoring.
STACK = [(6, "non-formal"), (4, "formal-non-degree"), (2, "formal-degree"),
         (5, "non-formal")]


def plain(tag: str, ects: float, kind: str) -> dict[str, Any]:
    return make_credential(tag, issuer=ISSUER, learningScope=kind,
                           subject={"name": "Zoë", "ectsCredits": ects,
                                    "achievement": f"urn:achievement:{tag}"})


@pytest.fixture(scope="module")
def bundles(service: Service) -> list[dict[str, Any]]:
    with service.client(service.issuer_token) as client:
        credentials = [plain(f"web-pf-{n}", ects, kind) for n, (ects, kind) in enumerate(STACK)]
        accepted = client.post("/v1/credentials", json={"credentials": credentials})
        assert accepted.is_success, accepted.text
        ids = [item["id"] for item in accepted.json()["accepted"]]
        anchor_now(client, ids)
        issued = [client.get(f"/v1/credentials/{i}/bundle").json() for i in ids]
    issued[-1]["credential"]["credentialSubject"]["ectsCredits"] = 50  # no longer valid
    return issued


def write_bundles(folder: Path, bundles: list[dict[str, Any]]) -> list[str]:
    paths = []
    for n, bundle in enumerate(bundles):
        path = folder / f"module-{n}.json"
        path.write_text(json.dumps(bundle, indent=2, ensure_ascii=False), encoding="utf-8")
        paths.append(str(path))
    return paths


def open_portfolio(browser: Browser, service: Service, errors: list[str],
                   device: dict[str, Any]) -> Page:
    page = new_page(browser, errors, device)
    # Reached from the single-credential page's link.
    response = page.goto(service.url + "/verify")
    assert response is not None
    assert response.ok
    page.wait_for_selector("body[data-ready=true]")
    page.click("#portfolio-link")
    page.wait_for_url(service.url + "/verify/portfolio")
    page.wait_for_selector("body[data-ready=true]")
    return page


def shoot(page: Page, path: Path, width: int) -> None:
    shoot_page(page, path, width)
    assert path.stat().st_size > 10_000


def rows(page: Page) -> list[dict[str, str]]:
    found = []
    for row in page.locator("#entries tbody tr").all():
        cells = row.locator("td").all()
        found.append({str(c.get_attribute("data-label")): c.inner_text().strip()
                      for c in cells})
    return found


def segments(page: Page) -> list[tuple[str, float, float]]:
    """(kind, ECTS, rendered width in CSS pixels) of each bar segment."""
    found = []
    for segment in page.locator("#bar .segment").all():
        box = segment.bounding_box()
        assert box is not None
        found.append((str(segment.get_attribute("data-kind")),
                      float(str(segment.get_attribute("data-ects"))), box["width"]))
    return found


def check_bar(page: Page) -> None:
    bar = page.locator("#bar").bounding_box()
    assert bar is not None
    found = segments(page)
    # Counted: the three valid credentials, one segment per kind (one institution here).
    assert sorted((kind, ects) for kind, ects, _ in found) == [
        ("formal-degree", 2), ("formal-non-degree", 4), ("non-formal", 6)]
    for _, ects, width in found:
        # Each segment's share of the bar is its share of the 12 ECTS (a pixel of rounding).
        assert abs(width - bar["width"] * ects / 12) <= 1.5, (found, bar)
    assert abs(sum(width for _, _, width in found) - bar["width"]) <= 1.5


def test_bundles_chosen_on_a_desktop_show_table_bar_requirement_and_evidence(
    browser: Browser, service: Service, bundles: list[dict[str, Any]], screenshots: Path,
    errors: list[str], *, tmp_path: Path,
) -> None:
    page = open_portfolio(browser, service, errors, DESKTOP)
    page.set_input_files("#bundles", write_bundles(tmp_path, bundles))
    assert "4 bundle(s)" in page.inner_text("#chosen")
    page.fill("#require-ects", "10")
    page.select_option("#require-kind", "non-formal")
    page.click("#verify")
    page.wait_for_selector("#result:not([hidden])")

    table = rows(page)
    # Numbered as the report numbers its entries (a duplicate's reason names that number).
    assert [r["Credential"] for r in table] == [f"#{n} module-{n}.json" for n in range(4)]
    assert [r["Verdict"] for r in table] == ["valid", "valid", "valid", "not valid"]
    assert [r["Kind"] for r in table] == [kind for _, kind in STACK]
    assert [r["ECTS"] for r in table] == ["6", "4", "2", "50"]
    assert [r["Counted"] for r in table][:3] == ["counted"] * 3
    assert "digest_matches" in table[3]["Counted"]
    assert all(r["Issuer"] == "University A" for r in table[:3])
    assert all(r["Recognised"] == "not asked" for r in table)
    assert page.inner_text("#verdict").startswith("12 ECTS counted")

    check_bar(page)
    requirement = page.inner_text("#requirement")
    assert requirement == ("✗ Requirement: 6 ECTS of non-formal counted, 10 required: not met, "
                           "short by 4 ECTS")

    newest = max(b["receipt"]["anchor"]["blockNumber"] for b in bundles)
    evidence = page.inner_text("#evidence")
    block = int(evidence.split("Block\n")[1].split("\n")[0].strip())
    assert block >= newest
    block_hash = bytes(service.world.chain.w3.eth.get_block(block)["hash"]).hex()
    assert "0x" + block_hash in evidence
    assert page.is_visible("#print")
    shoot(page, screenshots / "portfolio-desktop.png", 1280)

    # The print layout: the form and buttons go, the table, bar and evidence stay.
    page.emulate_media(media="print")
    assert page.is_hidden("#portfolio-form")
    assert page.is_hidden("#print")
    assert page.is_visible("#entries")
    assert page.is_visible("#bar")
    assert page.is_visible("#evidence")
    page.emulate_media(media="screen")
    assert page.is_visible("#portfolio-form")
    page.context.close()


def test_a_presentation_on_a_phone_fits_the_screen(
    browser: Browser, service: Service, bundles: list[dict[str, Any]], screenshots: Path,
    errors: list[str], *, tmp_path: Path,
) -> None:
    presentation = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "verifiableCredential": [b["credential"] for b in bundles],
        "anchorReceipts": [b["receipt"] for b in bundles],
    }
    file = tmp_path / "portfolio.json"
    file.write_text(json.dumps(presentation, indent=2, ensure_ascii=False), encoding="utf-8")
    page = open_portfolio(browser, service, errors, PHONE)
    shoot(page, screenshots / "portfolio-start-phone.png", 375 * 2)
    page.set_input_files("#presentation", str(file))
    page.fill("#recognised-by", ISSUER["id"])
    page.fill("#require-ects", "12")
    page.click("#verify")
    page.wait_for_selector("#result:not([hidden])")

    table = rows(page)
    # The tampered credential's digest matches no receipt: it is named, not counted.
    assert [r["Credential"] for r in table][:3] == [
        f"#{n} verifiableCredential[{n}]" for n in range(3)]
    assert [r["Recognised"] for r in table][:3] == ["yes (self)"] * 3
    assert page.inner_text("#requirement") == "✓ Requirement: 12 ECTS counted, 12 required: met"
    check_bar(page)

    # No sideways scrolling of the page: the table became cards within the screen.
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    for selector in ("#bar", "#entries", "#evidence", "#requirement"):
        box = page.locator(selector).bounding_box()
        assert box is not None
        assert box["x"] >= 0, (selector, box)
        assert box["x"] + box["width"] <= 375, (selector, box)
    shoot(page, screenshots / "portfolio-phone.png", 375 * 2)
    page.context.close()


def test_a_recognition_recorded_by_an_untrusted_key_is_not_shown_as_recognised(
    browser: Browser, service: Service, bundles: list[dict[str, Any]], errors: list[str],
    tmp_path: Path,
) -> None:
    """The page reads the report's ``recorderTrust`` and ``counts``: a recognition the registry
    answers but whose recording key was not trusted then (a stolen key revoked back-dated), or
    was trusted as a key of another entity than the recogniser, shows as not recognised. The
    service's answer is altered in flight to hold such recognitions (the library's tests make
    one on chain)."""
    recorder = "0x" + "ab" * 20

    def altered(route: Route) -> None:
        answer = route.fetch()
        report = answer.json()
        record = {"id": 7, "recogniserId": 1, "subjectId": 2, "scope": ["non-formal"],
                  "validFrom": 0, "validUntil": None, "recordedAt": 1, "withdrawnAt": None}
        # (trusted then, the entity whose key it was, whether the report counts it)
        for entry, (trusted, entity, counts) in zip(
                report["entries"][:3], ((False, 1, False), (True, 1, True), (True, 9, False)),
                strict=True):
            entry["recognition"] = {
                "recognised": True, "path": "direct", "recognitionId": 7, "recogniserId": 1,
                "subjectId": 2, "record": record, "atBlock": None, "recordedBy": recorder,
                "recorderTrust": {"trusted": trusted, "entityId": entity,
                                  "reason": "trusted" if trusted else "key revoked"},
                "counts": counts}
        route.fulfill(response=answer, json=report)

    page = open_portfolio(browser, service, errors, DESKTOP)
    page.route("**/v1/portfolios/verify", altered)
    page.set_input_files("#bundles", write_bundles(tmp_path, bundles[:3]))
    page.fill("#recognised-by", ISSUER["id"])
    page.click("#verify")
    page.wait_for_selector("#result:not([hidden])")
    assert [r["Recognised"] for r in rows(page)][:3] == [
        "no (recorded by an untrusted key)", "yes (direct)",
        "no (recorded by a key of another entity)"]
    page.context.close()


def test_the_portfolio_page_is_served_with_the_strict_policy(service: Service) -> None:
    with service.client() as client:
        page = strict_page(client, "/verify/portfolio")
        policy = page.headers["content-security-policy"]
        assert "style-src 'self'" in policy
        assert "'unsafe-inline'" not in policy
        assert "style=" not in page.text  # no inline style for the policy to refuse
        for name, kind in (("page.js", "text/javascript"), ("portfolio.js", "text/javascript"),
                           ("portfolio.css", "text/css")):
            asset = client.get(f"/verify/{name}")
            assert asset.status_code == 200
            assert asset.headers["content-type"].startswith(kind)
            assert asset.headers["content-security-policy"] == policy
        assert client.get("/verify/portfolio.html").status_code == 404


def test_wrong_files_and_an_unknown_institution_get_a_clear_message(
    browser: Browser, service: Service, bundles: list[dict[str, Any]], errors: list[str],
    tmp_path: Path,
) -> None:
    page = open_portfolio(browser, service, errors, DESKTOP)
    page.click("#verify")
    expect(page.locator("#message")).to_contain_text("Choose the learner's bundles")
    junk = tmp_path / "notes.json"
    junk.write_text("{not json", encoding="utf-8")
    page.set_input_files("#bundles", [write_bundles(tmp_path, bundles[:1])[0], str(junk)])
    page.click("#verify")
    expect(page.locator("#message")).to_contain_text("notes.json is not JSON")
    assert page.is_hidden("#result")

    page.set_input_files("#bundles", write_bundles(tmp_path, bundles[:1]))
    page.fill("#recognised-by", "did:web:nobody.example")
    page.click("#verify")
    expect(page.locator("#message")).to_contain_text("not in the registry")
    assert page.is_hidden("#result")
    # That refusal (409) is the one failed request of this test.
    take_refusal(errors, 409, f"{service.url}/v1/portfolios/verify")

    # The requirement's kind alone is refused here, before anything is sent.
    page.fill("#recognised-by", "")
    page.select_option("#require-kind", "non-formal")
    page.click("#verify")
    expect(page.locator("#message")).to_contain_text("how many ECTS of that kind")
    page.fill("#require-ects", "2")
    page.click("#verify")
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#requirement") == (
        "✓ Requirement: 6 ECTS of non-formal counted, 2 required: met")
    page.click("#again")
    assert page.is_hidden("#result")
    assert page.inner_text("#chosen") == "No files chosen."
    page.context.close()
