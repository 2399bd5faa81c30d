"""The bundled JSON-LD contexts and the offline, bounded JSON-LD processing of verifier.jsonld:
the manifest matches the files byte for byte, the loader answers only from the bundle and
never opens a socket, JSON-LD runs in safe mode, and hostile input (deep, large, many quads,
poison graphs of blank nodes) is refused with a typed error instead of running unbounded."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit.vectors import VECTORS, vector_path
from verifier import jsonld
from verifier.errors import (
    DataIntegrityError,
    JsonLdLimitError,
    JsonLdProcessingError,
    UnknownContextError,
)
from verifier.jsonld import (
    MAX_DEDUP_WORK,
    MAX_DEPTH,
    MAX_QUADS,
    MAX_VALUES,
    bundled_contexts,
    canonical_nquads,
    manifest,
)

CONTEXTS = Path(jsonld.__file__).parent / "contexts"
VC2 = "https://www.w3.org/ns/credentials/v2"
EXAMPLES = "https://www.w3.org/ns/credentials/examples/v2"

REQUIRED = {
    VC2,
    "https://www.w3.org/2018/credentials/v1",
    "https://w3id.org/security/data-integrity/v2",
    "https://w3id.org/security/multikey/v1",
    "https://www.w3.org/ns/did/v1",
    "https://www.w3.org/ns/credentials/status/v1",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    EXAMPLES,
    "https://www.w3.org/ns/credentials/undefined-terms/v2",
    # The URL the Europass ELM samples in ../shared/vectors/elm name.
    "http://data.europa.eu/snb/model/context/edc-ap",
}

INTEROP_CONTEXTS = VECTORS.parent / "interop-contexts"
# Bundled files that are byte-for-byte copies of files in ../shared (read there in place).
SHARED_COPIES = {
    "credentials-v2.jsonld": VECTORS / "contexts" / "credentials-v2.jsonld",
    "credentials-v1.jsonld": VECTORS / "contexts" / "credentials-v1.jsonld",
    "data-integrity-v2.jsonld": VECTORS / "contexts" / "data-integrity-v2.jsonld",
    "multikey-v1.jsonld": VECTORS / "contexts" / "multikey-v1.jsonld",
    "bitstring-status-list-v1.jsonld": VECTORS / "contexts" / "bitstring-status-list-v1.jsonld",
    "edc-ap-context.jsonld": VECTORS / "elm" / "edc-ap-context.jsonld",
    "ob-v3p0-context-3.0.3.json": INTEROP_CONTEXTS / "ob-v3p0-context-3.0.3.json",
    "credentials-examples-v2.json": INTEROP_CONTEXTS / "credentials-examples-v2.json",
}


def _credential(**subject: Any) -> dict[str, Any]:
    return {"@context": [VC2, EXAMPLES], "type": ["VerifiableCredential"],
            "issuer": "did:example:issuer", "credentialSubject": subject}


# --- the bundle ------------------------------------------------------------------------------


def test_manifest_lists_every_file_with_its_sha256() -> None:
    entries = manifest()
    listed = {entry.file for entry in entries}
    on_disk = {path.name for path in CONTEXTS.iterdir() if path.is_file()} - {"manifest.json"}
    assert listed == on_disk
    for entry in entries:
        data = (CONTEXTS / entry.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256, entry.file
        assert "@context" in json.loads(data), entry.file
        assert entry.source, entry.file
        assert entry.license, entry.file
    assert len({entry.url for entry in entries}) == len(entries)
    assert {entry.url for entry in entries} >= REQUIRED
    assert bundled_contexts().urls == {entry.url for entry in entries}


@pytest.mark.parametrize("name", sorted(SHARED_COPIES))
def test_bundled_contexts_are_byte_copies_of_their_sources(name: str) -> None:
    source = SHARED_COPIES[name]
    if source.is_relative_to(VECTORS):
        source = vector_path(str(source.relative_to(VECTORS)))
    elif not source.is_file():
        pytest.fail(f"{source} is missing: the tests read ../shared beside the checkout")
    assert (CONTEXTS / name).read_bytes() == source.read_bytes()


def test_a_damaged_bundle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in CONTEXTS.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "did-v1.jsonld").write_bytes(b'{"@context": {"@vocab": "https://evil/"}}')
    monkeypatch.setattr(jsonld, "_contexts_folder", lambda: tmp_path)
    jsonld.bundled_contexts.cache_clear()
    try:
        with pytest.raises(JsonLdProcessingError, match=r"did-v1\.jsonld does not match"):
            jsonld.bundled_contexts()
    finally:
        jsonld.bundled_contexts.cache_clear()


def test_loader_answers_bundled_documents_as_fresh_copies() -> None:
    bundle = bundled_contexts()
    first = bundle(VC2, {})
    assert first["documentUrl"] == VC2
    assert first["document"]["@context"]["VerifiableCredential"]["@id"] == \
        "https://www.w3.org/2018/credentials#VerifiableCredential"
    first["document"]["@context"].clear()
    assert bundle(VC2, {})["document"]["@context"]


# --- never the network -----------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any attempt to open a socket or resolve a name fails the test (and is recorded)."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args)[:100])
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_unknown_url_is_a_typed_error_naming_it(no_network: list[str]) -> None:
    url = "https://example.org/contexts/unknown/v1"
    with pytest.raises(UnknownContextError) as caught:
        bundled_contexts()(url, {})
    assert caught.value.url == url
    assert url in str(caught.value)
    assert caught.value.code == "unknown_context"
    assert no_network == []


@pytest.mark.parametrize("context", [
    "https://example.org/contexts/unknown/v1",
    # Named by some Open Badges samples; no published copy was found, so it is not bundled.
    "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json",
])
def test_a_document_with_an_unknown_context_fails_without_touching_the_network(
        no_network: list[str], context: str) -> None:
    document = _credential(name="Alice") | {"@context": [VC2, context]}
    with pytest.raises(UnknownContextError) as caught:
        canonical_nquads(document)
    assert caught.value.url == context
    assert isinstance(caught.value, DataIntegrityError)
    assert no_network == []


def test_an_unknown_context_imported_by_an_inline_context_fails(no_network: list[str]) -> None:
    document = _credential(name="Alice") | {
        "@context": [VC2, {"@import": "https://example.org/imported", "x": "https://x/"}]}
    with pytest.raises(UnknownContextError, match=r"example\.org/imported"):
        canonical_nquads(document)
    assert no_network == []


def test_with_documents_adds_contexts_for_one_caller(no_network: list[str]) -> None:
    url = "https://example.org/contexts/extra/v1"
    document = _credential() | {"@context": [VC2, url],
                                "credentialSubject": {"credits": 5}}
    extra = bundled_contexts().with_documents({url: {"@context": {
        "credits": "https://example.org/vocab#credits"}}})
    nquads = canonical_nquads(document, contexts=extra)
    assert '<https://example.org/vocab#credits> "5"^^<http://www.w3.org/2001/XMLSchema#integer>' \
        in nquads
    with pytest.raises(UnknownContextError):
        canonical_nquads(document)  # the default bundle is unchanged
    assert no_network == []


# --- safe mode -------------------------------------------------------------------------------


@pytest.mark.parametrize(("document", "message"), [
    ({"@context": [VC2], "type": ["VerifiableCredential"], "credentialSubject": {"ects": 5}},
     "does not map to an absolute IRI"),
    (_credential(name="A") | {"id": "relative/credential"}, "@id 'relative/credential'"),
    # Without an @vocab (the VC 2.0 context alone), a type name no context defines is relative.
    (_credential(name="A") | {"@context": [VC2], "type": ["VerifiableCredential", "rel/Type"]},
     "type 'rel/Type'"),
    (_credential(knows={"id": "rel/node", "name": "B"}), "@id 'rel/node'"),
])
def test_safe_mode_refuses_what_would_not_be_signed(document: dict[str, Any],
                                                    message: str) -> None:
    with pytest.raises(JsonLdProcessingError, match=message):
        canonical_nquads(document)


def test_invalid_json_ld_is_a_typed_error() -> None:
    with pytest.raises(JsonLdProcessingError, match="invalid JSON-LD"):
        canonical_nquads({"@context": 12, "x": 1})
    with pytest.raises(JsonLdProcessingError, match="invalid type mapping"):
        canonical_nquads({"@context": [VC2, {"p": {"@id": "https://x/p", "@type": "rel/dt"}}],
                          "credentialSubject": {"p": "v"}})
    with pytest.raises(JsonLdProcessingError, match="invalid typed value"):
        canonical_nquads({"@context": [VC2, {"p": "https://x/p"}],
                          "type": ["VerifiableCredential"],
                          "credentialSubject": {"p": {"@value": "v", "@type": "rel/dt"}}})
    with pytest.raises(JsonLdProcessingError, match="expected a JSON object"):
        canonical_nquads([1, 2])  # type: ignore[arg-type]


# --- RDFC-1.0 serialisation ------------------------------------------------------------------


def test_literals_are_escaped_as_rdfc_1_0_requires() -> None:
    nquads = canonical_nquads(_credential(note="a\u0001b\bc\td\ne\ff\rg\"h\\i\u007fj é"))
    assert '"a\\u0001b\\bc\\td\\ne\\ff\\rg\\"h\\\\i\\u007Fj é"' in nquads


def test_blank_nodes_get_canonical_labels_independent_of_order() -> None:
    one = _credential(knows=[{"name": "B"}, {"name": "A"}])
    two = _credential(knows=[{"name": "A"}, {"name": "B"}])
    assert canonical_nquads(one) == canonical_nquads(two)
    assert "_:c14n0" in canonical_nquads(one)


def test_symmetric_blank_nodes_within_the_work_bound_canonicalise() -> None:
    # Two identical blank nodes: the first-degree hashes cannot tell them apart, and the
    # n-degree step (once per such node) can.
    document = _credential(knows=[{"name": "Same"}, {"name": "Same"}])
    assert canonical_nquads(document).count("<https://schema.org/name> \"Same\"") == 2


# --- bounds ----------------------------------------------------------------------------------


def _nested(levels: int) -> dict[str, Any]:
    """A chain of blank nodes, each told apart from the others by its own name."""
    inner: dict[str, Any] = {"name": "deep"}
    for level in range(levels):
        inner = {"knows": inner, "name": f"level {level}"}
    return inner


def test_nesting_up_to_the_limit_is_processed_and_beyond_is_refused() -> None:
    # 3 levels for the credential and its credentialSubject around the chain.
    canonical_nquads(_credential(**_nested(MAX_DEPTH - 3)))
    with pytest.raises(JsonLdLimitError, match=f"deeper than {MAX_DEPTH}"):
        canonical_nquads(_credential(**_nested(MAX_DEPTH)))


def test_very_deep_input_is_refused_before_pyld_recurses() -> None:
    depth = sys.getrecursionlimit() * 2
    with pytest.raises(JsonLdLimitError, match="deeper"):
        canonical_nquads(_credential(**_nested(depth)))


def test_too_many_values_are_refused() -> None:
    with pytest.raises(JsonLdLimitError, match=f"more than {MAX_VALUES}"):
        canonical_nquads(_credential(items=list(range(MAX_VALUES))))


def test_too_many_quads_are_refused() -> None:
    # Under the value and comparison bounds, over the quad bound: 32 x 32 nodes of 20 values.
    tree = [{"items": [{"items": [f"v{a}.{b}.{c}" for c in range(20)]} for b in range(32)]}
            for a in range(32)]
    with pytest.raises(JsonLdLimitError, match=f"more than {MAX_QUADS}"):
        canonical_nquads(_credential(items=tree))


@pytest.mark.parametrize("document", [
    # 10,000 values of one property of one node: about a minute of pyld's de-duplication.
    _credential(items=[f"v{n}" for n in range(MAX_QUADS // 2)]),
    # The same spread over objects that share one @id, which pyld merges into one node.
    _credential(items=[{"id": "urn:x:same", "name": [f"v{a}.{b}" for b in range(100)]}
                       for a in range(100)]),
])
def test_quadratic_de_duplication_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(JsonLdLimitError, match=f"more than {MAX_DEDUP_WORK}"):
        canonical_nquads(document)


def test_quadratic_de_duplication_through_reverse_properties_is_refused() -> None:
    """Each node names one target through @reverse: pyld adds every node to the target's
    property, comparing it with every earlier one (9,900 of them took 15 s unbounded)."""
    document = {"@graph": [{"@id": f"http://example.org/x{n}",
                            "@reverse": {"http://example.org/p": {"@id": "http://example.org/a"}}}
                           for n in range(9_900)]}
    with pytest.raises(JsonLdLimitError, match=f"more than {MAX_DEDUP_WORK}"):
        canonical_nquads(document)
    # A few such references are fine.
    few = {"@graph": document["@graph"][:20]}
    assert canonical_nquads(few).count("<http://example.org/p>") == 20


def test_many_values_spread_over_nodes_are_processed() -> None:
    items = [{"name": [f"v{a}.{b}" for b in range(50)]} for a in range(60)]
    assert canonical_nquads(_credential(items=items)).count("\n") >= 3000


def _poison_graph(nodes: int) -> dict[str, Any]:
    """A complete graph of blank nodes, every one linked to every other by the same
    predicate: all are symmetric, so RDFC-1.0's n-degree step explores permutations of them
    (factorial work without a bound)."""
    graph = [{"@id": f"_:n{i}", "https://x.example/p": [
        {"@id": f"_:n{j}"} for j in range(nodes) if j != i]} for i in range(nodes)]
    return {"@graph": graph}


# rdf-canonize (the reference implementation) refuses these too, from 2 nodes on.
@pytest.mark.parametrize("nodes", [2, 6, 12, 40])
def test_a_poison_graph_is_refused_quickly(nodes: int) -> None:
    with pytest.raises(JsonLdLimitError, match="poison graph"):
        canonical_nquads(_poison_graph(nodes))


def _anonymous_chain(links: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"name": "deep"}
    for _ in range(links):
        inner = {"knows": inner}
    return _credential(**inner)


def test_anonymous_chains_get_the_reference_implementations_work_bound() -> None:
    # The middle links of a chain of anonymous objects all look alike to the first-degree
    # hash; rdf-canonize (maxWorkFactor 1, the reference implementation's default) accepts a
    # chain of 2 and refuses 3 or more, and so does this module (interop checks both sides).
    assert canonical_nquads(_anonymous_chain(2))
    with pytest.raises(JsonLdLimitError, match="poison graph"):
        canonical_nquads(_anonymous_chain(3))
