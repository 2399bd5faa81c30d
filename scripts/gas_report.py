"""Gas used by every state-changing operation of the contracts, against the targets, and
the gas of the status reads (one word, a whole list in one eth_call) and of the recognition
query (recognisedAt, up to its worst case: the deepest recogniser and subject chains, every
pair holding the most recognitions, none covering). Prints a table; asserts nothing (the
contract tests assert the targets); exits 1 when a target is missed.

    python scripts/gas_report.py              # on the in-process chain
    python scripts/gas_report.py --anvil      # on a real anvil node
    python scripts/gas_report.py --signing-key-storage
        # also: addSigningKey with the public key stored as it is (packed into two slots),
        # as a plain `bytes` value, or not at all (only its hash, the key id): two variants
        # of IssuerRegistry.sol compiled on the fly and deployed beside it
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchor_service.chain import REGISTRY, Transactor, sign_anchor
from anchor_service.chain import accredit as register_entity
from localchain import AnvilChain, InProcessChain, LocalChain
from testkit.world import World, build_world
from verifier.contract_types import (
    ALL_SCOPES,
    STATUS_LIST_WORDS,
    Kind,
    Scope,
    Status,
    encode_status_indices,
)
from verifier.contracts_abi import Artifact, load_artifact

ANCHOR_TARGET = 60_000
FIRST_INDEX_TARGET = 70_000
EXTRA_INDEX_TARGET = 1_000
BULK_TX_TARGET = 3
#: Indices per status transaction, as the service chunks a bulk change.
BULK_CHUNK = 10_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anvil", action="store_true", help="measure on anvil")
    parser.add_argument("--signing-key-storage", action="store_true",
                        help="also compare ways of storing a signing key's public key")
    args = parser.parse_args(argv)
    chain: LocalChain = AnvilChain.start() if args.anvil else InProcessChain.start()
    try:
        status = _report(chain, "anvil" if args.anvil else "in-process (eth-tester + py-evm)")
        if args.signing_key_storage:
            _storage_report(chain)
        return status
    finally:
        chain.close()


def _report(chain: LocalChain, label: str) -> int:
    w = build_world(chain)
    rows: list[tuple[str, int, str]] = []

    def gas(name: str, who: object, call: object, target: str = "") -> int:
        receipt = w.tx(who).transact(call)  # type: ignore[arg-type]
        used = int(receipt["gasUsed"])
        rows.append((name, used, target))
        return used

    reg, anc = w.registry.functions, w.anchor.functions
    gas(
        "registry.accredit (issuer under body)",
        w.body,
        reg.accredit(w.body_id, Kind.TRUSTED_ISSUER, "did:web:gas.example", Scope.FORMAL_DEGREE,
                     "https://x", b"\1" * 32),
    )
    new_id = int(reg.entityCount().call())
    spare = chain.accounts[9]
    gas("registry.addKey", w.body, reg.addKey(new_id, spare.address, 0, 0))
    gas("registry.shortenKeyExpiry", w.body, reg.shortenKeyExpiry(spare.address, w.now() + 10**6))
    gas("registry.revokeKey (back-dated)", w.body, reg.revokeKey(spare.address, w.now() - 60))
    ed25519_key = b"\xed\x01" + os.urandom(32)  # the registry checks the form, not the point
    gas("registry.addSigningKey (Ed25519, entity's first)", w.body,
        reg.addSigningKey(new_id, ed25519_key, 0, 0))
    gas("registry.addSigningKey (P-256, entity's second)", w.body,
        reg.addSigningKey(new_id, b"\x80\x24\x02" + os.urandom(32), 0, 0))
    ed25519_id = reg.entitySigningKeys(new_id).call()[0]
    gas("registry.shortenSigningKeyExpiry", w.body,
        reg.shortenSigningKeyExpiry(ed25519_id, w.now() + 10**6))
    gas("registry.revokeSigningKey (back-dated)", w.body,
        reg.revokeSigningKey(ed25519_id, w.now() - 60))
    gas("registry.setStatus (suspend)", w.body, reg.setStatus(new_id, Status.SUSPENDED))
    gas(
        "registry.updateMetadata", w.issuer, reg.updateMetadata(w.issuer_id, "ipfs://m", b"\2" * 32)
    )

    used = gas(
        "anchor.anchor", w.issuer, anc.anchor(os.urandom(32), 1_000_000), f"<= {ANCHOR_TARGET:,}"
    )
    root = os.urandom(32)
    nonce = anc.nonces(w.issuer.address).call()
    deadline = w.now() + 3600
    signature = sign_anchor(
        w.anchor, w.issuer, root, tree_size=1000, nonce=nonce, deadline=deadline
    )
    gas(
        "anchor.anchorWithSignature (relayed)",
        w.stranger,
        anc.anchorWithSignature(root, 1000, w.issuer.address, nonce, deadline, signature),
    )

    status = _status_rows(w, gas)
    recognition, recognition_ok = _recognition_rows(w, gas)

    print(f"gas report on {label}, contracts {w.registry.functions.version().call()}")
    print(f"{'operation':<58} {'gas':>11}  target")
    for name, value, target in rows:
        print(f"{name:<58} {value:>11,}  {target}")
    for name, figure, target in status.derived + recognition:
        print(f"{name:<58} {figure:>11}  {target}")
    ok = (used <= ANCHOR_TARGET and status.first <= FIRST_INDEX_TARGET
          and max(status.extra) <= EXTRA_INDEX_TARGET and status.bulk_transactions <= BULK_TX_TARGET
          and status.whole_list < status.call_cap and recognition_ok)
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


@dataclass
class _StatusFigures:
    """The status functions' figures beyond one transaction's gas."""

    first: int
    extra: list[float]
    bulk_transactions: int
    whole_list: int
    call_cap: int
    derived: list[tuple[str, str, str]]


def _status_rows(w: World, gas: Callable[..., int]) -> _StatusFigures:
    """Status changes of the issuer's lists, each call on a list of its own so that every
    word it writes is fresh (zero to non-zero, the dearest case)."""
    anc = w.anchor.functions
    lists = iter(range(1_000))

    def change(name: str, function: str, indices: Sequence[int], who: object = None,
               target: str = "") -> int:
        status_list = next(lists)
        call = getattr(anc, function)(w.issuer_id, status_list, encode_status_indices(indices), 1)
        if function in {"reinstate", "liftRevocations"}:  # clear bits that are set
            setter = "suspend" if function == "reinstate" else "revoke"
            w.tx(w.issuer).transact(getattr(anc, setter)(
                w.issuer_id, status_list, encode_status_indices(indices), 1))
        return gas(name, w.issuer if who is None else who, call, target)

    first = change("anchor.revoke (first index of a call)", "revoke", [0],
                   target=f"<= {FIRST_INDEX_TARGET:,}")
    change("anchor.suspend (first index of a call)", "suspend", [0])
    change("anchor.reinstate (first index, clearing a set bit)", "reinstate", [0])
    change("anchor.liftRevocations (first index, clearing a set bit)", "liftRevocations", [0],
           w.admin)
    within = change("anchor.revoke (100 adjacent, one word)", "revoke", range(100))
    spanning = change("anchor.revoke (100 adjacent, words 0 and 1)", "revoke", range(200, 300))
    change("anchor.revoke (100 scattered, one a word)", "revoke",
           [i * 256 + 17 for i in range(100)])
    change("anchor.suspend (100 adjacent, one word)", "suspend", range(100))

    # Revoking 10,000 credentials of one issuer: in chunks of BULK_CHUNK indices (the
    # service's), ascending, one transaction each.
    indices = list(range(10_000))
    chunks = [indices[at:at + BULK_CHUNK] for at in range(0, len(indices), BULK_CHUNK)]
    bulk = [change(f"anchor.revoke ({len(chunk):,} adjacent, one transaction)", "revoke", chunk)
            for chunk in chunks]

    extra = [(within - first) / 99, (spanning - first) / 99,
             (sum(bulk) - len(bulk) * first) / (len(indices) - len(bulk))]
    listed = next(lists)
    w.tx(w.issuer).transact(anc.revoke(w.issuer_id, listed, encode_status_indices([5]), 1))
    whole = int(anc.statusWords(w.issuer_id, listed, 0, STATUS_LIST_WORDS).estimate_gas())
    words = anc.statusWords(w.issuer_id, listed, 0, STATUS_LIST_WORDS).call()
    if [len(part) for part in words] != [STATUS_LIST_WORDS] * 2:
        raise SystemExit("gas_report: statusWords did not answer a whole list")
    cap = int(w.chain.w3.eth.get_block("latest")["gasLimit"])
    one_word = int(anc.statusWords(w.issuer_id, listed, 0, 1).estimate_gas())
    target = f"<= {EXTRA_INDEX_TARGET:,}"
    return _StatusFigures(first, extra, len(bulk), whole, cap, [
        ("each extra adjacent index (100 in one word)", f"{extra[0]:,.0f}", target),
        ("each extra adjacent index (100 over two words)", f"{extra[1]:,.0f}", target),
        ("each extra adjacent index (10,000 over 40 words)", f"{extra[2]:,.0f}", target),
        ("revoke 10,000 indices of one issuer: transactions", f"{len(bulk):,}",
         f"<= {BULK_TX_TARGET}"),
        ("revoke 10,000 indices of one issuer: total gas", f"{sum(bulk):,}", ""),
        ("statusWords, one word (eth_call estimate)", f"{one_word:,}", ""),
        ("statusWords, whole list: 512 words x 2 (eth_call estimate)", f"{whole:,}",
         f"< the node's call cap ({cap:,}, its block gas limit)"),
    ])


def _funded(w: World) -> LocalAccount:
    """A fresh account with 1 ether from the root administrator (the chains have only ten
    development accounts)."""
    account: LocalAccount = Account.create()
    w3 = w.chain.w3
    signed = w.admin.sign_transaction({
        "to": account.address, "value": 10**18, "gas": 21_000, "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(w.admin.address, "pending"),
        "chainId": w3.eth.chain_id})
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    return account


def _chain_of_entities(w: World, name: str) -> list[tuple[int, LocalAccount]]:
    """The deepest chain the registry allows (MAX_DEPTH entities: three bodies, each under the
    one before, and an issuer at the bottom), each with a key of its own: (id, key), top
    first."""
    depth = int(w.registry.functions.MAX_DEPTH().call())
    chain: list[tuple[int, LocalAccount]] = []
    for level in range(depth):
        parent, by = (0, w.admin) if not chain else chain[-1]
        kind = Kind.TRUSTED_ISSUER if level == depth - 1 else Kind.ACCREDITATION_BODY
        entity_id = register_entity(Transactor(w.chain.w3, by), w.registry, parent=parent,
                                    kind=kind, did=f"did:web:{name}-{level}.example",
                                    scope=ALL_SCOPES, metadata_uri="",
                                    metadata_hash=b"\0" * 32)
        key = _funded(w)
        Transactor(w.chain.w3, by).transact(w.registry.functions.addKey(entity_id, key.address,
                                                                        0, 0))
        chain.append((entity_id, key))
    return chain


def _recognition_rows(w: World, gas: Callable[..., int]
                      ) -> tuple[list[tuple[str, str, str]], bool]:
    """recognise and withdrawRecognition, and recognisedAt's gas (eth_call estimates): a
    direct answer, and the worst case: MAX_DEPTH x MAX_DEPTH pairs of the deepest chains
    (every pair the query reads), each holding MAX_RECOGNITIONS_PER_PAIR recognitions of
    another kind, so that every one is read and none answers. The rows, and whether the worst
    case stays under the node's cap on a call's gas."""
    reg = w.registry.functions
    recognisers, subjects = _chain_of_entities(w, "recogniser"), _chain_of_entities(w, "subject")
    per_pair = int(reg.MAX_RECOGNITIONS_PER_PAIR().call())
    bottom, bottom_key = recognisers[-1]
    issuer = subjects[-1][0]
    non_formal = int(Scope.NON_FORMAL)
    gas("registry.recognise (a pair's first)", bottom_key,
        reg.recognise(bottom, issuer, non_formal, 0, 0))
    for recogniser, key in recognisers:
        for subject, _ in subjects:
            recorded = len(reg.recognitionIdsBetween(recogniser, subject).call())
            for count in range(recorded, per_pair):
                call = reg.recognise(recogniser, subject, non_formal, 0, 0)
                if (recogniser, subject, count) == (bottom, issuer, per_pair - 1):
                    gas(f"registry.recognise (a pair's {per_pair}th)", key, call)
                else:
                    Transactor(w.chain.w3, key).transact(call)
    when = w.now()
    worst = int(reg.recognisedAt(bottom, issuer, int(Scope.FORMAL_DEGREE), when).estimate_gas())
    if reg.recognisedAt(bottom, issuer, int(Scope.FORMAL_DEGREE), when).call()[0]:
        raise SystemExit("gas_report: the worst case of recognisedAt answered recognised")
    newest = int(reg.recognitionCount().call())
    direct = int(reg.recognisedAt(recognisers[0][0], subjects[0][0], non_formal,
                                  when).estimate_gas())
    gas("registry.withdrawRecognition", bottom_key, reg.withdrawRecognition(newest))
    cap = int(w.chain.w3.eth.get_block("latest")["gasLimit"])
    depth = len(recognisers)
    return [
        ("recognisedAt, direct, newest answers (eth_call estimate)", f"{direct:,}", ""),
        (f"recognisedAt, worst: {depth}x{depth} pairs x {per_pair}, none (eth_call)",
         f"{worst:,}", f"< the node's call cap ({cap:,})"),
    ], worst < cap


# How IssuerRegistry.sol stores a signing key's public key, and the two alternatives measured
# against it: the source lines of addSigningKey that differ.
_STORED_LINES = (
    "        added.keyTail = bytes3(publicKey[32:]);\n",
    "        _signingKeyHeads[keyId] = bytes32(publicKey[:32]);\n",
)
_HEADS = "    mapping(bytes32 keyId => bytes32) private _signingKeyHeads;"


def _variant(source: str, *, plain_bytes: bool) -> str:
    """IssuerRegistry.sol storing the key as ``bytes`` (``plain_bytes``) or not at all."""
    for line in _STORED_LINES:
        if line not in source:
            raise SystemExit(f"gas_report: IssuerRegistry.sol no longer has {line.strip()!r}")
        source = source.replace(line, "")
    if plain_bytes:
        source = source.replace(_HEADS, _HEADS + "\n    mapping(bytes32 keyId => bytes) "
                                "private _signingKeyBytes;", 1)
        source = source.replace("        _signingKeyCount = index + 1;\n",
                                "        _signingKeyBytes[keyId] = publicKey;\n"
                                "        _signingKeyCount = index + 1;\n", 1)
    return source


def _compiled_variants() -> dict[str, Artifact]:
    # Run as `python scripts/gas_report.py`, the repository root is not on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from scripts import compile_contracts  # noqa: PLC0415

    sources = compile_contracts.find_sources()
    name = "contracts/IssuerRegistry.sol"
    variants = {"packed into the record and one slot (as deployed)": load_artifact(REGISTRY)}
    for label, plain in (("as a plain `bytes` value", True), ("not at all (hash only)", False)):
        changed = {**sources, name: _variant(sources[name], plain_bytes=plain)}
        output = compile_contracts.compile_sources(changed).output
        data = output["contracts"][name]["IssuerRegistry"]
        variants[label] = Artifact(REGISTRY, data["abi"],
                                   bytes.fromhex(data["evm"]["bytecode"]["object"]), b"", "",
                                   {}, "")
    return variants


def _storage_report(chain: LocalChain) -> None:
    """addSigningKey's gas with the public key stored each way: a fresh registry per way, one
    body, its first and second key (Ed25519) and a P-256 key."""
    admin = Transactor(chain.w3, chain.accounts[0])
    print("\naddSigningKey gas by how the public key is stored")
    print(f"{'public key stored':<52} {'1st Ed25519':>11} {'2nd Ed25519':>11} {'P-256':>9}")
    for label, artifact in _compiled_variants().items():
        receipt = admin.deploy(artifact, 3600, admin.address)
        address = receipt["contractAddress"]
        if address is None:
            raise SystemExit(f"gas_report: the registry {label} was not deployed")
        registry = chain.w3.eth.contract(address=address, abi=artifact.abi)
        body = register_entity(admin, registry, parent=0, kind=Kind.ACCREDITATION_BODY,
                               did=f"did:web:{os.urandom(4).hex()}.example",
                               scope=Scope.FORMAL_DEGREE)
        used = [int(admin.transact(registry.functions.addSigningKey(body, key, 0, 0))["gasUsed"])
                for key in (b"\xed\x01" + os.urandom(32), b"\xed\x01" + os.urandom(32),
                            b"\x80\x24\x03" + os.urandom(32))]
        print(f"{label:<52} {used[0]:>11,} {used[1]:>11,} {used[2]:>9,}")


if __name__ == "__main__":
    sys.exit(main())
