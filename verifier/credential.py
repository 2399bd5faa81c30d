"""Credential digests: how a credential becomes a Merkle leaf.

- A credential is any JSON object (W3C VC 2.0, Open Badges 3.0, Europass/ELM, plain JSON).
- Its digest is SHA-256 over its RFC 8785 (JCS) canonical form, so the same credential gives
  the same digest in every language and whatever its key order or number spelling.
- Its leaf input is ``salt || digest``, with a fresh random salt of at least 16 bytes per
  credential: the sibling hashes in one learner's receipt then reveal nothing that could be
  guessed about another learner's credential.

Values JCS cannot represent exactly are rejected with :class:`~verifier.errors.CredentialError`
naming where they are: NaN and infinities, integers outside +-(2**53 - 1) (I-JSON's exact range:
send larger numbers as strings), also when spelled as a float such as ``1e16`` (JCS would write
it back as a bare integer out of range), strings that are not valid Unicode, non-string keys,
duplicate keys, nesting deeper than 128 levels and a top level that is not an object. So every
accepted credential's canonical form is itself accepted and canonicalises to itself.
"""

from __future__ import annotations

import enum
import json
import math
import secrets
from array import array
from collections.abc import Mapping
from hashlib import sha256
from itertools import accumulate
from typing import Any, Final

import rfc8785

from verifier._paths import Link, spell
from verifier.contract_types import STATUS_LIST_SIZE
from verifier.errors import CredentialError, UnreadableJSONError

__all__ = [
    "DIGEST_SIZE",
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "MAX_SALT_SIZE",
    "MIN_SALT_SIZE",
    "SALT_SIZE",
    "canonicalize",
    "credential_digest",
    "issuer_id",
    "leaf_input",
    "new_salt",
    "new_salts",
    "parse_credential",
    "parse_json_object",
]

DIGEST_SIZE: Final = 32
SALT_SIZE: Final = 16
MIN_SALT_SIZE: Final = 16
MAX_SALT_SIZE: Final = 64
MAX_SAFE_INTEGER: Final = 2**53 - 1
_EXPONENT_FROM: Final = 1e21  # from here on JCS (like ECMAScript) writes numbers with an exponent
MAX_DEPTH: Final = 128  # credentials are shallow; the bound keeps rfc8785's recursion safe
_SAFE_INTEGER_DIGITS: Final = len(str(MAX_SAFE_INTEGER))  # 16: any longer literal is outside


def parse_json_object(text: str | bytes, what: str = "credential", *,
                      wrapper_depth: int = 0) -> dict[str, Any]:
    """Parse JSON text strictly into a dict.

    Stricter than :func:`json.loads`: bytes must be UTF-8, the literals ``NaN``/``Infinity``,
    duplicate keys and integer literals of more than 16 digits (outside +-(2**53 - 1) whatever
    their value) are errors, nesting is bounded, and the top level must be an object. Errors
    raise :class:`CredentialError` whose message starts with ``what``: its subclass
    :class:`UnreadableJSONError` when the text is not such JSON at all.

    Nesting is counted on the credential: ``wrapper_depth`` is how many levels of the document
    wrap it (1 for a bundle's ``credential``, 2 for ``{"credentials": [...]}``), so a
    credential may nest :data:`MAX_DEPTH` levels on every path that carries it.
    """
    if isinstance(text, (bytes, bytearray)):
        data = bytes(text)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableJSONError(f"{what}: not UTF-8 (byte {exc.start})") from None
        _check_nesting(data, what, wrapper_depth)
    elif isinstance(text, str):
        _check_nesting(text, what, wrapper_depth)
    else:
        raise CredentialError(f"{what}: expected JSON text, got {type(text).__name__}")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise UnreadableJSONError(
            f"{what}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except _JSONValueError as exc:
        raise UnreadableJSONError(f"{what}: {exc}") from None
    except RecursionError:
        raise UnreadableJSONError(f"{what}: JSON is nested too deeply") from None
    if not isinstance(value, dict):
        raise CredentialError(f"{what}: top level must be a JSON object, got {_json_type(value)}")
    return value


def parse_credential(text: str | bytes) -> dict[str, Any]:
    """Parse a credential from JSON text and check that JCS can canonicalise it."""
    credential = parse_json_object(text)
    _check_representable(credential)
    return credential


def canonicalize(credential: Mapping[str, Any]) -> bytes:
    """The RFC 8785 (JCS) canonical UTF-8 form of a credential (a JSON object)."""
    if not isinstance(credential, Mapping):
        raise CredentialError(
            f"credential: top level must be a JSON object, got {_json_type(credential)}"
        )
    verdict = _scan(credential)
    if verdict is _Scan.INVALID:
        _locate_unrepresentable(credential)  # raises, naming the path
    if verdict is _Scan.PLAIN:
        # Same bytes as RFC 8785 for this value (see _scan), computed in C: about six times
        # faster than the pure-Python encoder on typical credentials.
        return json.dumps(credential, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"), allow_nan=False).encode("utf-8")
    try:
        return rfc8785.dumps(credential)
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover - the scan is stricter
        raise CredentialError(f"credential: {exc}") from None


def credential_digest(credential: Mapping[str, Any]) -> bytes:
    """SHA-256 over the credential's RFC 8785 canonical form (32 bytes)."""
    return sha256(canonicalize(credential)).digest()


def new_salt(size: int = SALT_SIZE) -> bytes:
    """A fresh random salt from the OS CSPRNG, drawn once per credential."""
    if not MIN_SALT_SIZE <= size <= MAX_SALT_SIZE:
        raise CredentialError(f"salt size must be {MIN_SALT_SIZE}..{MAX_SALT_SIZE} bytes")
    return secrets.token_bytes(size)


def new_salts(count: int) -> list[bytes]:
    """``count`` fresh salts of :data:`SALT_SIZE` bytes, as :func:`new_salt` draws them but
    with one call to the OS CSPRNG for all (a call costs microseconds; thousands add up)."""
    pool = secrets.token_bytes(SALT_SIZE * count)
    return [pool[start:start + SALT_SIZE] for start in range(0, len(pool), SALT_SIZE)]


def leaf_input(salt: bytes, digest: bytes, status_list: int, status_list_index: int) -> bytes:
    """The Merkle leaf input of a credential: ``salt || digest || statusList ||
    statusListIndex``, the last two as big-endian uint32s.

    The digest and the status position have fixed lengths and come last, so the input is
    unambiguous; the position comes last of all because ``CredentialAnchor.checkCredential``
    reads it from the final 8 bytes. Binding the position into the leaf means a receipt cannot
    point a verifier at another credential's status."""
    if not isinstance(salt, bytes) or not MIN_SALT_SIZE <= len(salt) <= MAX_SALT_SIZE:
        raise CredentialError(f"salt must be {MIN_SALT_SIZE}..{MAX_SALT_SIZE} bytes")
    if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
        raise CredentialError(f"digest must be {DIGEST_SIZE} bytes")
    if type(status_list) is not int or not 0 <= status_list < 2**32:
        raise CredentialError("status list must be an integer in 0..2**32 - 1")
    if type(status_list_index) is not int or not 0 <= status_list_index < STATUS_LIST_SIZE:
        raise CredentialError(f"status list index must be an integer in "
                              f"0..{STATUS_LIST_SIZE - 1}")
    return salt + digest + status_list.to_bytes(4, "big") + status_list_index.to_bytes(4, "big")


class _JSONValueError(ValueError):
    pass


# Every byte but the four brackets and the quote: deleted before the depth walk.
_NOT_STRUCTURAL: Final = bytes(sorted(set(range(256)) - set(b'[]{}"')))
# Opening brackets become +1, closing ones -1 (0xff read as a signed byte).
_STEPS: Final = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")
_CHUNK: Final = 1 << 16


def _check_nesting(text: str | bytes, what: str, wrapper_depth: int = 0) -> None:
    """Reject nesting deeper than MAX_DEPTH (plus ``wrapper_depth``) before json.loads sees it.

    The json module recurses on the C stack; with a raised recursion limit (some libraries
    raise it) deeply nested input would crash the process instead of raising. Linear time,
    and every step runs in C: the check is the first thing any public request meets."""
    # A container at the deepest allowed level (MAX_DEPTH) may still be written, empty: its
    # brackets sit one level deeper.
    limit = MAX_DEPTH + 1 + wrapper_depth
    if isinstance(text, str):
        if text.count("[") + text.count("{") <= limit:
            return  # cannot nest deeper than it has brackets: the common case, decided in C
        data = text.encode("utf-8", "surrogatepass")
    else:
        if text.count(b"[") + text.count(b"{") <= limit:
            return
        data = text
    if _max_depth_exceeds(data, limit):
        around = (f" (not counting the {wrapper_depth} level{'s' * (wrapper_depth > 1)} "
                  "around the credential)" if wrapper_depth else "")
        raise UnreadableJSONError(f"{what}: JSON is nested deeper than {MAX_DEPTH} levels{around}")


def _max_depth_exceeds(data: bytes, limit: int) -> bool:
    """Whether the brackets outside strings ever nest deeper than ``limit``.

    UTF-8 never puts these ASCII bytes inside a multi-byte character, so bytes will do.
    Escapes go first: pairs of backslashes, left to right (what a JSON scanner does), then
    escaped quotes, so every quote left delimits a string. A backslash outside a string is
    invalid JSON, and json.loads stops there before recursing any further, so whatever
    follows it cannot make the check unsafe. Then only brackets and quotes are kept, the
    strings (every other part between quotes) dropped, and the heights walked."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    data = data.translate(None, _NOT_STRUCTURAL)
    height = 0
    in_string = False
    # Chunk by chunk, carrying whether a string is open, so that splitting on quotes never
    # holds more than one chunk's parts (a part per quote costs ~35 bytes of list and object).
    for start in range(0, len(data), _CHUNK):
        chunk = data[start:start + _CHUNK]
        if b'"' in chunk:
            parts = chunk.split(b'"')
            outside = b"".join(parts[1 if in_string else 0::2])
            in_string ^= (len(parts) - 1) % 2 == 1
        elif in_string:
            continue
        else:
            outside = chunk
        steps = outside.translate(_STEPS)
        opening = steps.count(1)
        # Exact heights only where this chunk could reach the limit at all.
        if height + opening > limit:
            signed = array("b")
            signed.frombytes(steps)
            if max(accumulate(signed, initial=height)) > limit:
                return True
        height += 2 * opening - len(steps)
    return False


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JSONValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise _JSONValueError(f"{name} is not a JSON number and cannot be canonicalised")


def _parse_safe_int(literal: str) -> int:
    # Decided on the literal's length, before int() runs: CPython refuses to convert more
    # than 4,300 digits (a bare ValueError), and converting fewer still costs quadratic time.
    if len(literal) > _SAFE_INTEGER_DIGITS and (
            digits := len(literal) - (literal[0] == "-")) > _SAFE_INTEGER_DIGITS:
        shown = literal if len(literal) <= 24 else literal[:20] + "..."
        raise _JSONValueError(f"integer {shown} ({digits} digits) is outside +-(2**53 - 1), "
                              "which JCS (RFC 8785) cannot represent exactly; encode it as a "
                              "string")
    return int(literal)


def _parse_finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _JSONValueError(f"number {literal} is too large for a double (overflows to infinity)")
    return value


# One decoder for every parse (json.loads would build one per call); it holds no state
# between calls that matters, as json.loads's own shared default decoder shows.
_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_reject_duplicate_keys,
    parse_constant=_reject_constant,
    parse_float=_parse_finite_float,
    parse_int=_parse_safe_int,
)


def _check_representable(root: Mapping[str, Any]) -> None:
    """Raise CredentialError, naming the path, at the first thing JCS cannot represent."""
    if _scan(root) is _Scan.INVALID:
        _locate_unrepresentable(root)


class _Scan(enum.Enum):
    INVALID = "invalid"  # something JCS (or this project's stricter profile) cannot represent
    PLAIN = "plain"  # json.dumps(sort_keys=True) writes exactly the RFC 8785 bytes
    GENERAL = "general"  # representable, but only the RFC 8785 encoder gets it right


def _scan(root: Mapping[str, Any]) -> _Scan:
    """One walk, without building paths (it runs for every submitted credential).

    PLAIN holds when Python's JSON encoder and RFC 8785 agree byte for byte: every object is a
    dict with ASCII keys (so code-point order equals UTF-16 order), and every float prints the
    same way in both, which is when its repr has no exponent and is not integral ("2.5", not
    "1e-07" or "1.0"). Strings need no care: with ensure_ascii off both escape exactly the
    quote, the backslash and the control characters, in the same spellings."""
    plain = True
    stack: list[tuple[int, Any]] = [(0, root)]
    while stack:
        depth, value = stack.pop()
        if depth > MAX_DEPTH:
            return _Scan.INVALID
        kind = type(value)
        # Exact types first: isinstance() against the Mapping ABC is slow, and this runs for
        # every value of every submitted credential.
        if kind is str:
            valid = value.isascii() or _valid_unicode(value)
        elif kind is dict or (kind is not list and isinstance(value, Mapping)):
            members = _push_members(value, depth, stack)
            valid = members is not None
            plain = plain and kind is dict and members is True
        elif kind is list or kind is tuple:
            valid = _push_items(value, depth, stack)
        else:
            valid = _scalar_ok(value)
            plain = plain and valid and _prints_alike(value, kind)
        if not valid:
            return _Scan.INVALID
    return _Scan.PLAIN if plain else _Scan.GENERAL


def _push_members(members: Mapping[Any, Any], depth: int,
                  stack: list[tuple[int, Any]]) -> bool | None:
    """Push an object's values for :func:`_scan`: None if a key is invalid, else whether
    every key is ASCII (which keeps the fast encoder's key order right)."""
    ascii_keys = True
    for key, item in members.items():
        if type(key) is not str:
            return None
        if not key.isascii():
            if not _valid_unicode(key):
                return None
            ascii_keys = False
        stack.append((depth + 1, item))
    return ascii_keys


def _push_items(items: list[Any] | tuple[Any, ...], depth: int,
                stack: list[tuple[int, Any]]) -> bool:
    """Push an array's items for :func:`_scan`; False if one is already known to be invalid.

    Items that need no walk are settled here rather than pushed: ASCII strings (most of a
    credential's values) and empty arrays and objects (a wide hostile document is millions of
    them)."""
    for item in items:
        kind = type(item)
        if kind is str:
            if not item.isascii() and not _valid_unicode(item):
                return False
        elif (kind is list or kind is dict) and not item:
            if depth >= MAX_DEPTH:  # the empty one would sit deeper than allowed
                return False
        else:
            stack.append((depth + 1, item))
    return True


def _prints_alike(value: object, kind: type) -> bool:
    """Whether Python's JSON encoder prints this scalar as RFC 8785 does."""
    if kind is float:
        text = repr(value)
        return "e" not in text and not text.endswith(".0")
    # Subclasses of str or int are left to the reference encoder.
    return value is None or kind is int or kind is bool


def _scalar_ok(value: object) -> bool:
    return _scalar_problem(value) is None


def _scalar_problem(value: object) -> str | None:
    """What JCS (in this project's exact profile) cannot represent about a scalar, or None.
    The one statement of the rules: the fast scan and the error messages both use it."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return None if value.isascii() else _unicode_problem(value)
    if isinstance(value, (int, float)):
        return _number_problem(value)
    return f"{type(value).__name__} is not a JSON value"


def _number_problem(value: float) -> str | None:
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return None
        return (f"integer {value} is outside +-(2**53 - 1), which JCS (RFC 8785) cannot "
                "represent exactly; encode it as a string")
    if not math.isfinite(value):
        return f"{value} is not a JSON number (NaN or infinity)"
    if MAX_SAFE_INTEGER < abs(value) < _EXPONENT_FROM:
        # JCS writes such a double as a bare integer beyond the exact range, which would
        # then be rejected when the canonical form is read back.
        return (f"number {value!r} is written by JCS as the integer "
                f"{rfc8785.dumps(value).decode()}, outside +-(2**53 - 1); encode it as a string")
    return None


def _unicode_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"string holds an unpaired surrogate at position {exc.start}"
    return None


def _valid_unicode(text: str) -> bool:
    return _unicode_problem(text) is None


def _locate_unrepresentable(root: Mapping[str, Any]) -> None:
    stack: list[tuple[Link | None, int, Any]] = [(None, 0, root)]
    while stack:
        link, depth, value = stack.pop()
        if depth > MAX_DEPTH:
            raise CredentialError(f"{spell('credential', link)}: nested deeper than "
                                  f"{MAX_DEPTH} levels")
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise CredentialError(f"{spell('credential', link)}: object key {key!r} "
                                          "is not a string")
                if not key.isascii() and (problem := _unicode_problem(key)) is not None:
                    raise CredentialError(f"{spell('credential', link)} key: {problem}")
                stack.append(((link, key), depth + 1, item))
        elif isinstance(value, (list, tuple)):
            stack.extend(((link, i), depth + 1, item) for i, item in enumerate(value))
        elif (problem := _scalar_problem(value)) is not None:
            raise CredentialError(f"{spell('credential', link)}: {problem}")


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def issuer_id(credential: Mapping[str, Any]) -> str | None:
    """The credential's issuer id: ``issuer`` when it is a string, ``issuer.id`` when it is an
    object holding a string id; None otherwise. The one reading of a credential's issuer: the
    verifier's, the service's signing and its VC-API."""
    issuer = credential.get("issuer")
    if isinstance(issuer, str):
        return issuer
    if isinstance(issuer, Mapping) and isinstance(issuer.get("id"), str):
        return str(issuer["id"])
    return None
