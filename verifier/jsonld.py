"""Offline JSON-LD for the RDF cryptosuite (``eddsa-rdfc-2022``): the bundled contexts, a
document loader that answers only from them, and bounded RDF canonicalisation (RDFC-1.0).

**Contexts.** ``verifier/contexts/`` ships the JSON-LD contexts the project's credentials use
(VC 2.0 and its undefined-terms context, VC 1.1, Data Integrity v2, Multikey v1, DID v1,
Bitstring Status List v1, the VC 2.0 examples, Open Badges 3.0.3 and the Europass EDC
application profile; not the Open Badges ``extensions.json``, of which no published copy was
found), each a byte-for-byte
copy of its source, listed in ``manifest.json`` with its URL, file, SHA-256 and source.
:func:`bundled_contexts` reads them (and checks each file against its SHA-256);
:meth:`ContextBundle.with_documents` adds more for one caller (a test, a user's extension
context). A :class:`ContextBundle` is a pyld document loader that **never touches the
network**: any URL it does not hold raises :class:`~verifier.errors.UnknownContextError`
naming the URL.

**Canonicalisation.** :func:`canonical_nquads` expands a document with pyld, turns it into an
RDF dataset and canonicalises it with RDFC-1.0 (the algorithm pyld names URDNA2015), serialised
as canonical N-Quads with RDFC-1.0's escaping (pyld's own serialiser escapes fewer characters;
this module serialises as the W3C vectors and the reference implementation do). JSON-LD runs in
*safe mode*, as the Data Integrity specification requires of the RDF cryptosuites: a property
that maps to no absolute IRI, or an ``@id`` / ``@type`` that is a relative IRI, would silently
fall out of what is signed, so it raises :class:`~verifier.errors.JsonLdProcessingError`.
Numbers follow JSON-LD 1.1: one with a fractional part is an ``xsd:double``, any other an
``xsd:integer``. jsonld.js, the reference implementation, reads a number written in exponent
form without a decimal point (``1e-7``) as an integer; such documents canonicalise differently
there. Lines sort in code point order, as RDFC-1.0 says (jsonld.js sorts UTF-16 code units:
the two differ only between characters above U+FFFF and U+E000..U+FFFF).

**Bounds.** pyld has no limits of its own, so every call is bounded here, before and during
the work; anything over a bound raises :class:`~verifier.errors.JsonLdLimitError`:

- :data:`MAX_VALUES` JSON values (objects, arrays and scalars) and :data:`MAX_DEPTH` levels of
  nesting in the input, checked before pyld sees it (pyld recurses per level);
- :data:`MAX_QUADS` RDF quads, estimated from the expanded document before the RDF dataset is
  built, and counted again after (a context can make one value several quads);
- :data:`MAX_DEDUP_WORK` value comparisons: pyld keeps each node's values of one property a
  set by comparing every new value with all the earlier ones, which is quadratic in the number
  of values (20,000 strings in one array take minutes); the sum of ``n * n / 2`` over the
  document's (node, property) pairs, with nodes of the same ``@id`` merged, is bounded;
- blank-node work: RDFC-1.0's Hash N-Degree Quads step may run at most once per blank node that
  the first-degree hashes leave undistinguished (the reference implementation's default,
  ``maxWorkFactor`` 1), and the permutations it tries are capped at :data:`MAX_PERMUTATIONS` in
  all. Crafted "poison graphs" (many mutually symmetric blank nodes), whose canonicalisation is
  exponential, are refused quickly instead of running for hours.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from pyld.canon import URDNA2015
from pyld.context_resolver import ContextResolver
from pyld.jsonld import JsonLdError as PyLdError
from pyld.jsonld import JsonLdProcessor

from verifier.errors import (
    JsonLdLimitError,
    JsonLdProcessingError,
    UnknownContextError,
    VerifierError,
)

__all__ = [
    "MAX_DEDUP_WORK",
    "MAX_DEPTH",
    "MAX_PERMUTATIONS",
    "MAX_QUADS",
    "MAX_VALUES",
    "BundledContext",
    "ContextBundle",
    "bundled_contexts",
    "canonical_nquads",
    "manifest",
]

#: JSON values (objects, arrays, scalars) a document to canonicalise may hold.
MAX_VALUES: Final = 50_000
#: Nesting levels a document to canonicalise may have (pyld recurses several frames per level).
MAX_DEPTH: Final = 64
#: RDF quads the expanded document may make.
MAX_QUADS: Final = 20_000
#: Permutations of related blank nodes RDFC-1.0 may try in all, per canonicalisation.
MAX_PERMUTATIONS: Final = 5_000
#: Value comparisons pyld's de-duplication may make (about 3 microseconds each): one property
#: of one node may hold about 600 values.
MAX_DEDUP_WORK: Final = 200_000
# Resolved contexts cached per bundle: the bundled URLs, plus inline context objects (keyed by
# their JSON), whose number a document controls; hence bounded.
_CACHE_SIZE: Final = 256

_ABSOLUTE_IRI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:\S*")
_RDF_LANGSTRING: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
_XSD_STRING: Final = "http://www.w3.org/2001/XMLSchema#string"


@dataclass(frozen=True, slots=True)
class BundledContext:
    """One entry of ``verifier/contexts/manifest.json``."""

    url: str
    file: str
    sha256: str
    source: str
    license: str


class _BoundedCache(OrderedDict[str, Any]):
    """pyld's resolved-context cache for one bundle: first in, first out past its size. pyld
    reads and writes it with ``get`` and item assignment; a lock keeps concurrent requests
    from evicting under each other."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._lock = threading.Lock()

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            while len(self) >= self._size and key not in self:
                self.popitem(last=False)
            super().__setitem__(key, value)


class ContextBundle:
    """JSON-LD documents by URL, and the pyld document loader that serves exactly them.

    Calling the bundle (``bundle(url, options)``) answers pyld's loader protocol; a URL it does
    not hold raises :class:`~verifier.errors.UnknownContextError`. Nothing here opens a socket.
    """

    def __init__(self, documents: Mapping[str, bytes]) -> None:
        self._documents: dict[str, bytes] = dict(documents)
        self.cache: _BoundedCache = _BoundedCache(_CACHE_SIZE)

    @property
    def urls(self) -> frozenset[str]:
        return frozenset(self._documents)

    def with_documents(self, documents: Mapping[str, Any]) -> ContextBundle:
        """A new bundle holding these documents (URL -> JSON value) as well; each replaces a
        bundled one of the same URL."""
        extra = {url: json.dumps(value).encode() for url, value in documents.items()}
        return ContextBundle({**self._documents, **extra})

    def document(self, url: str) -> Any:
        """The JSON document for ``url`` (a fresh copy), or UnknownContextError."""
        text = self._documents.get(url)
        if text is None:
            raise UnknownContextError(url)
        return json.loads(text)

    def __call__(self, url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": self.document(url)}


def _contexts_folder() -> Any:
    return resources.files("verifier") / "contexts"


@functools.cache
def manifest() -> tuple[BundledContext, ...]:
    """The entries of ``verifier/contexts/manifest.json``."""
    data = json.loads((_contexts_folder() / "manifest.json").read_text(encoding="utf-8"))
    return tuple(BundledContext(**entry) for entry in data["contexts"])


@functools.cache
def bundled_contexts() -> ContextBundle:
    """The contexts shipped in ``verifier/contexts``, each checked against its SHA-256."""
    documents: dict[str, bytes] = {}
    for entry in manifest():
        data = (_contexts_folder() / entry.file).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise JsonLdProcessingError(
                f"bundled context {entry.file} does not match its SHA-256 in manifest.json: "
                "the installation is damaged")
        documents[entry.url] = data
    return ContextBundle(documents)


# --- input bounds ------------------------------------------------------------------------------


def _check_size(document: Mapping[str, Any]) -> None:
    """Refuse documents over MAX_VALUES values or MAX_DEPTH levels, without recursion."""
    count = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise JsonLdLimitError(f"document has more than {MAX_VALUES} JSON values")
        if isinstance(value, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                raise JsonLdLimitError(f"document is nested deeper than {MAX_DEPTH} levels")
            children = value.values() if isinstance(value, Mapping) else value
            stack.extend((child, depth + 1) for child in children)


def _refuse_dropped(expanded_property: object) -> None:
    """pyld's hook for a property it drops in expansion: in safe mode that is an error."""
    raise JsonLdProcessingError(
        "safe mode: a property does not map to an absolute IRI "
        f"(it expands to {str(expanded_property)[:100]!r}) and would not be signed; define it "
        "in a @context")


def _walk(expanded: Any) -> Iterator[dict[str, Any]]:
    stack = [expanded]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            yield value
            # A value object's @value is data (an @json literal may hold any JSON), not nodes.
            stack.extend(v for k, v in value.items() if k != "@value")
        elif isinstance(value, list):
            stack.extend(value)


def _is_node_reference(value: object) -> bool:
    return isinstance(value, str) and (value.startswith("_:")
                                       or _ABSOLUTE_IRI.fullmatch(value) is not None)


def _check_work(expanded: Any) -> None:
    """Refuse an expanded document whose RDF dataset would exceed MAX_QUADS, or whose
    de-duplication in pyld's node map would exceed MAX_DEDUP_WORK comparisons."""
    values: dict[tuple[object, str], int] = {}
    quads = 0
    for node in _walk(expanded):
        if "@value" in node:
            continue
        if "@list" in node:
            quads += 2 * len(node["@list"])  # rdf:first and rdf:rest per item
            continue
        # Nodes with one @id are merged into one; anonymous nodes stay apart.
        subject: object = node.get("@id") if isinstance(node.get("@id"), str) else id(node)
        for key, items in node.items():
            if key in ("@type",) or not key.startswith("@"):
                count = len(items) if isinstance(items, list) else 1
                quads += count
                values[subject, key] = values.get((subject, key), 0) + count
            elif key == "@reverse" and isinstance(items, dict):
                # {"@id": X, "@reverse": {p: [A, ...]}} adds X to each A's property p: the
                # comparisons are A's, however many nodes point at it this way.
                for prop, referrers in items.items():
                    for item in referrers if isinstance(referrers, list) else [referrers]:
                        target = (item.get("@id") if isinstance(item, dict)
                                  and isinstance(item.get("@id"), str) else id(item))
                        quads += 1
                        values[target, prop] = values.get((target, prop), 0) + 1
    if quads > MAX_QUADS:
        raise JsonLdLimitError(f"document makes about {quads} RDF quads, more than {MAX_QUADS}")
    work = sum(count * count // 2 for count in values.values())
    if work > MAX_DEDUP_WORK:
        largest = max(values.values())
        raise JsonLdLimitError(
            f"document needs {work} value comparisons to build its RDF dataset, more than "
            f"{MAX_DEDUP_WORK} (one node holds {largest} values of one property)")


def _check_absolute(expanded: Any) -> None:
    """Safe mode after expansion: every ``@id`` and ``@type`` must be an absolute IRI (or a
    blank node), every property an absolute IRI; pyld would leave relative ones out of the
    RDF dataset without a word."""
    for node in _walk(expanded):
        for key in node:
            if not key.startswith("@") and _ABSOLUTE_IRI.fullmatch(key) is None:
                raise JsonLdProcessingError(f"safe mode: property {key[:100]!r} is not an "
                                            "absolute IRI")
        if "@id" in node and not _is_node_reference(node["@id"]):
            raise JsonLdProcessingError(
                f"safe mode: @id {str(node['@id'])[:100]!r} is a relative IRI and would not be "
                "signed")
        if "@value" in node:
            types: list[Any] = [node["@type"]] if "@type" in node else []
            types = [] if types == ["@json"] else types
        else:
            raw = node.get("@type", [])
            types = raw if isinstance(raw, list) else [raw]
        for item in types:
            if not _is_node_reference(item):
                raise JsonLdProcessingError(
                    f"safe mode: type {str(item)[:100]!r} is a relative IRI and would not be "
                    "signed")


# --- RDFC-1.0 ----------------------------------------------------------------------------------

# RDFC-1.0 canonical N-Quads escaping (as the W3C test suite and rdf-canonize write it).
_LITERAL_ESCAPES: Final = {
    **{chr(n): f"\\u{n:04X}" for n in (*range(0x20), 0x7F)},
    "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\",
}
_LITERAL_SPECIAL: Final = re.compile('[\x00-\x1f\x7f"\\\\]')
_IRI_SPECIAL: Final = re.compile('[\x00-\x20<>"{}|^`\\\\]')


def _literal(value: str) -> str:
    return _LITERAL_SPECIAL.sub(lambda m: _LITERAL_ESCAPES[m.group()], value)


def _iri(value: str) -> str:
    return "<" + _IRI_SPECIAL.sub(lambda m: f"\\u{ord(m.group()):04X}", value) + ">"


def _term(component: Mapping[str, Any]) -> str:
    if component["type"] == "IRI":
        return _iri(component["value"])
    if component["type"] == "blank node":
        return str(component["value"])
    text = '"' + _literal(component["value"]) + '"'
    datatype = component.get("datatype")
    if datatype == _RDF_LANGSTRING:
        return text + ("@" + component["language"] if component.get("language") else "")
    if datatype and datatype != _XSD_STRING:
        return text + "^^" + _iri(datatype)
    return text


def _nquad(quad: Mapping[str, Any]) -> str:
    line = f"{_term(quad['subject'])} {_term(quad['predicate'])} {_term(quad['object'])}"
    name = quad.get("name")
    if name is not None and name.get("value") is not None:
        line += " " + _term(name)
    return line + " .\n"


class _BoundedRdfc10(URDNA2015):  # type: ignore[misc]  # pyld ships no type hints
    """pyld's URDNA2015 (the algorithm RDFC-1.0 standardised) with RDFC-1.0's N-Quads escaping
    in the first-degree hashes, and with the work bounds of the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._deep_iterations_left: int | None = None
        self._permutations = 0

    def hash_first_degree_quads(self, id_: str) -> str:
        info = self.blank_node_info[id_]
        if "hash" not in info:
            nquads = sorted(
                _nquad({key: component if key == "predicate"
                        else self.modify_first_degree_component(id_, component, key)
                        for key, component in quad.items()})
                for quad in info["quads"])
            info["hash"] = self.hash_nquads(nquads)
        return str(info["hash"])

    def hash_n_degree_quads(self, id_: str, issuer: Any) -> dict[str, Any]:
        if self._deep_iterations_left is None:
            # The first call comes after the first-degree step, when hash_to_blank_nodes holds
            # exactly the blank nodes it left undistinguished.
            self._deep_iterations_left = sum(len(ids) for ids in self.hash_to_blank_nodes.values())
        if self._deep_iterations_left <= 0:
            raise JsonLdLimitError(
                "RDF canonicalisation needs more blank-node work than allowed (more Hash "
                "N-Degree Quads steps than undistinguished blank nodes): refused as a possible "
                "poison graph")
        self._deep_iterations_left -= 1
        result: dict[str, Any] = super().hash_n_degree_quads(id_, issuer)
        return result

    def create_hash_to_related(self, id_: str, issuer: Any) -> dict[str, list[str]]:
        related: dict[str, list[str]] = super().create_hash_to_related(id_, issuer)
        for nodes in related.values():
            # factorial is only computed for short lists: a long one is over the cap anyway.
            self._permutations += math.factorial(len(nodes)) if len(nodes) < 10 else \
                MAX_PERMUTATIONS + 1
            if self._permutations > MAX_PERMUTATIONS:
                raise JsonLdLimitError(
                    f"RDF canonicalisation would try more than {MAX_PERMUTATIONS} permutations "
                    "of related blank nodes: refused as a possible poison graph")
        return related

    def canonical(self, dataset: Mapping[str, Any]) -> str:
        # pyld issues the canonical labels on self.quads in place; they are then serialised
        # here with RDFC-1.0's escaping (pyld's own serialisation of them is not used).
        self.main(dataset, {"format": "application/n-quads"})
        return "".join(sorted(_nquad(quad) for quad in self.quads))


def _cause(exc: BaseException) -> VerifierError | None:
    """The first error of this package in ``exc``'s chain of causes (pyld wraps the loader's)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, VerifierError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def canonical_nquads(document: Mapping[str, Any], *,
                     contexts: ContextBundle | None = None) -> str:
    """The RDFC-1.0 canonical N-Quads of a JSON-LD document, every context loaded from
    ``contexts`` (default: :func:`bundled_contexts`). Raises a
    :class:`~verifier.errors.JsonLdProcessingError` subclass (unknown context, safe-mode
    violation, a bound exceeded, invalid JSON-LD); never fetches anything."""
    if not isinstance(document, Mapping):
        raise JsonLdProcessingError(
            f"document: expected a JSON object, got {type(document).__name__}")
    _check_size(document)
    bundle = contexts if contexts is not None else bundled_contexts()
    processor = JsonLdProcessor(on_property_dropped=_refuse_dropped)
    options: dict[str, Any] = {
        "documentLoader": bundle, "processingMode": "json-ld-1.1",
        # No base IRI (the reference implementation's ``base: null``): a relative @id stays
        # relative, and safe mode refuses it.
        "base": None,
        "contextResolver": ContextResolver(bundle.cache, bundle),
    }
    try:
        expanded = processor.expand(dict(document), options)
        _check_absolute(expanded)
        _check_work(expanded)
        # i18n-datatype for @direction, as the reference implementation's canonize does.
        dataset = processor.to_rdf(expanded, {**options, "produceGeneralizedRdf": False,
                                              "rdfDirection": "i18n-datatype"})
        quads = sum(len(triples) for triples in dataset.values())
        if quads > MAX_QUADS:
            raise JsonLdLimitError(f"document makes {quads} RDF quads, more than {MAX_QUADS}")
        return _BoundedRdfc10().canonical(dataset)
    except VerifierError:
        raise
    except RecursionError:
        raise JsonLdLimitError("JSON-LD processing recursed too deeply") from None
    except PyLdError as exc:
        ours = _cause(exc)
        if ours is not None:
            raise ours from None
        raise JsonLdProcessingError(f"invalid JSON-LD: {_pyld_message(exc)}") from None
    except Exception as exc:
        # pyld answers some malformed input with built-in exceptions (TypeError, KeyError,
        # ...); hostile input gets a typed error, as everywhere in this package.
        ours = _cause(exc)
        if ours is not None:
            raise ours from None
        raise JsonLdProcessingError(
            f"invalid JSON-LD: {type(exc).__name__}: {str(exc)[:200]}") from None


def _pyld_message(exc: PyLdError) -> str:
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        message = str(seen.args[0]) if seen.args else type(seen).__name__
        code = getattr(seen, "code", None)
        parts.append(f"{message} ({code})" if code else message)
        seen = seen.__cause__
    return "; ".join(parts)[:400]
