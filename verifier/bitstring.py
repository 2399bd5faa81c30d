"""W3C Bitstring Status List v1.0 encoding, and the status entries and list URLs of this
project's credentials. Pure functions over bytes and strings.

A list is a bitstring in which entry ``i`` is bit ``7 - i % 8`` of byte ``i // 8`` (entry 0 is
the most significant bit of the first byte). ``CredentialAnchor`` stores status words in that
order, so the big-endian bytes of a list's words are its bitstring
(:func:`words_to_bitstring`). The ``encodedList`` of a list credential is the GZIP-compressed
bitstring in multibase base64url (no padding, prefix ``u``).

Strictness on input: :func:`decode_list` also accepts base64url without the ``u`` prefix,
because the W3C test-suite fixtures are written that way; :func:`encode_list` always writes
the prefix. Decompression is bounded (:data:`MAX_LIST_BYTES`), so a small hostile input cannot
expand without limit.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

from verifier.contract_types import STATUS_LIST_SIZE, StatusPurpose
from verifier.did import did_web_url
from verifier.errors import DataIntegrityKeyError, StatusListError

__all__ = [
    "MAX_LIST_BYTES",
    "MIN_LIST_BITS",
    "bit",
    "decode_list",
    "encode_list",
    "parse_status_list_url",
    "status_entries",
    "status_entries_text",
    "status_list_url",
    "words_to_bitstring",
]

#: The Recommendation's minimum list length, in bits (16 KiB): also every list this project
#: publishes, one ``CredentialAnchor`` list.
MIN_LIST_BITS: Final = STATUS_LIST_SIZE
#: Largest decompressed list read (16 MiB, 2**27 entries): a bound on work per input.
MAX_LIST_BYTES: Final = 2**24
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_MAX_ENCODED_CHARS: Final = 4 * MAX_LIST_BYTES  # far above any real list's compressed size


def words_to_bitstring(words: Sequence[int]) -> bytes:
    """The bitstring of 256-bit status words as ``CredentialAnchor`` stores them."""
    return b"".join(word.to_bytes(32, "big") for word in words)


def bit(bitstring: bytes, index: int) -> bool:
    """Entry ``index`` of a bitstring (entry 0 is the most significant bit of byte 0)."""
    if not 0 <= index < 8 * len(bitstring):
        raise StatusListError(f"status list index {index} is outside a list of "
                              f"{8 * len(bitstring)} entries")
    return bool(bitstring[index >> 3] >> (7 - (index & 7)) & 1)


def encode_list(bitstring: bytes) -> str:
    """``encodedList``: the bitstring GZIP-compressed (no file name, time 0, so equal lists
    encode equally) in multibase base64url without padding, with the ``u`` prefix."""
    compressed = gzip.compress(bitstring, compresslevel=6, mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def decode_list(encoded: object) -> bytes:
    """The bitstring of an ``encodedList``. Accepts multibase base64url (``u`` prefix, as the
    Recommendation requires) and, on input only, the same without the prefix. Raises
    :class:`StatusListError` for anything else, for data that is not GZIP, and for a list
    larger than :data:`MAX_LIST_BYTES` once decompressed."""
    if not isinstance(encoded, str):
        raise StatusListError("encodedList must be a string")
    if len(encoded) > _MAX_ENCODED_CHARS:
        raise StatusListError(f"encodedList is longer than {_MAX_ENCODED_CHARS} characters")
    text = encoded[1:] if encoded.startswith("u") else encoded
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise StatusListError("encodedList is not base64url (multibase 'u')")
    try:
        compressed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise StatusListError("encodedList is not base64url (multibase 'u')") from None
    return _gunzip(compressed)


def _gunzip(compressed: bytes) -> bytes:
    """GZIP members decompressed, at most :data:`MAX_LIST_BYTES` in all."""
    if compressed[:2] != b"\x1f\x8b":
        raise StatusListError("encodedList is not GZIP-compressed")
    # wbits 16 + 15: a GZIP wrapper, checked (header and CRC-32) by zlib itself.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(compressed, MAX_LIST_BYTES + 1)
        if len(out) > MAX_LIST_BYTES or inflater.unconsumed_tail:
            raise StatusListError(f"encodedList decompresses to more than {MAX_LIST_BYTES} "
                                  "bytes")
        if not inflater.eof:
            raise StatusListError("encodedList is truncated GZIP data")
    except zlib.error:
        raise StatusListError("encodedList is not valid GZIP data") from None
    if inflater.unused_data:
        raise StatusListError("encodedList has data after its GZIP stream")
    return out


def status_list_url(did: str, issuer_name: str, status_list: int,
                    purpose: StatusPurpose | str) -> str:
    """Where this project publishes an issuer's status list: on the host of the issuer's
    did:web DID, ``https://HOST/issuers/<name>/status-lists/<list>/<purpose>``."""
    purpose = StatusPurpose(purpose)
    if type(status_list) is not int or not 0 <= status_list < 2**32:
        raise StatusListError(f"status list {status_list!r} is not in 0..2**32 - 1")
    try:
        host = urlsplit(did_web_url(did)).netloc
    except DataIntegrityKeyError as exc:
        raise StatusListError(f"status lists are published on a did:web host: {exc}") from None
    return (f"https://{host}/issuers/{quote(issuer_name, safe='')}/status-lists/"
            f"{status_list}/{purpose.value}")


def parse_status_list_url(url: str, did: str | None = None) -> tuple[int, StatusPurpose]:
    """(list number, purpose) of a status list URL of this project's form, the whole URL:
    ``https://HOST/issuers/<name>/status-lists/<list>/<purpose>`` with no user, query or
    fragment. With ``did`` (the issuer's did:web DID), HOST must be the DID's host, and when
    the DID is ``did:web:HOST:issuers:<name>``, <name> must be that name: a URL on another host,
    or of another issuer on the same host, is not that issuer's list.
    :class:`StatusListError` for any other URL."""
    try:
        parts = urlsplit(url)
        # .port raises ValueError itself for a port that is not a number below 65536.
        if parts.port == 0:
            raise ValueError(url)
    except ValueError:
        raise StatusListError("statusListCredential is not a URL") from None
    segments = parts.path.split("/")
    if parts.scheme != "https" or not parts.hostname or parts.username is not None \
            or parts.query or parts.fragment or "?" in url or "#" in url \
            or len(segments) != 6 or segments[0] or segments[1] != "issuers" \
            or segments[3] != "status-lists" or not segments[2] \
            or unquote(segments[2]) in (".", ".."):
        raise StatusListError(f"{url[:200]!r} is not a status list URL of the form "
                              "https://HOST/issuers/<name>/status-lists/<list>/<purpose>")
    if did is not None:
        _bind_to_did(url, parts.netloc, segments[2], did)
    number, purpose = segments[-2], unquote(segments[-1])
    if not number.isascii() or not number.isdigit() or (len(number) > 1 and number[0] == "0") \
            or int(number) >= 2**32:
        raise StatusListError(f"{url[:200]!r}: {number[:20]!r} is not a list number")
    try:
        return int(number), StatusPurpose(purpose)
    except ValueError:
        raise StatusListError(f"{url[:200]!r}: {purpose[:20]!r} is not a status purpose "
                              "(revocation or suspension)") from None


def _bind_to_did(url: str, netloc: str, name: str, did: str) -> None:
    """A status list URL's host and issuer name are those of the issuer ``did``: this project
    publishes an issuer's lists on its did:web host, under its name."""
    try:
        host = urlsplit(did_web_url(did)).netloc
    except DataIntegrityKeyError as exc:
        raise StatusListError(f"status lists are published on the host of a did:web issuer: "
                              f"{exc}") from None
    if netloc.lower() != host.lower():
        raise StatusListError(f"{url[:200]!r} is on host {netloc[:100]!r}, not on the host "
                              f"{host!r} of the issuer {did[:100]!r}")
    segments = did[len("did:web:"):].split(":")
    if len(segments) == 3 and segments[1] == "issuers" \
            and unquote(name) != unquote(segments[2]):
        raise StatusListError(f"{url[:200]!r} is a list of issuer {unquote(name)[:60]!r}, not "
                              f"of {unquote(segments[2])[:60]!r} ({did[:100]!r})")


def status_entries(urls: dict[StatusPurpose, str], index: int) -> list[dict[str, Any]]:
    """The ``credentialStatus`` of a credential at ``index`` of the lists at ``urls``: one
    ``BitstringStatusListEntry`` per purpose, revocation first."""
    if type(index) is not int or not 0 <= index < STATUS_LIST_SIZE:
        raise StatusListError(f"status list index {index!r} is not in "
                              f"0..{STATUS_LIST_SIZE - 1}")
    return status_entries_text(urls, str(index))


def status_entries_text(urls: dict[StatusPurpose, str], index: str) -> list[dict[str, Any]]:
    """:func:`status_entries` with the index given as the text it takes in them, unchecked:
    for callers that put a placeholder in its place (the service's canonical template)."""
    return [{"id": f"{urls[purpose]}#{index}", "type": "BitstringStatusListEntry",
             "statusPurpose": purpose.value, "statusListIndex": index,
             "statusListCredential": urls[purpose]}
            for purpose in (StatusPurpose.REVOCATION, StatusPurpose.SUSPENSION)]
