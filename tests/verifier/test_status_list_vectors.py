"""The W3C Bitstring Status List test-suite fixtures and the status list credentials they
point to, read in place from ../shared/vectors/bitstring-status-list (never copied), each
through :func:`verifier.status_list.check_status` with the outcome listed in
../shared/vectors/SOURCES.md; and the 1EdTech ``testlist`` (131,072 entries, entry 23 set).

The fixtures are unsigned and their ``encodedList`` has no multibase ``u`` prefix: the decoder
accepts that on input (documented in verifier/bitstring.py), and never writes it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testkit.vectors import VECTORS, vector_json
from verifier.bitstring import decode_list, encode_list
from verifier.status_list import StatusOutcome, check_status, list_bitstring

FOLDER = "bitstring-status-list"
# Where the fixtures' statusListCredential URLs point, and where those files are kept here.
SERVED_AT = "https://w3c-ccg.github.io/vc-api/fixtures/credentials/status/"
KEPT_AT = f"{FOLDER}/vc-api-fixtures/credentials/status/"
NOW = int(time.time())

# test-suite/fixtures/<name>: the outcome SOURCES.md lists for each credential's entry.
CREDENTIALS = {
    "should-be-revoked.jsonld": StatusOutcome.SET,
    "should-be-suspended.jsonld": StatusOutcome.SET,
    "sl-date-expired-fail.jsonld": StatusOutcome.INVALID,
    "sl-encoded-list-invalid-fail.jsonld": StatusOutcome.INVALID,
    "sl-encoded-list-short-fail.jsonld": StatusOutcome.INVALID,
    "sl-purpose-multi-ok.jsonld": StatusOutcome.CLEAR,
    "sl-purpose-single-ok.jsonld": StatusOutcome.CLEAR,
    "sl-vc-type-missing-fail.jsonld": StatusOutcome.INVALID,
    "sl-vc-type-wrong-fail.jsonld": StatusOutcome.INVALID,
}
# Why each failing one fails (a word of the reason), so that none fails for another reason.
FAILS_BECAUSE = {
    "sl-date-expired-fail.jsonld": "no longer valid",
    "sl-encoded-list-invalid-fail.jsonld": "not GZIP",
    "sl-encoded-list-short-fail.jsonld": "fewer than the minimum 131072",
    "sl-vc-type-missing-fail.jsonld": "lacks BitstringStatusListCredential",
    "sl-vc-type-wrong-fail.jsonld": "lacks BitstringStatusListCredential",
}
# test-suite/fixtures/status-credentials/<name>: list credentials alone, read for a
# revocation entry at 201 (set in every full list) and at 1 (clear).
LISTS = {
    "multi-purpose-ok.jsonld": (StatusOutcome.SET, StatusOutcome.CLEAR),
    "single-purpose-ok.jsonld": (StatusOutcome.SET, StatusOutcome.CLEAR),
    "multi-purpose-fail.jsonld": (StatusOutcome.INVALID, StatusOutcome.INVALID),
    "single-purpose-fail.jsonld": (StatusOutcome.INVALID, StatusOutcome.INVALID),
    "short-encoded-list-fail.jsonld": (StatusOutcome.INVALID, StatusOutcome.INVALID),
}
# vc-api-fixtures/credentials/status/<name>: whether the list itself is usable (for the
# purpose its name says).
SERVED = {
    "purpose-single-ok.jsonld": True, "purpose-multi-ok.jsonld": True,
    "date-expired-fail.jsonld": False, "encoded-list-invalid-fail.jsonld": False,
    "encoded-list-short-fail.jsonld": False, "vc-type-missing-fail.jsonld": False,
    "vc-type-wrong-fail.jsonld": False,
}


def _entry(purpose: str, index: str) -> dict[str, Any]:
    return {"type": "BitstringStatusListEntry", "statusPurpose": purpose,
            "statusListIndex": index, "statusListCredential": "https://example.org/list"}


def _list_of(credential: dict[str, Any]) -> Any:
    url = credential["credentialStatus"]["statusListCredential"]
    assert url.startswith(SERVED_AT), url
    return vector_json(KEPT_AT + url.removeprefix(SERVED_AT))


def test_every_fixture_is_listed() -> None:
    """Each file of the folder has its expected outcome here: none is left unread."""
    def names(relative: str) -> set[str]:
        folder = VECTORS / FOLDER / relative
        if not folder.is_dir():
            pytest.fail(f"{folder} is missing (see ../shared/vectors/SOURCES.md)")
        return {p.name for p in Path(folder).iterdir() if p.is_file()}

    assert names("test-suite/fixtures") == set(CREDENTIALS)
    assert names("test-suite/fixtures/status-credentials") == set(LISTS)
    assert names("vc-api-fixtures/credentials/status") == set(SERVED)


@pytest.mark.parametrize(("name", "expected"), CREDENTIALS.items())
def test_test_suite_credentials(name: str, expected: StatusOutcome) -> None:
    credential = vector_json(f"{FOLDER}/test-suite/fixtures/{name}")
    result = check_status(credential["credentialStatus"], _list_of(credential), at=NOW)
    assert result.outcome is expected, result
    assert result.purpose == credential["credentialStatus"]["statusPurpose"]
    if expected is StatusOutcome.INVALID:
        assert FAILS_BECAUSE[name] in result.reason, result
        assert result.code is not None
        assert result.status is None
    else:
        assert result.status is (expected is StatusOutcome.SET)


@pytest.mark.parametrize(("name", "expected"), LISTS.items())
def test_test_suite_status_credentials(name: str,
                                       expected: tuple[StatusOutcome, StatusOutcome]) -> None:
    listed = vector_json(f"{FOLDER}/test-suite/fixtures/status-credentials/{name}")
    at_201 = check_status(_entry("revocation", "201"), listed, at=NOW)
    at_1 = check_status(_entry("revocation", "1"), listed, at=NOW)
    assert (at_201.outcome, at_1.outcome) == expected, (at_201, at_1)
    if "purpose-fail" in name:
        assert "not among the list's" in at_201.reason


@pytest.mark.parametrize(("name", "usable"), SERVED.items())
def test_served_status_lists(name: str, usable: bool) -> None:
    listed = vector_json(KEPT_AT + name)
    purposes = listed["credentialSubject"]["statusPurpose"]
    purpose = purposes if isinstance(purposes, str) else purposes[-1]
    result = check_status(_entry(purpose, "57444"), listed, at=NOW)
    assert (result.outcome is StatusOutcome.SET) is usable, result
    if usable:
        # Every full list has entries 201, 57444 and 94023 set, and only those.
        bits = list_bitstring(listed, purpose=purpose, at=NOW)
        assert 8 * len(bits) == 200_000
        set_bits = [i for i in range(8 * len(bits)) if bits[i >> 3] >> (7 - (i & 7)) & 1]
        assert set_bits == [201, 57444, 94023]


def test_a_purpose_not_in_the_list_fails() -> None:
    listed = vector_json(KEPT_AT + "purpose-single-ok.jsonld")  # revocation only
    result = check_status(_entry("suspension", "201"), listed, at=NOW)
    assert result.outcome is StatusOutcome.INVALID
    assert result.code == "STATUS_VERIFICATION_ERROR"


def test_an_index_beyond_the_list_is_a_range_error() -> None:
    listed = vector_json(KEPT_AT + "purpose-single-ok.jsonld")
    result = check_status(_entry("revocation", "200000"), listed, at=NOW)
    assert (result.outcome, result.code) == (StatusOutcome.INVALID, "RANGE_ERROR")
    assert check_status(_entry("revocation", "199999"), listed, at=NOW).outcome \
        is StatusOutcome.CLEAR


@pytest.mark.parametrize("index", [23, "-1", "1e3", " 23", "\uff12\uff13", "", "1" * 13,
                                   None, True])
def test_status_list_index_is_a_string_of_base_10_digits(index: object) -> None:
    """A JSON number (as the 1EdTech samples write 23) is refused, not read."""
    listed = vector_json(KEPT_AT + "purpose-single-ok.jsonld")
    entry = {**_entry("revocation", "1"), "statusListIndex": index}
    result = check_status(entry, listed, at=NOW)
    assert (result.outcome, result.code) == (StatusOutcome.INVALID, "MALFORMED_VALUE_ERROR")
    assert "statusListIndex" in result.reason


def test_the_validity_window_is_checked_at_the_time_given() -> None:
    listed = vector_json(KEPT_AT + "date-expired-fail.jsonld")  # validUntil 1984-01-01
    then = 441763200 - 1  # 1983-12-31T23:59:59Z
    assert check_status(_entry("revocation", "201"), listed, at=then).outcome \
        is StatusOutcome.SET
    early = {**listed, "validFrom": "1983-12-31T23:59:59Z"}
    assert check_status(_entry("revocation", "201"), early, at=then - 1).outcome \
        is StatusOutcome.INVALID


def test_ob3_testlist_decodes() -> None:
    listed = vector_json("ob3/bit-string-list/testlist")
    bits = decode_list(listed["credentialSubject"]["encodedList"])
    assert len(bits) == 131_072 // 8
    assert [i for i, byte in enumerate(bits) if byte] == [2]  # entry 23 is in byte 2
    assert bits[2] == 0x01  # its least significant bit: entry 23 = 8 * 2 + 7
    assert check_status(_entry("revocation", "23"), listed, at=NOW).outcome \
        is StatusOutcome.SET
    assert check_status(_entry("revocation", "22"), listed, at=NOW).outcome \
        is StatusOutcome.CLEAR
    # The encoder writes the u prefix, and what it writes reads back the same.
    assert encode_list(bits).startswith("u")
    assert decode_list(encode_list(bits)) == bits


def test_the_ob3_credentials_number_index_is_refused() -> None:
    credential = vector_json("ob3/bit-string-list/credential-status-revoked.json")
    entry = credential["credentialStatus"]
    assert entry["statusListIndex"] == 23
    result = check_status(entry, vector_json("ob3/bit-string-list/testlist"), at=NOW)
    assert result.outcome is StatusOutcome.INVALID
    assert "a JSON number" in result.reason


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)


@given(st.sampled_from(["entry", "list", "subject"]),
       st.sampled_from(["type", "statusPurpose", "statusListIndex", "statusListCredential",
                        "statusSize", "encodedList", "validFrom", "validUntil", "@context",
                        "credentialSubject"]), _JSON)
def test_any_field_replaced_by_any_json_gives_a_result_and_never_raises(
        where: str, name: str, junk: Any) -> None:
    listed = json.loads(json.dumps(vector_json(KEPT_AT + "purpose-multi-ok.jsonld")))
    entry = _entry("revocation", "201")
    target = {"entry": entry, "list": listed, "subject": listed["credentialSubject"]}[where]
    target[name] = junk
    result = check_status(entry, listed, at=NOW)
    assert isinstance(result.outcome, StatusOutcome)
    assert result.reason
    assert (result.code is None) is (result.outcome is not StatusOutcome.INVALID)
