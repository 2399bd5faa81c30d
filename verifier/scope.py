"""Reading the kinds of learning a credential declares (``learningScope``).

This project's convention: ``learningScope`` (a string, or a non-empty array of strings) at the
top level and/or in each ``credentialSubject`` (an object, or an array of objects, as VC 2.0
allows). The issuer-scope rule of :mod:`verifier.verify` and the credit reading of
:mod:`verifier.credits` both read it here, so that they agree on every shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verifier._paths import Link, spell
from verifier.errors import ScopeShapeError

__all__ = ["SCOPE_KEY", "ScopeShapeError", "declared_scopes"]

#: The key as it appears in a credential's canonical JSON text: a document without it declares
#: no scope, which one search of the text establishes without walking the document.
SCOPE_KEY = b'"learningScope"'


def declared_scopes(credential: Mapping[str, Any]) -> list[str]:
    """Every scope the credential declares, in order, each once.

    Every place counts: a scope declared anywhere must be allowed, so none can hide behind
    another. A ``learningScope`` anywhere else in the credential, or in another shape, raises
    :class:`ScopeShapeError`: it is never ignored."""
    declared: list[str] = []
    holders = _scope_holders(credential)
    for where, holder in holders:
        _collect_scope(holder, where, declared)
    stray = _stray_scope(credential, {id(holder) for _, holder in holders})
    if stray is not None:
        raise ScopeShapeError(f"{stray} declares a learningScope where the scope rule does "
                              "not read it (the top level, or a credentialSubject object)")
    return list(dict.fromkeys(declared))


def _scope_holders(credential: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The objects whose ``learningScope`` the rule reads, each with where its scope is."""
    holders: list[tuple[str, Mapping[str, Any]]] = [("learningScope", credential)]
    subject = credential.get("credentialSubject")
    if isinstance(subject, Mapping):
        holders.append(("credentialSubject.learningScope", subject))
    elif isinstance(subject, list):
        holders += [(f"credentialSubject[{index}].learningScope", item)
                    for index, item in enumerate(subject) if isinstance(item, Mapping)]
    return holders


def _stray_scope(credential: Mapping[str, Any], read_ids: set[int]) -> str | None:
    """The path of the first ``learningScope`` key in an object other than those the rule
    reads (``read_ids``), or None.

    The walk keeps, per value, only a link to its parent (no path strings: they would grow
    with the depth for every value, quadratic in the document's size), and spells the path
    of the one value found."""
    # (value, link): link is None at the top, else (parent's link, key or index).
    stack: list[tuple[Any, Link | None]] = [(credential, None)]
    while stack:
        value, link = stack.pop()
        if isinstance(value, Mapping):
            if "learningScope" in value and id(value) not in read_ids:
                return spell("credential", link) + ".learningScope"
            stack.extend((item, (link, key)) for key, item in value.items()
                         if key != "learningScope" and isinstance(item, (Mapping, list)))
        elif isinstance(value, list):
            stack.extend((item, (link, index)) for index, item in enumerate(value)
                         if isinstance(item, (Mapping, list)))
    return None


def _collect_scope(holder: Mapping[str, Any], where: str, declared: list[str]) -> None:
    if "learningScope" not in holder:
        return
    value = holder["learningScope"]
    if isinstance(value, str):
        declared.append(value)
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        declared.extend(value)
    else:
        raise ScopeShapeError(f"{where} is {_shape(value)}: it must be a string or a "
                              "non-empty array of strings")


def _shape(value: object) -> str:
    if isinstance(value, list):
        return "an empty array" if not value else "an array holding a non-string"
    names = {dict: "an object", str: "a string", bool: "a boolean", int: "a number",
             float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
