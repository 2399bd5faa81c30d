"""``anchor-service signing-key ...``: the signing keys with which the service signs an issuer's
credentials (W3C Data Integrity proofs).

- ``signing-key create --issuer NAME [--type ed25519|p256] [--suite SUITE]`` makes a key with
  ``cryptography``, writes it encrypted (PKCS #8, the keystore password
  ``MICROCRED_KEYSTORE_PASSWORD``) into the service's keystore folder, registers it on chain
  for the issuer's registry entity (a transaction signed by ``--keystore FILE`` or
  ``MICROCRED_PRIVATE_KEY``: a root administrator or a trusted key of the issuer's
  accreditation body), and records it in the service's database as the issuer's current key.
  From then on the service signs the issuer's credentials with it (a running service picks it
  up at the issuer's next submission). The issuer's DID must be a ``did:web``: standard
  verifiers resolve it to the DID document the service serves.
- ``signing-key show --issuer NAME`` prints the issuer's current key, its file and what the
  registry says of it.

The database, keystore folder, deployment record and chain node are the service's settings
(``MICROCRED_*`` or ``--config FILE``; ``--rpc-url`` overrides the node). The private key is
never printed or logged. Exit codes: 0 done, 1 a transaction reverted or the database cannot
be opened, 2 bad input or setup. Needs the ``service`` and ``chain`` extras.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor_service.cli._common import chain_options, needs_extra, note
from anchor_service.errors import AnchorServiceError, RevertError

if TYPE_CHECKING:
    from anchor_service.settings import CommandSettings, ServiceSettings
    from anchor_service.store import Issuer, Store

__all__ = ["register", "run"]

KEY_TYPES = ("ed25519", "p256")
# The suite a new key signs with unless --suite names another.
_DEFAULT_SUITE_OF = {"ed25519": "eddsa-jcs-2022", "p256": "ecdsa-jcs-2019"}


def register(commands: Any) -> None:
    """Add ``signing-key`` and its subcommands to an argparse subparsers object."""
    group = commands.add_parser(
        "signing-key", help="issuer signing keys (the service signs credentials with them)",
        description="Issuer signing keys: the service signs each credential of an issuer that "
        "has one with a W3C Data Integrity proof.")
    sub = group.add_subparsers(dest="signing_key_command", required=True, metavar="COMMAND")
    create = sub.add_parser(
        "create", parents=[chain_options()],
        help="make an issuer's signing key, register it on chain, and sign with it",
        description="Make an Ed25519 or P-256 signing key for an issuer, keep it encrypted in "
        "the keystore folder, register it on chain for the issuer's entity (signed by "
        "--keystore or MICROCRED_PRIVATE_KEY: the issuer's accreditation body or a root "
        "administrator), and record it as the key the service signs the issuer's credentials "
        "with. Prints the key's public data as JSON.")
    create.add_argument("--issuer", required=True, metavar="NAME",
                        help="the issuer's name in the service")
    create.add_argument("--type", choices=KEY_TYPES, default="ed25519",
                        help="key type (default ed25519)")
    create.add_argument("--suite", default=None,
                        help="the issuer's Data Integrity suite (default eddsa-jcs-2022 for "
                        "Ed25519, ecdsa-jcs-2019 for P-256)")
    create.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings")
    create.set_defaults(handler=run, action="create")
    show = sub.add_parser(
        "show", parents=[chain_options()], help="show an issuer's current signing key",
        description="Show an issuer's current signing key: its public key, suite, file, and "
        "what the registry says of it (when the chain node answers). JSON on stdout.")
    show.add_argument("--issuer", required=True, metavar="NAME",
                      help="the issuer's name in the service")
    show.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings")
    show.set_defaults(handler=run, action="show")


def run(args: argparse.Namespace) -> int:
    """Run ``signing-key create`` or ``show``."""
    with needs_extra(f"signing-key {args.signing_key_command}", "service"):
        from anchor_service.settings import ServiceSettings  # noqa: PLC0415
        from anchor_service.store import Store  # noqa: PLC0415
    with needs_extra(f"signing-key {args.signing_key_command}", "chain"):
        from anchor_service.cli import _chain  # noqa: PLC0415
    settings = ServiceSettings(_env_file=args.config)
    if args.rpc_url is None:
        args.rpc_url = settings.rpc_url
    store = Store(settings.database_url, pool_size=2)  # a StoreError is exit 1 (cli.main)
    try:
        issuer = _issuer(store, args.issuer)
        if args.action == "show":
            return _show(args, settings, store, issuer)
        return _chain.run_action(
            lambda a, command: _create(a, settings, command, store, issuer), args)
    finally:
        store.close()


def _issuer(store: Store, name: str) -> Issuer:
    found = store.issuer_named(name)
    if found is None:
        known = ", ".join(sorted(issuer.name for issuer in store.issuers())) or "none yet"
        raise AnchorServiceError(f"no issuer named {name!r} in {store} (issuers: {known})")
    return found


def _create(args: argparse.Namespace, settings: ServiceSettings, command: CommandSettings,
            store: Store, issuer: Issuer) -> int:
    from anchor_service.chain import add_signing_key  # noqa: PLC0415
    from anchor_service.cli import _chain  # noqa: PLC0415
    from anchor_service.settings import revealed  # noqa: PLC0415
    from anchor_service.signing import SigningKeys, key_type_for_suite  # noqa: PLC0415
    from verifier.contract_types import Entity, read  # noqa: PLC0415

    if not issuer.did.startswith("did:web:"):
        raise AnchorServiceError(
            f"issuer {issuer.name}'s DID {issuer.did!r} is not a did:web: standard verifiers "
            "find an issuer's keys by resolving its did:web (https://<host>/issuers/<name>/"
            "did.json, served by this service); accredit the issuer with a did:web DID")
    suite = args.suite or _DEFAULT_SUITE_OF[args.type]
    needed = key_type_for_suite(suite)  # UnknownSuiteError names the suites
    if needed.label.lower().replace("-", "") != args.type:
        raise AnchorServiceError(f"suite {suite} signs with {needed.label} keys, not "
                                 f"{args.type}: pass --type or another --suite")
    password = revealed(settings.keystore_password)
    if not password:
        raise AnchorServiceError("set MICROCRED_KEYSTORE_PASSWORD (the keystore password): "
                                 "the signing key is kept encrypted with it")
    transactor = _chain.signer(args, command)
    deployment = _chain.read_deployment(settings.deployment, transactor.w3, args.rpc_url)
    registry, _ = deployment.contracts(transactor.w3)
    entity = read(Entity, registry.functions.entity(issuer.entity_id))
    if entity.did != issuer.did:
        raise AnchorServiceError(
            f"the registry's entity {issuer.entity_id} has DID {entity.did!r}, not issuer "
            f"{issuer.name}'s {issuer.did!r}: a key registered there would not be found "
            "under the issuer's DID")
    keys = SigningKeys(settings.keystore_dir, password)
    key, path = keys.create(args.type)
    try:
        key_id = add_signing_key(transactor, registry, entity_id=issuer.entity_id, key=key)
    except RevertError:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # refused by the registry: a key that is not registered is of no use
        raise
    except BaseException:
        # Sent, perhaps, and mined later: the file is kept, or the registry could list a key
        # whose private half is gone.
        note(f"the signing key {key.multibase} (file {path}) may be registered on chain "
             "although this command did not see it: check with `anchor-service registry "
             f"signing-keys {issuer.entity_id}`, then make it current with PUT "
             f"/v1/admin/issuers/{issuer.name}/signing-key, or delete the file")
        raise
    try:
        store.set_signing_key(issuer.id, key.multibase, suite)
    except BaseException:
        note(f"the signing key {key.multibase} (file {path}) is registered on chain (key id "
             f"0x{key_id.hex()}) but not recorded for issuer {issuer.name}: make it current "
             f"with PUT /v1/admin/issuers/{issuer.name}/signing-key once the database answers")
        raise
    print(json.dumps({
        "issuer": issuer.name, "did": issuer.did, "publicKeyMultibase": key.multibase,
        "keyId": "0x" + key_id.hex(), "type": args.type, "suite": suite,
        "verificationMethod": f"{issuer.did}#{key.multibase}", "file": str(path),
        "entityId": issuer.entity_id,
    }, indent=2), flush=True)
    note(f"issuer {issuer.name} now signs its credentials with {key.multibase} ({suite}); "
         "the key is registered on chain for entity "
         f"{issuer.entity_id}")
    return 0


def _show(args: argparse.Namespace, settings: ServiceSettings, store: Store,
          issuer: Issuer) -> int:
    from anchor_service.signing import DEFAULT_SUITE, SigningKeys  # noqa: PLC0415
    from verifier.contract_types import signing_key_id  # noqa: PLC0415
    from verifier.multikey import Multikey  # noqa: PLC0415

    shown: dict[str, Any] = {"issuer": issuer.name, "did": issuer.did,
                             "entityId": issuer.entity_id, "publicKeyMultibase": None}
    if issuer.signing_key is None:
        shown["note"] = "no signing key: the issuer's credentials are accepted unsigned"
        print(json.dumps(shown, indent=2), flush=True)
        return 0
    key = Multikey.from_multibase(issuer.signing_key)
    path = SigningKeys(settings.keystore_dir, "").path(key)
    shown.update({"publicKeyMultibase": key.multibase, "keyId": "0x" + signing_key_id(key).hex(),
                  "type": key.key_type.label, "suite": issuer.signing_suite or DEFAULT_SUITE,
                  "verificationMethod": f"{issuer.did}#{key.multibase}", "file": str(path),
                  "filePresent": path.is_file(), "registry": _on_chain(args, settings, key)})
    print(json.dumps(shown, indent=2), flush=True)
    return 0


def _on_chain(args: argparse.Namespace, settings: ServiceSettings, key: Any) -> dict[str, Any]:
    """What the registry says of the key now, or why it could not be asked."""
    import time  # noqa: PLC0415

    from anchor_service.chain import load_deployment  # noqa: PLC0415
    from verifier.chain import JsonRpcChainReader  # noqa: PLC0415
    from verifier.contract_types import signing_key_id  # noqa: PLC0415
    from verifier.errors import VerifierError  # noqa: PLC0415

    try:
        deployment = load_deployment(settings.deployment)
        reader = JsonRpcChainReader(args.rpc_url, timeout=10, retries=False)
        identifier = signing_key_id(key)
        info = reader.signing_key(deployment.registry, identifier)
        if not info.known:
            return {"registered": False}
        trust = reader.signing_key_trusted_at(deployment.registry, identifier,
                                              int(time.time()))
    except (AnchorServiceError, VerifierError, OSError) as exc:
        return {"error": f"cannot ask the registry: {exc}"}
    return {"registered": True, "entityId": info.entity_id, "validFrom": info.valid_from,
            "validUntil": info.valid_until, "revokedAt": info.revoked_at,
            "trustedNow": trust.trusted, "reason": None if trust.trusted else trust.reason}
