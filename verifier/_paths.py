"""Paths into JSON documents for error messages, spelled only when one is needed.

A walk over a document keeps, per value, only a link to its parent: building the path string
of every value instead costs memory that grows with the depth for each value, which is
quadratic in the document's size for a hostile document (long keys, then many values)."""

from __future__ import annotations

from typing import Any

__all__ = ["Link", "spell"]

#: (the parent's link, or None at the top; this value's key or index)
Link = tuple[Any, str | int]

_LIMIT = 200


def spell(root: str, link: Link | None) -> str:
    """``root.a[0].b`` for a chain of links; shortened in the middle beyond 200 characters."""
    parts: list[str] = []
    while link is not None:
        link, step = link
        parts.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    path = root + "".join(reversed(parts))
    if len(path) <= _LIMIT:
        return path
    return path[:_LIMIT // 2] + "..." + path[-_LIMIT // 2:]
