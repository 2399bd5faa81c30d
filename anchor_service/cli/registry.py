"""``anchor-service registry ...``: administer the issuer registry against any JSON-RPC URL:
accredit bodies and issuers, manage their anchoring keys (account addresses), their signing
keys (Ed25519 and P-256 Multikeys that sign credentials) and their status, list them; and
entities' recognitions of each other (:mod:`anchor_service.cli.recognitions`).

Keys come from ``--keystore FILE`` (password from MICROCRED_KEYSTORE_PASSWORD or a prompt) or
from MICROCRED_PRIVATE_KEY. A revert is reported with the contract's error name, exit code 1.
Times (``--valid-from``, ``--valid-until``, ``--effective-from``, ``--since``) are unix seconds
or ISO 8601 date-times with a time zone (``2026-03-01T09:00:00Z``); a time without a zone, or
one that cannot be read, exits 2 with a message. A signing key is given as its
``publicKeyMultibase`` (``z...``) or, once registered, as its key id (``0x`` and 64 hex digits,
keccak256 of the Multikey bytes). Needs the ``chain`` extra.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor_service.cli._common import chain_options, needs_extra
from anchor_service.cli.recognitions import register_recognition_commands
from anchor_service.errors import ChainError
from verifier.contract_types import (
    SCOPES,
    Entity,
    KeyInfo,
    Kind,
    Scope,
    SigningKeyInfo,
    Status,
    Trust,
    check_status_list,
    decode_all,
    encode_status_indices,
    read,
    scope_names,
    scope_of,
)
from verifier.errors import MultikeyError, VerifierError
from verifier.multikey import KeyType, Multikey, encode_multibase
from verifier.times import iso_seconds

if TYPE_CHECKING:
    from web3.contract import Contract

    from anchor_service.chain import Transactor
    from anchor_service.settings import CommandSettings

__all__ = ["chain_time", "register", "run", "signing_key_argument", "signing_key_reference"]

_UINT40_MAX = 2**40 - 1  # the registry stores times as uint40
_HEX_ID_LENGTH = 2 + 64  # "0x" and a 32-byte key id


def chain_time(text: str) -> int:
    """A time argument as unix seconds: digits as they are, or an ISO 8601 date-time with a
    time zone (``Z`` or an offset). argparse turns the error into exit 2 with the message."""
    value = text.strip()
    if value.isdigit():
        seconds = int(value)
    else:
        from verifier.verify import parse_datetime  # noqa: PLC0415 - only when a date is given

        try:
            seconds = int(parse_datetime(value).timestamp())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{exc}; give unix seconds or an ISO 8601 time with a zone, such as "
                "2026-03-01T09:00:00Z") from None
    if not 0 <= seconds <= _UINT40_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the registry's time range "
                                         "(1970 to the year 36812)")
    return seconds


def signing_key_argument(text: str) -> Multikey:
    """A ``--public-key`` argument: an Ed25519 or P-256 ``publicKeyMultibase`` (``z...``),
    checked to be a valid key. argparse turns the error into exit 2 with the message."""
    try:
        key = Multikey.from_multibase(text.strip())
    except VerifierError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if key.key_type not in (KeyType.ED25519, KeyType.P256):
        raise argparse.ArgumentTypeError(f"the registry takes Ed25519 and P-256 signing keys, "
                                         f"not {key.key_type.label}")
    return key


def signing_key_reference(text: str) -> bytes:
    """A signing key named on the command line, as its key id: ``0x`` and 64 hex digits (the
    id itself), or a ``publicKeyMultibase`` (``z...``), whose id is computed."""
    value = text.strip()
    if value.startswith(("0x", "0X")):
        digits = value[2:]
        if len(value) != _HEX_ID_LENGTH or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise argparse.ArgumentTypeError(
                f"{text!r:.80} is not a signing key id (0x and 64 hex digits) or a "
                "publicKeyMultibase (z...)")
        return bytes.fromhex(digits)
    from verifier.contract_types import signing_key_id  # noqa: PLC0415 - needs keccak

    return signing_key_id(signing_key_argument(value))


def register(commands: Any) -> None:
    """Add ``registry`` and its subcommands to an argparse subparsers object."""
    reg = commands.add_parser(
        "registry", help="administer the issuer registry",
        description="Administer the issuer registry: accredit bodies and issuers, manage "
        "their keys and status. Times are unix seconds or ISO 8601 with a time zone.")
    sub = reg.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")
    with_deployment = argparse.ArgumentParser(add_help=False, parents=[chain_options()])
    with_deployment.add_argument(
        "--deployment", type=Path, required=True, help="deployment record written by deploy"
    )

    accredit_help = {
        "accredit-body": "accredit an accreditation body (top level, or under --parent)",
        "add-issuer": "accredit a trusted issuer under an accreditation body",
    }
    for name, kind in (("accredit-body", Kind.ACCREDITATION_BODY),
                       ("add-issuer", Kind.TRUSTED_ISSUER)):
        cmd = _command(sub, name, accredit_help[name], with_deployment)
        cmd.add_argument(
            "--parent",
            type=int,
            default=0 if kind is Kind.ACCREDITATION_BODY else None,
            required=kind is Kind.TRUSTED_ISSUER,
            help="accrediting body id (0: root)",
        )
        cmd.add_argument("--did", required=True, help="the entity's DID, unique in the registry")
        cmd.add_argument("--scope", required=True, help=f"comma list of {', '.join(SCOPES)}")
        cmd.add_argument("--metadata-uri", default="", help="where the entity's metadata is")
        cmd.add_argument("--metadata-hash", default="0x" + "00" * 32,
                         help="32-byte hash of that metadata, 0x-hex")
        cmd.set_defaults(handler=run, action=_accredit, kind=kind)

    cmd = _command(sub, "add-key", "add an anchoring key (an account address) to a body or "
                   "issuer (it belongs to that entity forever)", with_deployment)
    cmd.add_argument("--entity", type=int, required=True, help="the entity's id")
    cmd.add_argument("--key", required=True, help="address of the new anchoring key")
    cmd.add_argument("--valid-from", type=chain_time, default=0, metavar="TIME",
                     help="when the key becomes valid (0 or past: now)")
    cmd.add_argument("--valid-until", type=chain_time, default=0, metavar="TIME",
                     help="when the key expires (0: never)")
    cmd.set_defaults(handler=run, action=_add_key)

    cmd = _command(sub, "revoke-key", "revoke an anchoring key, back-dated to a compromise if "
                   "need be", with_deployment)
    cmd.add_argument("--key", required=True, help="address of the anchoring key")
    cmd.add_argument("--effective-from", type=chain_time, default=0, metavar="TIME",
                     help="time of the compromise: anchors with the key from then on stop "
                     "being trusted (0: from the next second)")
    cmd.set_defaults(handler=run, action=_revoke_key)

    _register_signing_key_commands(sub, with_deployment)
    register_recognition_commands(sub, with_deployment)

    cmd = _command(sub, "revoke-since", "revoke a body or issuer for good, with effect from a "
                   "past time (back-dated; final)", with_deployment)
    cmd.add_argument("--entity", type=int, required=True, help="the entity's id")
    cmd.add_argument("--since", type=chain_time, required=True, metavar="TIME",
                     help="from when it counts as revoked, not in the future: everything it "
                     "and everything below it anchored from then on stops being trusted; "
                     "earlier anchors stay valid (0: since its accreditation)")
    cmd.set_defaults(handler=run, action=_revoke_since)

    status_help = {
        "suspend": "suspend a body or issuer (it and everything below it cannot act; "
                   "reversible)",
        "reactivate": "reactivate a suspended body or issuer",
        "revoke": "revoke a body or issuer from now on (final)",
    }
    for name, status in (("suspend", Status.SUSPENDED), ("reactivate", Status.ACTIVE),
                         ("revoke", Status.REVOKED)):
        cmd = _command(sub, name, status_help[name], with_deployment)
        cmd.add_argument("--entity", type=int, required=True, help="the entity's id")
        cmd.set_defaults(handler=run, action=_set_status, status=status)

    cmd = _command(sub, "lift-revocations", "lift revocations of credentials (root "
                   "administrators only, such as revocations made with a compromised key): "
                   "by --entity, --list and --index, or by --credential id through the "
                   "service's database", with_deployment)
    cmd.add_argument("--entity", type=int, help="the issuer entity whose status list it is")
    cmd.add_argument("--list", type=int, dest="status_list", metavar="N",
                     help="the status list number")
    cmd.add_argument("--index", type=int, nargs="+", default=[], metavar="I",
                     help="status list indices")
    cmd.add_argument("--credential", nargs="+", default=[], metavar="ID",
                     help="credential ids in the service's database (MICROCRED_DATABASE_URL "
                     "or --config), instead of --entity, --list and --index")
    cmd.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings "
                     "(the service's database, for --credential)")
    cmd.add_argument("--reason", type=int, default=0, help="reason code (0 to 255)")
    cmd.set_defaults(handler=run, action=_lift_revocations)

    cmd = _command(sub, "list", "list entities and their keys", with_deployment)
    cmd.add_argument("--json", action="store_true", help="as JSON")
    cmd.set_defaults(handler=run, action=_list)


def _register_signing_key_commands(sub: Any, with_deployment: argparse.ArgumentParser) -> None:
    """The signing-key subcommands: add, revoke, shorten, list."""
    cmd = _command(sub, "add-signing-key", "add a signing key (an Ed25519 or P-256 Multikey "
                   "that signs credentials) to a body or issuer (it belongs to that entity "
                   "forever)", with_deployment)
    cmd.add_argument("--entity", type=int, required=True, help="the entity's id")
    cmd.add_argument("--public-key", type=signing_key_argument, required=True, metavar="z...",
                     help="the key's publicKeyMultibase (Ed25519 or P-256)")
    cmd.add_argument("--valid-from", type=chain_time, default=0, metavar="TIME",
                     help="when the key becomes valid (0 or past: now)")
    cmd.add_argument("--valid-until", type=chain_time, default=0, metavar="TIME",
                     help="when the key expires (0: never)")
    cmd.set_defaults(handler=run, action=_add_signing_key)

    cmd = _command(sub, "revoke-signing-key", "revoke a signing key, back-dated to a "
                   "compromise if need be", with_deployment)
    cmd.add_argument("key", type=signing_key_reference, metavar="KEY",
                     help="the key id (0x and 64 hex digits) or the publicKeyMultibase (z...)")
    cmd.add_argument("--effective-from", type=chain_time, default=0, metavar="TIME",
                     help="time of the compromise: credentials anchored from then on no longer "
                     "count as signed by a trusted key (0: from the next second)")
    cmd.set_defaults(handler=run, action=_revoke_signing_key)

    cmd = _command(sub, "shorten-signing-key", "move a signing key's expiry earlier (key "
                   "rotation); it stays listed in the DID document", with_deployment)
    cmd.add_argument("key", type=signing_key_reference, metavar="KEY",
                     help="the key id (0x and 64 hex digits) or the publicKeyMultibase (z...)")
    cmd.add_argument("--valid-until", type=chain_time, required=True, metavar="TIME",
                     help="the new expiry: earlier than the current one, in the future")
    cmd.set_defaults(handler=run, action=_shorten_signing_key)

    cmd = _command(sub, "signing-keys", "list the signing keys of a body or issuer",
                   with_deployment)
    cmd.add_argument("entity", type=int, metavar="ENTITY", help="the entity's id")
    cmd.add_argument("--json", action="store_true", help="as JSON")
    cmd.set_defaults(handler=run, action=_signing_keys)


def _command(sub: Any, name: str, summary: str, parent: argparse.ArgumentParser) -> Any:
    """A registry subcommand with its one-line help (in ``registry --help``) and the same
    text as the description of its own ``--help``."""
    return sub.add_parser(name, parents=[parent], help=summary,
                          description=summary[0].upper() + summary[1:] + ".")


def run(args: argparse.Namespace) -> int:
    """Run the registry subcommand; 1 on a revert, 2 on bad input or setup."""
    with needs_extra(f"registry {args.registry_command}", "chain"):
        from anchor_service.cli import _chain  # noqa: PLC0415
    action: _chain.Action = args.action
    return _chain.run_action(action, args)


def _scope(text: str) -> Scope:
    return scope_of(filter(None, (part.strip() for part in text.split(","))))


def _registry_transactor(args: argparse.Namespace,
                         settings: CommandSettings) -> tuple[Transactor, Contract]:
    from anchor_service.cli._chain import read_deployment, signer  # noqa: PLC0415

    tx = signer(args, settings)
    registry, _ = read_deployment(args.deployment, tx.w3, args.rpc_url).contracts(tx.w3)
    return tx, registry


def _accredit(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.chain import accredit  # noqa: PLC0415 - loaded with the chain extra

    tx, registry = _registry_transactor(args, settings)
    entity_id = accredit(tx, registry, parent=args.parent, kind=args.kind, did=args.did,
                         scope=_scope(args.scope), metadata_uri=args.metadata_uri,
                         metadata_hash=bytes.fromhex(args.metadata_hash.removeprefix("0x")))
    print(f"accredited {args.kind.label} {entity_id} ({args.did})")
    return 0


def _add_key(args: argparse.Namespace, settings: CommandSettings) -> int:
    tx, registry = _registry_transactor(args, settings)
    tx.transact(registry.functions.addKey(args.entity, tx.w3.to_checksum_address(args.key),
                                          args.valid_from, args.valid_until))
    print(f"key {args.key} added to entity {args.entity}")
    return 0


def _revoke_key(args: argparse.Namespace, settings: CommandSettings) -> int:
    tx, registry = _registry_transactor(args, settings)
    tx.transact(registry.functions.revokeKey(tx.w3.to_checksum_address(args.key),
                                             args.effective_from))
    print(f"key {args.key} revoked")
    return 0



def _add_signing_key(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.chain import add_signing_key  # noqa: PLC0415 - the chain extra

    tx, registry = _registry_transactor(args, settings)
    key: Multikey = args.public_key
    key_id = add_signing_key(tx, registry, entity_id=args.entity, key=key,
                             valid_from=args.valid_from, valid_until=args.valid_until)
    print(f"signing key 0x{key_id.hex()} ({key.key_type.label} {key.multibase}) added to "
          f"entity {args.entity}")
    return 0


def _revoke_signing_key(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.chain import revoke_signing_key  # noqa: PLC0415 - the chain extra

    tx, registry = _registry_transactor(args, settings)
    effective = revoke_signing_key(tx, registry, key_id=args.key,
                                   effective_from=args.effective_from)
    print(f"signing key 0x{args.key.hex()} is revoked, with effect from {iso_seconds(effective)} "
          f"({effective})")
    return 0


def _shorten_signing_key(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.chain import shorten_signing_key_expiry  # noqa: PLC0415

    tx, registry = _registry_transactor(args, settings)
    shorten_signing_key_expiry(tx, registry, key_id=args.key, valid_until=args.valid_until)
    print(f"signing key 0x{args.key.hex()} now expires at {iso_seconds(args.valid_until)} "
          f"({args.valid_until})")
    return 0


def _signing_keys(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.cli._chain import connect, read_deployment  # noqa: PLC0415

    del settings  # reading needs no key
    w3 = connect(args)
    registry, _ = read_deployment(args.deployment, w3, args.rpc_url).contracts(w3)
    functions = registry.functions
    count = int(functions.entityCount().call())
    if not 1 <= args.entity <= count:
        raise ChainError(f"no entity {args.entity} in the registry (ids run from 1 to {count})")
    now = int(w3.eth.get_block("latest")["timestamp"])
    keys = decode_all(SigningKeyInfo, functions.entitySigningKeyInfos(args.entity).call())
    listed: list[dict[str, Any]] = []
    for info in keys:
        trust = read(Trust, functions.signingKeyTrustedAt(info.key_id, now))
        try:
            label = info.multikey().key_type.label
        except MultikeyError:  # the registry checks the form only, not that it is a point
            label = "invalid"
        listed.append({
            "keyId": "0x" + info.key_id.hex(), "type": label,
            "publicKeyMultibase": encode_multibase(info.public_key), "index": info.index,
            "validFrom": info.valid_from, "validUntil": info.valid_until,
            "revokedAt": info.revoked_at, "trustedNow": trust.trusted,
            "state": trust.reason})
    if args.json:
        print(json.dumps({"entity": args.entity, "signingKeys": listed}, indent=2))
        return 0
    if not listed:
        print(f"entity {args.entity} has no signing keys")
    for key in listed:
        revoked = f"  revoked from {iso_seconds(key['revokedAt'])}" if key["revokedAt"] else ""
        expiry = ("" if key["validUntil"] == _UINT40_MAX
                  else f"  until {iso_seconds(int(key['validUntil']))}")
        print(f"{key['keyId']} {key['type']:<7} {key['publicKeyMultibase']}  "
              f"{key['state']}{expiry}{revoked}")
    return 0


def _revoke_since(args: argparse.Namespace, settings: CommandSettings) -> int:
    tx, registry = _registry_transactor(args, settings)
    tx.transact(registry.functions.revokeSince(args.entity, args.since))
    effective = read(Entity, registry.functions.entity(args.entity)).revoked_from
    when = datetime.fromtimestamp(effective, UTC).isoformat().replace("+00:00", "Z")
    print(f"entity {args.entity} is revoked, with effect from {when} ({effective})")
    return 0


def _set_status(args: argparse.Namespace, settings: CommandSettings) -> int:
    tx, registry = _registry_transactor(args, settings)
    tx.transact(registry.functions.setStatus(args.entity, args.status))
    print(f"entity {args.entity} is now {args.status.label}")
    return 0


def _lift_revocations(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.cli._chain import read_deployment, signer  # noqa: PLC0415
    from anchor_service.status import StatusAction, StatusChanges, plan  # noqa: PLC0415

    targets = _lift_targets(args)
    tx = signer(args, settings)
    _, anchor = read_deployment(args.deployment, tx.w3, args.rpc_url).contracts(tx.w3)
    for entity_id, positions in sorted(targets.items()):
        hashes = StatusChanges(tx.w3, anchor, entity_id).change(
            StatusAction.LIFT, tx.account, positions, args.reason)
        # One transaction per list and per chunk of distinct indices, in plan order.
        for (status_list, indices), tx_hash in zip(plan(positions), hashes, strict=True):
            print(f"entity {entity_id}: lifted {len(indices)} revocation(s) of list "
                  f"{status_list} in 0x{tx_hash.hex()}")
    return 0


def _lift_targets(args: argparse.Namespace) -> dict[int, list[Any]]:
    """The positions to lift, by entity: from --entity/--list/--index, or from the service's
    database for --credential ids."""
    from anchor_service.store import StatusPosition  # noqa: PLC0415

    if not 0 <= args.reason <= 255:
        raise ValueError("--reason must be 0 to 255")
    by_position = args.entity is not None or args.status_list is not None or args.index
    if bool(args.credential) == bool(by_position):
        raise ValueError("give either --credential ID... or --entity, --list and --index")
    if args.credential:
        return _credential_positions(args.credential, args.config)
    if args.entity is None or args.status_list is None or not args.index:
        raise ValueError("--entity, --list and --index go together")
    check_status_list(args.status_list)  # ValueError: exit 2 with the message
    encode_status_indices(args.index)
    return {args.entity: [StatusPosition(args.status_list, i) for i in args.index]}


def _credential_positions(ids: list[str], config: Path | None) -> dict[int, list[Any]]:
    from anchor_service.settings import ServiceSettings  # noqa: PLC0415
    from anchor_service.store import Store  # noqa: PLC0415

    store = Store(ServiceSettings(_env_file=config).database_url, pool_size=2)
    try:
        found = store.credentials(ids)
        missing = [public_id for public_id in ids if public_id not in found]
        if missing:
            raise ValueError(f"no credential {', '.join(missing[:5])} in {store}")
        targets: dict[int, list[Any]] = {}
        for public_id in ids:
            record = found[public_id]
            if record.status is None:
                raise ValueError(f"credential {public_id} was anchored on a CredentialAnchor "
                                 "1.x deployment: it has no status list position")
            entity_id = store.issuer(record.issuer_id).entity_id
            targets.setdefault(entity_id, []).append(record.status)
        return targets
    finally:
        store.close()


def _list(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.cli._chain import connect, read_deployment  # noqa: PLC0415

    del settings  # reading needs no key
    w3 = connect(args)
    registry, _ = read_deployment(args.deployment, w3, args.rpc_url).contracts(w3)
    listed: list[tuple[Entity, list[dict[str, Any]]]] = []
    for entity_id in range(1, registry.functions.entityCount().call() + 1):
        entity = read(Entity, registry.functions.entity(entity_id))
        keys = []
        for key in registry.functions.entityKeys(entity_id).call():
            info = read(KeyInfo, registry.functions.keyInfo(key))
            keys.append({"key": key, "validFrom": info.valid_from,
                         "validUntil": info.valid_until, "revokedAt": info.revoked_at})
        listed.append((entity, keys))
    if args.json:
        print(json.dumps([{"id": e.id, "parentId": e.parent_id, "kind": e.kind.label,
                           "status": e.status.label, "scope": scope_names(e.scope),
                           "did": e.did, "metadataURI": e.metadata_uri, "keys": keys}
                          for e, keys in listed], indent=2))
    else:
        for e, keys in listed:
            print(f"{e.id:>4} {e.kind.label:<6} {e.status.label:<9} parent {e.parent_id:<4} "
                  f"{e.did}  scope={','.join(scope_names(e.scope))}  keys={len(keys)}")
    return 0
