"""DIDs: verification method ids round trip, did:web documents are found where the did:web
method specification says (ports as %3A, paths, /.well-known), DID documents have the DID Core
+ Multikey shape, and malformed input is refused with a typed error."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given
from hypothesis import strategies as st

from testkit.vectors import vector_json
from verifier.did import (
    DID_CONTEXT,
    MAX_DID_LENGTH,
    MULTIKEY_CONTEXT,
    check_did,
    did_document,
    did_web_url,
    split_verification_method,
    verification_method_id,
)
from verifier.errors import DataIntegrityKeyError
from verifier.multikey import Multikey

ED_KEY = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
P256_KEY = Multikey.from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
DID = "did:web:issuer.example%3A8443:issuers:acme"


@pytest.mark.parametrize(("did", "url"), [
    # The did:web specification's own examples.
    ("did:web:w3c-ccg.github.io", "https://w3c-ccg.github.io/.well-known/did.json"),
    ("did:web:w3c-ccg.github.io:user:alice", "https://w3c-ccg.github.io/user/alice/did.json"),
    ("did:web:example.com%3A3000:user:alice", "https://example.com:3000/user/alice/did.json"),
    ("did:web:example.com%3a3000", "https://example.com:3000/.well-known/did.json"),
    # The service's issuer DIDs.
    ("did:web:anchor.example:issuers:acme-university",
     "https://anchor.example/issuers/acme-university/did.json"),
    ("did:web:localhost%3A8000:issuers:demo", "https://localhost:8000/issuers/demo/did.json"),
    # Percent-encoded path characters stay encoded: they are valid in the URL path as they are.
    ("did:web:example.com:a%20b", "https://example.com/a%20b/did.json"),
])
def test_did_web_url(did: str, url: str) -> None:
    assert did_web_url(did) == url


@pytest.mark.parametrize("did", [
    "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",  # another method
    "did:web:",                                   # no host
    "did:web:example.com::x",                     # empty path segment
    "did:web:example.com:",                       # trailing empty segment
    "did:web:example.com:..:etc",                 # dot segments would climb the path
    "did:web:example.com:%2E%2E:etc",
    "did:web:example.com:.",
    "did:web:127.0.0.1",                          # an IP address, not a domain
    "did:web:example.com%3A",                     # empty port
    "did:web:example.com%3A99999",                # port out of range
    "did:web:example.com%3A0",
    "did:web:example.com%3A80%3A81",              # two ports
    "did:web:example.com%3Ahttp",
    "did:web:-bad-.example",                      # not a DNS label
    "did:web:exa_mple.com",
    "did:web:example.com%2Fevil",                 # an encoded slash in the host
    "did:web:example.com/path",                   # not DID syntax at all
    "did:web:example.com#frag",
    "did:web:example.com?q=1",
    "did:WEB:example.com",                        # method names are lower case
    "web:example.com",
    "",
])
def test_did_web_url_refuses(did: str) -> None:
    with pytest.raises(DataIntegrityKeyError):
        did_web_url(did)


def test_verification_method_id_round_trips() -> None:
    for key in (ED_KEY, P256_KEY):
        vm = verification_method_id(DID, key)
        assert vm == f"{DID}#{key.multibase}"
        assert split_verification_method(vm) == (DID, key)


def test_did_key_verification_method() -> None:
    """A presentation holder's ``did:key:<mb>#<mb>`` splits like any other DID's."""
    vm = f"did:key:{ED_KEY.multibase}#{ED_KEY.multibase}"
    assert split_verification_method(vm) == (f"did:key:{ED_KEY.multibase}", ED_KEY)


def test_spec_vector_verification_method() -> None:
    """The EdDSA cryptosuite specification's proof names its key as ``did:key:<mb>#<mb>``."""
    pair = vector_json("di-eddsa/keyPair.json")
    key = Multikey.from_multibase(pair["publicKeyMultibase"])
    vm = f"did:key:{key.multibase}#{key.multibase}"
    assert split_verification_method(vm)[1] == key


@given(st.binary(min_size=32, max_size=32))
def test_round_trip_any_ed25519_key(seed: bytes) -> None:
    key = Multikey.from_public_key(ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key())
    assert split_verification_method(verification_method_id(DID, key)) == (DID, key)


@pytest.mark.parametrize("vm", [
    None,
    42,
    ["did:web:example.com#z"],
    DID,                                          # no fragment
    f"{DID}#",                                    # empty fragment
    f"{DID}#key-1",                               # a fragment that is not a Multikey
    f"{DID}#{ED_KEY.multibase}x",                 # not a key any more
    f"{DID}#{ED_KEY.multibase[:-2]}",             # truncated key
    f"{DID}#{ED_KEY.multibase}#{ED_KEY.multibase}",
    f"{DID}/path#{ED_KEY.multibase}",             # a DID URL with a path
    f"{DID}?service=x#{ED_KEY.multibase}",        # ... with a query
    f"#{ED_KEY.multibase}",                       # no DID
    f"did:web:#{ED_KEY.multibase}",
    f"https://example.com/keys#{ED_KEY.multibase}",
    "did:web:" + "a" * MAX_DID_LENGTH + f"#{ED_KEY.multibase}",  # over the length limit
    f"{DID}#z" + "1" * 300,                       # an over-long multibase
])
def test_split_verification_method_refuses(vm: object) -> None:
    with pytest.raises(DataIntegrityKeyError):
        split_verification_method(vm)


def test_split_refuses_a_non_canonical_fragment() -> None:
    """Multibase with leading ``1`` digits decodes to leading zero bytes: a different
    encoding of something else, never the key's own id."""
    with pytest.raises(DataIntegrityKeyError):
        split_verification_method(f"{DID}#z1{ED_KEY.multibase[1:]}")


def test_verification_method_id_refuses_a_bad_did() -> None:
    for did in ("", "did:web", "did:web:a b", "issuer", f"{DID}#x"):
        with pytest.raises(DataIntegrityKeyError):
            verification_method_id(did, ED_KEY)


def test_did_document_shape() -> None:
    document = did_document(DID, [ED_KEY, P256_KEY, ED_KEY])
    ed_id, p256_id = f"{DID}#{ED_KEY.multibase}", f"{DID}#{P256_KEY.multibase}"
    assert document == {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": DID,
        "verificationMethod": [
            {"id": ed_id, "type": "Multikey", "controller": DID,
             "publicKeyMultibase": ED_KEY.multibase},
            {"id": p256_id, "type": "Multikey", "controller": DID,
             "publicKeyMultibase": P256_KEY.multibase},
        ],
        "assertionMethod": [ed_id, p256_id],
    }
    assert DID_CONTEXT == "https://www.w3.org/ns/did/v1"
    assert MULTIKEY_CONTEXT == "https://w3id.org/security/multikey/v1"
    # Every listed id splits back into the document's DID and the listed key.
    for method in document["verificationMethod"]:
        assert split_verification_method(method["id"]) == (
            DID, Multikey.from_multibase(method["publicKeyMultibase"]))


def test_did_document_without_keys() -> None:
    document = did_document("did:web:example.com", [])
    assert document["verificationMethod"] == []
    assert document["assertionMethod"] == []
    assert "authentication" not in document


def test_did_document_refuses_a_bad_did() -> None:
    with pytest.raises(DataIntegrityKeyError):
        did_document("not a did", [ED_KEY])


def test_check_did() -> None:
    assert check_did(DID) == DID
    assert check_did("did:example:123456789abcdefghi") == "did:example:123456789abcdefghi"
    with pytest.raises(DataIntegrityKeyError, match="issuer"):
        check_did(7, what="issuer")
