"""The actions behind ``anchor-service deploy`` and ``anchor-service registry ...`` (see
:mod:`anchor_service.admin_cli` for the command line). Needs web3 (the ``chain`` extra)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3Exception

from anchor_service.chain import (
    ChainError,
    Deployment,
    RevertError,
    Transactor,
    accredit,
    deploy,
)
from anchor_service.errors import AnchorServiceError
from anchor_service.keys import load_account
from verifier.registry_terms import KIND_NAMES, SCOPES, STATUS_NAMES, scope_names

__all__ = ["run"]



def run(args: argparse.Namespace) -> int:
    """Run the action named by ``args.action_name``; 1 on a revert, 2 on other errors."""
    action = {
        "deploy": _deploy,
        "accredit": _accredit,
        "add_key": _add_key,
        "revoke_key": _revoke_key,
        "revoke_since": _revoke_since,
        "set_status": _set_status,
        "list_entities": _list,
    }[args.action_name]
    try:
        return action(args)
    except RevertError as exc:
        print(f"anchor-service: {exc}", file=sys.stderr)
        return 1
    except (AnchorServiceError, Web3Exception, ValueError, OSError) as exc:
        print(f"anchor-service: error: {exc}", file=sys.stderr)
        return 2


def _w3(args: argparse.Namespace) -> Web3:
    w3 = Web3(Web3.HTTPProvider(args.rpc_url, request_kwargs={"timeout": 30}))
    if not w3.is_connected():
        raise ChainError(f"no JSON-RPC node answers at {args.rpc_url}")
    return w3


def _transactor(args: argparse.Namespace) -> Transactor:
    return Transactor(_w3(args), load_account(args.keystore))


def _deployment(args: argparse.Namespace, w3: Web3) -> Deployment:
    try:
        deployment = Deployment.from_json(args.deployment.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ChainError(f"cannot read deployment record {args.deployment}: {exc}") from None
    if deployment.chain_id != w3.eth.chain_id:
        raise ChainError(
            f"{args.deployment} is for chain {deployment.chain_id}, "
            f"but {args.rpc_url} is chain {w3.eth.chain_id}"
        )
    return deployment


def _deploy(args: argparse.Namespace) -> int:
    tx = _transactor(args)
    deployment = deploy(tx, admin_transfer_delay=args.admin_delay)
    out = args.out or Path("deployments") / f"chain-{deployment.chain_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(deployment.to_json(), encoding="utf-8")
    print(f"IssuerRegistry   {deployment.registry}")
    print(f"CredentialAnchor {deployment.anchor}")
    print(f"record written to {out}")
    return 0


def _scope(text: str) -> int:
    bits = 0
    for name in filter(None, (part.strip() for part in text.split(","))):
        if name not in SCOPES:
            raise ValueError(f"unknown scope {name!r}; use {', '.join(SCOPES)}")
        bits |= SCOPES[name]
    return bits


def _registry_transactor(args: argparse.Namespace) -> tuple[Transactor, Contract]:
    tx = _transactor(args)
    registry, _ = _deployment(args, tx.w3).contracts(tx.w3)
    return tx, registry


def _accredit(args: argparse.Namespace) -> int:
    tx, registry = _registry_transactor(args)
    entity_id = accredit(tx, registry, parent=args.parent, kind=args.kind, did=args.did,
                         scope=_scope(args.scope), metadata_uri=args.metadata_uri,
                         metadata_hash=bytes.fromhex(args.metadata_hash.removeprefix("0x")))
    print(f"accredited {KIND_NAMES[args.kind]} {entity_id} ({args.did})")
    return 0


def _add_key(args: argparse.Namespace) -> int:
    tx, registry = _registry_transactor(args)
    tx.transact(registry.functions.addKey(args.entity, Web3.to_checksum_address(args.key),
                                          args.valid_from, args.valid_until))
    print(f"key {args.key} added to entity {args.entity}")
    return 0


def _revoke_key(args: argparse.Namespace) -> int:
    tx, registry = _registry_transactor(args)
    tx.transact(registry.functions.revokeKey(Web3.to_checksum_address(args.key),
                                             args.effective_from))
    print(f"key {args.key} revoked")
    return 0


def _revoke_since(args: argparse.Namespace) -> int:
    tx, registry = _registry_transactor(args)
    tx.transact(registry.functions.revokeSince(args.entity, args.since))
    effective = int(registry.functions.entity(args.entity).call()[12])  # revokedFrom
    when = datetime.fromtimestamp(effective, UTC).isoformat().replace("+00:00", "Z")
    print(f"entity {args.entity} is revoked, with effect from {when} ({effective})")
    return 0


def _set_status(args: argparse.Namespace) -> int:
    tx, registry = _registry_transactor(args)
    tx.transact(registry.functions.setStatus(args.entity, args.status))
    print(f"entity {args.entity} is now {STATUS_NAMES[args.status]}")
    return 0


def _list(args: argparse.Namespace) -> int:
    w3 = _w3(args)
    registry, _ = _deployment(args, w3).contracts(w3)
    entities = []
    for entity_id in range(1, registry.functions.entityCount().call() + 1):
        e = registry.functions.entity(entity_id).call()
        keys = []
        for key in registry.functions.entityKeys(entity_id).call():
            info = registry.functions.keyInfo(key).call()
            keys.append(
                {"key": key, "validFrom": info[3], "validUntil": info[4], "revokedAt": info[5]}
            )
        entities.append(
            {
                "id": e[0],
                "parentId": e[1],
                "kind": KIND_NAMES.get(e[2], "?"),
                "status": STATUS_NAMES.get(e[3], "?"),
                "scope": scope_names(e[4]),
                "did": e[9],
                "metadataURI": e[10],
                "keys": keys,
            }
        )
    if args.json:
        print(json.dumps(entities, indent=2))
    else:
        for e in entities:
            print(
                f"{e['id']:>4} {e['kind']:<6} {e['status']:<9} parent {e['parentId']:<4} "
                f"{e['did']}  scope={','.join(e['scope'])}  keys={len(e['keys'])}"
            )
    return 0
