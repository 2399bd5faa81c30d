"""A deliberately naive transcription of RFC 9162 section 2.1 (MTH, PATH, PROOF/SUBPROOF),
used only to cross-check verifier.merkle. It recurses exactly as the RFC's definitions do and
shares no code with the implementation under test."""

from __future__ import annotations

import hashlib
from functools import lru_cache


class ReferenceTree:
    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self._mth = lru_cache(maxsize=None)(self._mth_uncached)

    @staticmethod
    def _k(n: int) -> int:
        """The largest power of two smaller than n (n > 1)."""
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def _mth_uncached(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + self.leaves[start]).digest()
        k = self._k(n)
        return hashlib.sha256(
            b"\x01" + self._mth(start, start + k) + self._mth(start + k, end)
        ).digest()

    def mth(self, start: int, end: int) -> bytes:
        return self._mth(start, end)

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """PATH(m, D[start:end]) with m relative to start."""
        n = end - start
        if n == 1:
            return []
        k = self._k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[0:n]) for 0 < m <= n."""
        return self._subproof(m, 0, n, True)

    def _subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self._k(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.mth(start, start + k)]


def path_sides(m: int, n: int) -> list[str]:
    """For PATH(m, D[n]): which side each audit-path hash joins on, from the leaf up
    ("L": the hash is the left child, "R": the right child). This is the route from the root to
    the leaf; two (index, size) claims with equal routes hash a proof identically."""
    if n == 1:
        return []
    k = ReferenceTree._k(n)
    if m < k:
        return [*path_sides(m, k), "R"]
    return [*path_sides(m - k, n - k), "L"]


def proof_sides(m: int, n: int, complete: bool = True) -> list[str]:
    """The same for PROOF(m, D[n]), 0 < m < n; a leading "seed" stands for MTH(D[m]) when the
    proof carries it (m not a power of two at the point where the recursion stops)."""
    if m == n:
        return [] if complete else ["seed"]
    k = ReferenceTree._k(n)
    if m <= k:
        return [*proof_sides(m, k, complete), "R"]
    return [*proof_sides(m - k, n - k, False), "L"]
