"""The registry and the anchor as auditors test them: a Hypothesis state machine draws random
sequences of registry and anchor actions, each by any account (root administrators, body and
issuer keys, revoked keys, strangers), runs them on the in-process chain and on a plain Python
model (tests/contracts/registry_model.py), and checks after every step that the chain did what
the model says and that the invariants hold:

* only keys trusted at that moment anchor: a refused anchor leaves no anchor, an accepted one
  is recorded with its issuer, key, time and block;
* only the issuer's own trusted keys change its credentials' status, and only a root
  administrator lifts a revocation;
* a "trusted at T" answer for a past T (``trustedAt``, ``signingKeyTrustedAt``) changes only
  through a back-dated revocation: earlier answers are kept and asked again;
* a revoked entity never becomes active again;
* every view read agrees with the model.

Speed: a sequence starts from the prepared world (bodies, issuers, keys) deployed once on the
chain; calls and transactions go straight to the chain's py-evm (:class:`Evm`: in the random
run transactions execute on the pending block's state without being signed and mined, the
explicit regression tests mine signed ones); an action the model refuses runs as a call on
the pending block (same state, same block time: the same outcome as a transaction); and each
action reads only the views it touched, while the rule ``check_everything`` reads them all
now and then. The number of sequences is a run size (``--full``:
:attr:`~testkit.pytest_plugin.RunSizes.state_machine_sequences`), some 15 s per 200 on this
2-core machine.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Final, TypeVar, cast

import pytest
from eth.vm.spoof import SpoofTransaction
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from eth_utils.abi import get_abi_input_types, get_abi_output_types
from eth_utils.address import to_canonical_address as _canonical
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from anchor_service.chain import Transactor, deploy, sign_anchor
from localchain import InProcessChain
from testkit.pytest_plugin import RunSizes
from tests.contracts.registry_model import (
    FOREVER,
    MAX_TREE_SIZE,
    Model,
    Refused,
)
from verifier.contract_types import (
    STATUS_LIST_SIZE,
    STATUS_LIST_WORDS,
    AnchorInfo,
    CredentialCheck,
    CredentialStatus,
    Entity,
    KeyInfo,
    Kind,
    Recognition,
    RecognitionAnswer,
    Scope,
    SigningKeyInfo,
    Status,
    StatusBits,
    StatusChange,
    StatusWords,
    Trust,
    TrustCode,
    decode,
    decode_all,
)
from verifier.contracts_abi import load_artifact

_M = TypeVar("_M")


def to_canonical_address(address: str) -> bytes:
    """The 20 bytes of a hex address."""
    return bytes(_canonical(address))


# ------------------------------------------------------------------------------- the cast

#: Every account that acts, by name. Accounts 0..9 get roles in the prepared world; s1..s14
#: are strangers until a rule makes one a key.
ACTORS: Final = ("admin", "admin2", "bodyA", "bodyB", "i1", "i1b", "i2", "i3", "r", "i1old",
                 *(f"s{n}" for n in range(1, 15)))
#: Entity ids drawn by the rules: the prepared world has 1..6; higher ones appear as the
#: sequence accredits, and the rest are unknown. Issuers come first: Hypothesis draws the
#: first values more often, and revoking body 1 would end most sequences early.
ENTITY_IDS: Final = st.one_of(st.sampled_from([3, 4, 5, 6, 2, 1]),
                              st.sampled_from([7, 8, 3, 4, 5, 0, 9, 10]))
_START: Final = 4_000_000_000  # block time of the prepared world: far from the wall clock
_TX_GAS: Final = 3_000_000
_VIEW_GAS: Final = 10_000_000
_MAX_PENDING: Final = 3  # transactions a held block takes before it is mined anyway
_STEPS: Final = 15  # steps of a sequence at most
_SWEEP_EVERY: Final = 6  # actions between two reads of every view (check_everything)


def _leaf(n: int) -> bytes:
    """Leaf input n: salt, digest, and the status list and index it binds (its last 8
    bytes); the last two bind an index beyond the list, and bind nothing (7 bytes)."""
    if n == 5:
        return b"short 7"
    status_list, index = ((0, 0), (0, 257), (1, STATUS_LIST_SIZE - 1), (2**32 - 1, 5),
                          (0, STATUS_LIST_SIZE))[n]
    return (sha256(b"salt %d" % n).digest()[:16] + sha256(b"digest %d" % n).digest()
            + status_list.to_bytes(4, "big") + index.to_bytes(4, "big"))


#: Roots the rules anchor: the zero root, then the one-leaf trees of the leaves.
LEAVES: Final = tuple(_leaf(n) for n in range(6))
ROOTS: Final = (bytes(32), *(sha256(b"\x00" + leaf).digest() for leaf in LEAVES))


def signing_public_key(n: int, form: str) -> bytes:
    """A signing key's Multikey bytes of the given form: "ed" (Ed25519), "p256", or a form
    the registry refuses ("bad-header", "bad-length")."""
    body = sha256(b"signing key %d" % n).digest()
    return {"ed": b"\xed\x01" + body, "p256": b"\x80\x24\x02" + body,
            "bad-header": b"\xed\x02" + body, "bad-length": b"\xed\x01" + body[:31]}[form]


# ------------------------------------------------------------------------------- the chain


class Abi:
    """Calldata and results of one contract's functions, encoded with eth-abi directly (the
    state machine makes tens of thousands of calls; web3's call path costs several times the
    EVM's work)."""

    def __init__(self, artifact: str) -> None:
        self._functions: dict[str, tuple[bytes, list[str], list[str]]] = {}
        for entry in load_artifact(artifact).abi:
            if entry.get("type") != "function":
                continue
            abi: Any = entry  # eth-utils types the entries more narrowly than the JSON reads
            inputs, outputs = get_abi_input_types(abi), get_abi_output_types(abi)
            selector = keccak(text=f"{entry['name']}({','.join(inputs)})")[:4]
            assert entry["name"] not in self._functions, "overloaded function"
            self._functions[entry["name"]] = (selector, inputs, outputs)

    def encode(self, name: str, *args: Any) -> bytes:
        selector, inputs, _ = self._functions[name]
        return selector + abi_encode(inputs, args)

    def decode(self, name: str, output: bytes) -> Any:
        """The result as web3 gives it: a single output alone, several as a tuple."""
        values = abi_decode(self._functions[name][2], output)
        return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class Outcome:
    """What a call or transaction did: whether it succeeded, its output (the revert data when
    it did not) and the events it emitted (address, topics, data)."""

    ok: bool
    output: bytes
    logs: tuple[tuple[bytes, tuple[int, ...], bytes], ...]


class Evm:
    """The in-process chain's py-evm, driven directly. Every action runs in the pending block,
    whose timestamp is "now"; an accepted transaction gets a block of its own (the next one a
    second later) unless blocks are held, when up to :data:`_MAX_PENDING` share one block
    and one second. A call runs on the pending block's state and time, so it sees exactly
    what a transaction there would, and keeps nothing.

    Two ways to run transactions, with the same blocks and times:

    * ``mined``: signed transactions, applied and mined into real blocks of the chain (and a
      revert of the chain's snapshot between sequences); what the explicit regression tests
      use;
    * not ``mined``: the same EVM executes each transaction on the pending block's state,
      whose block time and number move as blocks would, without signing, sender recovery and
      block building (pure-Python secp256k1 and tries are some 90% of a mined transaction's
      cost); each sequence starts from a fresh state at the prepared world's root. This is
      how thousands of random sequences fit in a CI run.
    """

    def __init__(self, chain: InProcessChain) -> None:
        self.chain = chain
        self.backend = chain.tester.backend
        self.mined = True
        self.hold = False
        self.pending = 0
        self._vm: Any = None  # the pending block's VM, kept until it changes
        self._stage_header: Any = None

    def start(self, *, mined: bool) -> None:
        """Begin a sequence at the chain's pending block (the prepared world)."""
        self.mined, self.hold, self.pending = mined, False, 0
        self._vm = None
        if not mined:
            self._vm = self.backend.chain.get_vm(self.backend.chain.header)

    def _pending_vm(self) -> Any:
        if self._vm is None:
            self._vm = self.backend.chain.get_vm()
        return self._vm

    @property
    def now(self) -> int:
        return int(self._pending_vm().state.execution_context.timestamp)

    @property
    def block(self) -> int:
        return int(self._pending_vm().state.execution_context.block_number)

    def _unsigned(self, sender: str, to: bytes, data: bytes, gas: int) -> Any:
        state = self._pending_vm().state
        return self.backend.chain.create_unsigned_transaction(
            nonce=state.get_nonce(to_canonical_address(sender)),
            gas_price=2 * state.execution_context.base_fee_per_gas + 1, gas=gas, to=to,
            value=0, data=data)

    def call(self, sender: str, to: bytes, data: bytes) -> Outcome:
        """Run ``data`` as ``sender`` on the pending block without keeping anything."""
        state = self._pending_vm().state
        unsigned = self._unsigned(sender, to, data, _VIEW_GAS)
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(
                SpoofTransaction(unsigned, from_=to_canonical_address(sender)))
        finally:
            state.revert(snapshot)
        return self._result(computation)

    def transact(self, account: LocalAccount, to: bytes, data: bytes) -> Outcome:
        """``data`` as a transaction of ``account`` in the pending block."""
        unsigned = self._unsigned(account.address, to, data, _TX_GAS)
        if self.mined:
            signed = unsigned.as_signed_transaction(PrivateKey(bytes(account.key)),
                                                    chain_id=self.chain.chain_id)
            _, _, computation = self.backend.chain.apply_transaction(signed)
            self._vm = None
        else:
            computation = self._pending_vm().state.apply_transaction(
                SpoofTransaction(unsigned, from_=to_canonical_address(account.address)))
        self.pending += 1
        if not self.hold or self.pending >= _MAX_PENDING:
            self.mine()
        return self._result(computation)

    def mine(self) -> None:
        """Close the pending block, if it holds a transaction: the next one is a second later."""
        if not self.pending:
            return
        self.pending = 0
        if self.mined:
            self.backend.mine_blocks(1)
            self._vm = None
        else:
            self._move(seconds=1, blocks=1)

    def advance(self, seconds: int) -> None:
        """Close the pending block, then move the next one's time ``seconds`` on."""
        self.mine()
        if self.mined:
            chain = self.backend.chain
            chain.header = chain.header.copy(timestamp=chain.header.timestamp + seconds)
            self._vm = None
        else:
            self._move(seconds=seconds, blocks=0)

    def _move(self, *, seconds: int, blocks: int) -> None:
        # The state carries on into the next block: only its block context moves (py-evm
        # keeps it in the execution context, which has no setter).
        context = self._pending_vm().state.execution_context
        context._timestamp += seconds
        context._block_number += blocks

    @staticmethod
    def _result(computation: Any) -> Outcome:
        if computation.is_error:
            error = computation.error
            data = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
            return Outcome(ok=False, output=bytes(data), logs=())
        return Outcome(ok=True, output=bytes(computation.output), logs=tuple(
            (bytes(address), tuple(topics), bytes(data))
            for address, topics, data in computation.get_log_entries()))


@dataclass
class Stage:
    """The prepared world every sequence starts from, and how to get back to it."""

    chain: InProcessChain
    evm: Evm
    accounts: dict[str, LocalAccount]
    addresses: dict[str, bytes]  # "registry", "anchor"
    abis: dict[str, Abi]
    errors: Transactor  # decodes revert data of both contracts
    model: Model
    snapshot: str = ""
    signing_keys: list[bytes] = field(default_factory=list)
    chain_moved: bool = False  # a mined sequence ran since the snapshot

    def reset(self, *, mined: bool) -> None:
        """Back to the prepared world: the chain reverted to its snapshot if a mined sequence
        moved it (a snapshot is used up by a revert: take another), then a fresh state."""
        if self.chain_moved:
            self.chain.revert(self.snapshot)
            self.snapshot = self.chain.snapshot()
        self.chain_moved = mined
        self.evm.start(mined=mined)


def build_stage() -> Stage:
    """Deploy both contracts on a fresh in-process chain and prepare the world: root
    administrators admin and admin2; top-level body A (key bodyA) with sub-body B (bodyB,
    narrower scope); issuers I1 under A (keys i1, i1b, and i1old, revoked), I2 under B (i2),
    I3 at top level (i3) and R under A (r), revoked; a signing key each for I1 and I2."""
    chain = InProcessChain.start(accounts=len(ACTORS))
    chain.tester.time_travel(_START)
    accounts = dict(zip(ACTORS, chain.accounts, strict=True))
    deployer = Transactor(chain.w3, accounts["admin"])
    deployment = deploy(deployer, admin_transfer_delay=3600)
    registry, _ = deployment.contracts(chain.w3)
    deployer.transact(registry.functions.grantRole(
        registry.functions.ROOT_ADMIN_ROLE().call(), accounts["admin2"].address))
    chain.mine()
    stage = Stage(
        chain=chain, evm=Evm(chain), accounts=accounts,
        addresses={"registry": to_canonical_address(deployment.registry),
                   "anchor": to_canonical_address(deployment.anchor)},
        abis={"registry": Abi("IssuerRegistry"), "anchor": Abi("CredentialAnchor")},
        errors=deployer,
        model=Model(root_admins={accounts["admin"].address.lower(),
                                 accounts["admin2"].address.lower()}))
    stage.evm.start(mined=True)
    machine = RegistryMachine(stage, prepared=False)
    all_scopes = int(Scope.FORMAL_DEGREE | Scope.FORMAL_NON_DEGREE | Scope.NON_FORMAL)
    for who, parent, kind, scope, did in (
            ("admin", 0, Kind.ACCREDITATION_BODY, all_scopes, "did:web:body-a.example"),
            ("bodyA", 1, Kind.ACCREDITATION_BODY, int(Scope.FORMAL_DEGREE | Scope.NON_FORMAL),
             "did:web:body-b.example"),
            ("bodyA", 1, Kind.TRUSTED_ISSUER, all_scopes, "did:web:i1.example"),
            ("bodyB", 2, Kind.TRUSTED_ISSUER, int(Scope.FORMAL_DEGREE), "did:web:i2.example"),
            ("admin", 0, Kind.TRUSTED_ISSUER, int(Scope.NON_FORMAL), "did:web:i3.example"),
            ("bodyA", 1, Kind.TRUSTED_ISSUER, all_scopes, "did:web:r.example")):
        # The bodies' keys first: each body accredits below itself with its key.
        if who == "bodyA" and parent == 1 and kind is Kind.ACCREDITATION_BODY:
            machine.add_key("admin", 1, "bodyA", None, None)
        if who == "bodyB":
            machine.add_key("bodyA", 2, "bodyB", None, None)
        machine.accredit(who=who, parent=parent, kind=kind, scope=scope, did="", name=did)
    for who, entity_id, key in (("bodyA", 3, "i1"), ("bodyA", 3, "i1b"), ("bodyA", 3, "i1old"),
                                ("bodyB", 4, "i2"), ("admin", 5, "i3"), ("bodyA", 6, "r")):
        machine.add_key(who, entity_id, key, None, None)
    machine.set_status("bodyA", 6, Status.REVOKED)
    machine.revoke_key("bodyA", "i1old", None)
    machine.add_signing_key("bodyA", 3, "ed", None, None)
    machine.add_signing_key("bodyB", 4, "p256", None, None)
    assert len(stage.model.entities) == 6
    assert not machine.refusals
    stage.evm.mine()
    stage.snapshot = chain.snapshot()
    return stage


# --------------------------------------------------------------------------- the machine

# Most draws are likely to be allowed, so that sequences get far, and the rest anything: a
# value repeated in a sampled_from list is drawn that much more often.
_ACTOR = st.sampled_from(ACTORS)
_ADMINISTRATOR = st.one_of(st.sampled_from(("admin", "admin2", "bodyA", "bodyB")), _ACTOR)
_ISSUER_KEY = st.one_of(st.sampled_from(("i1", "i1b", "i2", "i3", "s1", "s2")), _ACTOR)
_NEW_KEY = st.one_of(st.sampled_from(("s1", "s2", "s3", "s4")), _ACTOR)
#: The status rules' entity: -1 is the caller's own (0 when it holds no key).
_OWN_ENTITY: Final = -1
# Times relative to now: None is 0 (the contracts' "now"/"no expiry"/"next second"), a
# positive offset lies in the past (back-dating), -1 one second in the future.
_BACK = st.sampled_from([None, None, 0, 1, 2, 30, 1000, 10**6, -1])
_VALID_FROM = st.sampled_from([None, None, -50, -2, 0, 1, 3600])  # offsets after now
_VALID_UNTIL = st.sampled_from([None, None, 0, 1, 2, 3, 60, 3600, -1])  # offsets after now
_UNTIL = st.sampled_from([0, 1, 2, 3, 59, 3600, FOREVER])  # offsets after now
_VALID_INDEX = st.one_of(st.sampled_from([0, 1, 2, 255, 256, 257, 511, STATUS_LIST_SIZE - 1]),
                         st.integers(0, 600), st.integers(0, STATUS_LIST_SIZE - 1))
_INDEX = st.one_of(_VALID_INDEX, _VALID_INDEX, _VALID_INDEX,
                   st.sampled_from([STATUS_LIST_SIZE, 2**32 - 1]))
_VALID_INDICES = st.lists(_VALID_INDEX, min_size=1, max_size=5)
_INDICES = st.one_of(
    *[_VALID_INDICES.map(lambda indices: b"".join(i.to_bytes(4, "big") for i in indices))] * 4,
    st.lists(_INDEX, min_size=1, max_size=5).map(
        lambda indices: b"".join(i.to_bytes(4, "big") for i in indices)),
    st.sampled_from([b"", b"\x00\x00\x01", b"\x00\x00\x00\x01\x00"]))
_STATUS_LIST = st.sampled_from([0, 0, 0, 1, 2**32 - 1])


_STATUS_EVENTS: Final = {"revoke": "CredentialsRevoked", "suspend": "CredentialsSuspended",
                         "reinstate": "CredentialsReinstated",
                         "liftRevocations": "RevocationsLifted"}


@dataclass(frozen=True)
class Answer:
    """A "trusted at" answer read from the chain, and the count of back-dated revocations
    made before it was read."""

    trust: Trust
    backdated: int


class RegistryMachine(RuleBasedStateMachine):
    """Registry and anchor actions by any account, on the chain and on the model."""

    def __init__(self, stage: Stage, *, prepared: bool = True, mined: bool = False) -> None:
        """A sequence from the prepared world (``prepared``; else it is being prepared), with
        mined transactions or not (:class:`Evm`)."""
        super().__init__()
        self.stage = stage
        self.evm = stage.evm
        if prepared:
            stage.reset(mined=mined)
            self.model = copy.deepcopy(stage.model)
        else:
            self.model = stage.model
        self.accounts = stage.accounts
        self.signing_keys = list(stage.signing_keys)
        self.refuse_by_transaction = False
        self.refusals = 0
        self.last_logs: tuple[tuple[bytes, tuple[int, ...], bytes], ...] = ()
        self.actions_since_sweep = 0
        self.backdated = 0  # back-dated revocations (the only thing that may change the past)
        self.answers: dict[tuple[str, bytes, int], Answer] = {}
        self.ever_revoked: set[int] = {entity_id for entity_id, record
                                       in self.model.entities.items()
                                       if record.status is Status.REVOKED}
        self.touched_words: set[tuple[int, int, int]] = set()
        self.steps = 0  # steps run (seeds the random question of recognised_at_agrees)
        self.question_seed = 0

    # ----------------------------------------------------------------- plumbing

    def _address(self, who: str) -> str:
        return str(self.accounts[who].address).lower()

    def _act(self, who: str, contract: str, function: str, args: tuple[Any, ...],
             expect: Callable[[int, int], object]) -> bool:
        """Run ``function(*args)`` as ``who`` on the chain and ``expect(now, block)`` (the
        model's action) on the model; they must agree on acceptance and on the error.
        Whether it was accepted."""
        now = self.evm.now
        self.actions_since_sweep += 1
        try:
            expect(now, self.evm.block)
            expected: str | None = None
        except Refused as refusal:
            expected = refusal.name
        data = self.stage.abis[contract].encode(function, *args)
        to = self.stage.addresses[contract]
        if expected is None or self.refuse_by_transaction:
            outcome = self.evm.transact(self.accounts[who], to, data)
        else:
            outcome = self.evm.call(self.accounts[who].address, to, data)
        got = None if outcome.ok else self.stage.errors.decode(outcome.output).name
        assert got == expected, (
            f"{contract}.{function}{args} by {who} at {now}: the chain "
            f"{'accepted it' if got is None else 'reverted ' + got}, the model "
            f"{'accepts it' if expected is None else 'expects ' + expected}")
        self.last_logs = outcome.logs
        if got is not None:
            self.refusals += 1
            return False
        # The verifier keeps its answers while a contract logs nothing (contracts/README.md,
        # "Every change is logged"): every accepted action logs an event of its contract.
        assert any(address == to for address, _, _ in outcome.logs), (
            f"{contract}.{function}{args} was accepted without an event of the {contract}")
        return True

    def _expect_event(self, contract: str, signature: str, topics: tuple[int, ...],
                      data: tuple[list[str], tuple[Any, ...]],
                      *more: tuple[str, tuple[int, ...], tuple[list[str], tuple[Any, ...]]],
                      ) -> None:
        """The last action emitted exactly this event (and the ``more`` after it)."""
        expected = tuple(
            (self.stage.addresses[contract],
             (int.from_bytes(keccak(text=name), "big"), *indexed), abi_encode(*values))
            for name, indexed, values in ((signature, topics, data), *more))
        assert self.last_logs == expected, f"events of the last action, not {signature}"

    def _raw_view(self, contract: str, function: str, *args: Any) -> tuple[bool, Any]:
        outcome = self.evm.call(self._address("admin"), self.stage.addresses[contract],
                                self.stage.abis[contract].encode(function, *args))
        if not outcome.ok:
            return False, self.stage.errors.decode(outcome.output).name
        return True, self.stage.abis[contract].decode(function, outcome.output)

    def _view(self, contract: str, function: str, *args: Any) -> Any:
        ok, value = self._raw_view(contract, function, *args)
        assert ok, f"{contract}.{function}{args} reverted {value}"
        return value

    def _read(self, model: type[_M], contract: str, function: str, *args: Any) -> _M:
        return decode(model, self._view(contract, function, *args))

    def _when(self, back: int | None) -> int:
        """A time from a ``_BACK`` draw: 0, or now minus the offset."""
        return 0 if back is None else max(self.evm.now - back, 0)

    # ------------------------------------------------------------------ checks

    def _check_entity(self, entity_id: int) -> None:
        expected = self.model.entities.get(entity_id)
        if expected is None:
            assert self._raw_view("registry", "entity", entity_id) == (False, "UnknownEntity")
            return
        got = self._read(Entity, "registry", "entity", entity_id)
        assert got == expected.view(), f"entity {entity_id}"
        if got.status is Status.REVOKED:
            self.ever_revoked.add(entity_id)
        # A revoked entity never becomes active again.
        if entity_id in self.ever_revoked:
            assert got.status is Status.REVOKED, f"entity {entity_id} left Revoked"

    def _check_history(self, entity_id: int) -> None:
        expected = self.model.entities.get(entity_id)
        if expected is None:
            return
        history = decode_all(StatusChange, self._view("registry", "statusHistory", entity_id))
        assert history == expected.history_view(), f"status history of {entity_id}"
        assert self._view("registry", "isActiveAt", entity_id, self.evm.now) \
            == self.model.active_at(entity_id, self.evm.now)

    def _check_key(self, who: str) -> None:
        expected = self.model.key_info(self._address(who))
        ok, value = self._raw_view("registry", "keyInfo", self.accounts[who].address)
        if expected is None:
            assert (ok, value) == (False, "UnknownKey"), f"keyInfo of {who}"
        else:
            assert ok, f"keyInfo of {who} reverted {value}"
            assert decode(KeyInfo, value) == expected, f"keyInfo of {who}"

    def _check_signing_key(self, key_id: bytes) -> None:
        got = self._read(SigningKeyInfo, "registry", "signingKeyInfo", key_id)
        assert got == self.model.signing_key_info(key_id)

    def _check_words(self, entity_id: int, status_list: int, word: int) -> None:
        got = decode(StatusWords, self._view("anchor", "statusWords", entity_id, status_list,
                                             word, 1))
        assert (got.revoked, got.suspended) == self.model.status_words(
            entity_id, status_list, word, 1), f"words {word} of list {status_list} of {entity_id}"

    def _check_anchor(self, who: str, root: bytes) -> None:
        got = self._read(AnchorInfo, "anchor", "anchorOf", self.accounts[who].address, root)
        assert got == self.model.anchor_of(self._address(who), root), f"anchorOf {who}"

    def _ask_trust(self, kind: str, subject: bytes, when: int) -> Trust:
        """The chain's "trusted at" answer, checked against the model and against the answer
        for the same question read before: it may change only through a back-dated revocation,
        and never to trusted from untrusted."""
        if kind == "key":
            got = self._read(Trust, "registry", "trustedAt", subject, when)
            expected = self.model.trusted_at("0x" + subject.hex(), when)
        else:
            got = self._read(Trust, "registry", "signingKeyTrustedAt", subject, when)
            expected = self.model.signing_key_trusted_at(subject, when)
        assert got == expected, f"{kind} 0x{subject.hex()} trusted at {when}"
        if when > self.evm.now or got.code is TrustCode.UNKNOWN_KEY:
            return got  # only the past of a registered key is fixed
        earlier = self.answers.get((kind, subject, when))
        if earlier is not None:
            if earlier.backdated == self.backdated:
                assert got == earlier.trust, (
                    f"{kind} 0x{subject.hex()} trusted at {when} (past) changed without a "
                    f"back-dated revocation: {earlier.trust} -> {got}")
            assert got.trusted <= earlier.trust.trusted, "a past answer became trusted"
        self.answers[(kind, subject, when)] = Answer(got, self.backdated)
        return got

    def _recheck_answers(self, entity_id: int | None = None) -> None:
        """Ask the recorded past answers again: those whose key's entity is ``entity_id`` or
        below it, or all."""
        for (kind, subject, when) in list(self.answers):
            if entity_id is not None and entity_id not in self._lineage(kind, subject):
                continue
            self._ask_trust(kind, subject, when)

    def _lineage(self, kind: str, subject: bytes) -> set[int]:
        record = (self.model.keys.get("0x" + subject.hex()) if kind == "key"
                  else self.model.signing_keys.get(subject))
        entity_id, found = (0 if record is None else record.entity_id), set()
        while entity_id:
            found.add(entity_id)
            entity_id = self.model.entities[entity_id].parent_id
        return found

    def _check_key_now(self, who: str) -> None:
        """``checkKeyNow``: whether the key may act now, as the model says."""
        code, entity_id, kind = self.model.check_now(self._address(who), self.evm.now)
        got = self._view("registry", "checkKeyNow", self.accounts[who].address)
        assert (got[0], got[1], got[2], got[3]) == (
            code, entity_id, self.model.key_index_of(self._address(who)), kind), \
            f"checkKeyNow of {who}"

    def _subjects_below(self, entity_id: int) -> list[tuple[str, bytes]]:
        """A few keys (anchoring and signing) of ``entity_id`` and the entities below it."""
        found = [("key", to_canonical_address(key)) for key in self.model.key_list
                 if entity_id in self._lineage("key", to_canonical_address(key))][:3]
        return found + [("signing key", key_id) for key_id in self.model.signing_keys
                        if entity_id in self._lineage("signing key", key_id)][:2]

    def _probe(self, subjects: list[tuple[str, bytes]], times: tuple[int, ...]) -> None:
        """Ask whether each subject was trusted at each time: the edges of a change."""
        for kind, subject in subjects:
            for when in times:
                if 0 <= when < FOREVER:
                    self._ask_trust(kind, subject, when)

    def _after_registry_change(self, entity_id: int, edges: tuple[int, ...] = ()) -> None:
        """After a change to an entity: its record, whether each key at or below it may act
        now, what some of them were trusted for at the ``edges`` of the change, and the
        recorded past answers of those keys."""
        self._check_entity(entity_id)
        for who in ACTORS:
            record = self.model.keys.get(self._address(who))
            if record is not None and entity_id in self._lineage(
                    "key", to_canonical_address(self._address(who))):
                self._check_key_now(who)
        if edges and entity_id in self.model.entities:
            self._probe(self._subjects_below(entity_id), edges)
        self._recheck_answers(entity_id)

    def _recognition_edges(self) -> list[int]:
        """The issuance times at which an answer may change: either side of every
        recognition's validFrom, validUntil and withdrawnAt."""
        edges: set[int] = set()
        for found in self.model.recognitions.values():
            for edge in (found.valid_from, found.valid_until, found.withdrawn_at):
                if edge:
                    edges.update(when for when in (edge - 1, edge) if 0 <= when <= FOREVER)
        return sorted(edges)

    def _members(self, entity_id: int) -> list[int]:
        """The entity and the entities directly below it."""
        return [entity_id, *(child for child, record in self.model.entities.items()
                             if record.parent_id == entity_id)]

    def _check_recognised_at(self, recogniser: int, subject: int, kind: int,
                             when: int) -> None:
        try:
            expected: RecognitionAnswer | str = self.model.recognised_at(recogniser, subject,
                                                                         kind, when)
        except Refused as refusal:
            expected = refusal.name
        ok, value = self._raw_view("registry", "recognisedAt", recogniser, subject, kind, when)
        got = decode(RecognitionAnswer, value) if ok else value
        assert got == expected, f"recognisedAt({recogniser}, {subject}, {kind}, {when})"

    def _probe_recognition(self, recognition_id: int) -> None:
        """Ask about a recognition just recorded or withdrawn, at the edges of its window and
        withdrawal, for its own pair and for members below either side."""
        found = self.model.recognitions[recognition_id]
        kind = next((bit for bit in (1, 2, 4) if found.scope & bit), 1)
        times = [when for edge in (found.valid_from, found.valid_until, found.withdrawn_at)
                 if edge for when in (edge - 1, edge) if 0 <= when <= FOREVER]
        recognisers = self._members(found.recogniser_id)[:2]
        subjects = self._members(found.subject_id)[:2]
        for recogniser in recognisers:
            for subject in subjects:
                for when in times:
                    self._check_recognised_at(recogniser, subject, kind, when)

    def _check_recognition(self, recognition_id: int) -> None:
        expected = self.model.recognitions.get(recognition_id)
        ok, value = self._raw_view("registry", "recognition", recognition_id)
        if expected is None:
            assert (ok, value) == (False, "UnknownRecognition"), f"recognition {recognition_id}"
            return
        assert ok, value
        assert decode(Recognition, value) == expected, f"recognition {recognition_id}"

    def _check_recognitions_between(self, recogniser: int, subject: int) -> None:
        ids = self.model.pair_recognitions.get((recogniser, subject), [])
        assert list(self._view("registry", "recognitionIdsBetween", recogniser, subject)) == ids
        assert self._view("registry", "recognitionCount") == len(self.model.recognitions)
        for recognition_id in ids:
            self._check_recognition(recognition_id)

    # ------------------------------------------------------------ registry rules

    @rule(who=_ADMINISTRATOR, parent=st.one_of(st.sampled_from([0, 1, 1, 2, 2]), ENTITY_IDS),
          kind=st.sampled_from([Kind.ACCREDITATION_BODY, Kind.TRUSTED_ISSUER,
                                Kind.TRUSTED_ISSUER, Kind.NONE]),
          scope=st.sampled_from([1, 1, 4, 5, 5, 7, 0, 2, 8]),
          did=st.sampled_from(["new", "new", "new", "new", "taken", "empty", "longest",
                               "too long"]),
          name=st.just(""))
    def accredit(self, *, who: str, parent: int, kind: Kind, scope: int, did: str,
                 name: str = "") -> None:
        """Accredit a body or issuer (``did``: a new DID, one already taken, an empty one, one
        of the longest length, one too long; ``name`` overrides it)."""
        serial = len(self.model.entities) + 1
        if not name:
            name = {"new": f"did:web:e{serial}.example", "taken": "did:web:i1.example",
                    "empty": "", "longest": f"did:web:e{serial}.".ljust(256, "x"),
                    "too long": "did:web:".ljust(257, "x")}[did]
        uri, digest = f"https://example.org/{serial}", sha256(name.encode()).digest()
        accepted = self._act(
            who, "registry", "accredit", (parent, kind, name, scope, uri, digest),
            lambda now, _: self.model.accredit(
                self._address(who), parent_id=parent, kind=kind, did=name, scope=scope,
                metadata_uri=uri, metadata_hash=digest, now=now))
        if accepted:
            self._check_entity(len(self.model.entities))
            assert self._view("registry", "entityIdByDid", name) == len(self.model.entities)
        self._check_entity(parent)

    @rule(who=st.one_of(st.sampled_from(("admin", "bodyA", "admin2", "bodyB")), _ADMINISTRATOR),
          entity_id=st.one_of(st.sampled_from([2, 1, 3, 4, 5]), ENTITY_IDS),
          status=st.sampled_from([Status.SUSPENDED, Status.ACTIVE, Status.SUSPENDED,
                                  Status.ACTIVE, Status.REVOKED, Status.NONE]))
    def set_status(self, who: str, entity_id: int, status: Status) -> None:
        now = self.evm.now
        accepted = self._act(who, "registry", "setStatus", (entity_id, status),
                             lambda now, _: self.model.set_status(self._address(who), entity_id,
                                                                  status, now))
        if accepted:
            self._expect_event("registry", "EntityStatusChanged(uint64,uint8,uint40,address)",
                               (entity_id,), (["uint8", "uint40", "address"],
                                              (status, now + 1, self.accounts[who].address)))
        self._after_registry_change(entity_id, (now, now + 1) if accepted else ())

    @rule(who=_ADMINISTRATOR, entity_id=ENTITY_IDS, back=_BACK)
    def revoke_since(self, who: str, entity_id: int, back: int | None) -> None:
        when = self._when(back) if back != -1 else self.evm.now + 1
        edges: tuple[int, ...] = ()
        now = self.evm.now
        was_revoked = entity_id in self.model.entities \
            and self.model.entities[entity_id].status is Status.REVOKED
        if self._act(who, "registry", "revokeSince", (entity_id, when),
                     lambda now, _: self.model.revoke_since(self._address(who), entity_id, when,
                                                            now)):
            self.backdated += 1
            revoked_from = self.model.entities[entity_id].revoked_from
            by = self.accounts[who].address
            revoked_since = ("EntityRevokedSince(uint64,uint40,address)", (entity_id,),
                             (["uint40", "address"], (revoked_from, by)))
            if was_revoked:
                self._expect_event("registry", *revoked_since)
            else:
                self._expect_event("registry",
                                   "EntityStatusChanged(uint64,uint8,uint40,address)",
                                   (entity_id,), (["uint8", "uint40", "address"],
                                                  (Status.REVOKED, now + 1, by)),
                                   revoked_since)
            edges = (revoked_from - 1, revoked_from)
        self._after_registry_change(entity_id, edges)

    @rule(who=st.one_of(_ADMINISTRATOR, _ISSUER_KEY), entity_id=ENTITY_IDS)
    def update_metadata(self, who: str, entity_id: int) -> None:
        """Replace an entity's metadata (its own trusted keys may, as its accreditor's)."""
        uri = f"https://example.org/{entity_id}/{self.evm.now}"
        digest = sha256(uri.encode()).digest()
        self._act(who, "registry", "updateMetadata", (entity_id, uri, digest),
                  lambda now, _: self.model.update_metadata(self._address(who), entity_id, uri,
                                                            digest, now))
        self._check_entity(entity_id)

    def _window(self, valid_from: int | None, valid_until: int | None) -> tuple[int, int]:
        """A key's (validFrom, validUntil) from offsets after now (None: 0); ``valid_until``
        -1 is the start itself (an empty window)."""
        now = self.evm.now
        start = 0 if valid_from is None else max(now + valid_from, 0)
        if valid_until is None:
            return start, 0
        return start, (max(start, now) if valid_until == -1 else now + valid_until)

    @rule(who=_ADMINISTRATOR, entity_id=ENTITY_IDS, key=_NEW_KEY, valid_from=_VALID_FROM,
          valid_until=_VALID_UNTIL)
    def add_key(self, who: str, entity_id: int, key: str, valid_from: int | None,
                valid_until: int | None) -> None:
        """Add ``key`` (an account) as an anchoring key; ``valid_until`` -1: the same time as
        the start (an empty window)."""
        start, end = self._window(valid_from, valid_until)
        if self._act(who, "registry", "addKey",
                     (entity_id, self.accounts[key].address, start, end),
                     lambda now, _: self.model.add_key(
                         self._address(who), entity_id, self._address(key), valid_from=start,
                         valid_until=end, now=now)):
            self._probe_key(key, "valid_from")
        self._check_key(key)

    @rule(who=st.one_of(_ADMINISTRATOR, _ISSUER_KEY), key=_ISSUER_KEY, until=_UNTIL)
    def shorten_key_expiry(self, who: str, key: str, until: int) -> None:
        valid_until = min(self.evm.now + until, FOREVER)
        if self._act(who, "registry", "shortenKeyExpiry",
                     (self.accounts[key].address, valid_until),
                     lambda now, _: self.model.shorten_key_expiry(
                         self._address(who), self._address(key), valid_until, now)):
            self._probe_key(key, "valid_until")
        self._check_key(key)

    def _probe_key(self, key: str | bytes, edge: str) -> None:
        """Ask about an anchoring key (an actor) or a signing key (an id) either side of the
        time ``edge`` of its record just changed (valid_from, valid_until, revoked_at)."""
        if isinstance(key, str):
            kind, subject = "key", to_canonical_address(self.accounts[key].address)
            record = self.model.keys[self._address(key)]
        else:
            kind, subject, record = "signing key", key, self.model.signing_keys[key]
        when = int(getattr(record, edge))
        self._probe([(kind, subject)], (when - 1, when))

    @rule(who=st.one_of(_ADMINISTRATOR, _ISSUER_KEY), key=_ISSUER_KEY, back=_BACK)
    def revoke_key(self, who: str, key: str, back: int | None) -> None:
        when = self._when(back) if back != -1 else self.evm.now + 1
        if self._act(who, "registry", "revokeKey", (self.accounts[key].address, when),
                     lambda now, _: self.model.revoke_key(self._address(who),
                                                          self._address(key), when, now)):
            self.backdated += when != 0
            self._probe_key(key, "revoked_at")
            self._expect_event("registry", "KeyRevoked(address,uint40,address)",
                               (int(self._address(key), 16),),
                               (["uint40", "address"],
                                (self.model.keys[self._address(key)].revoked_at,
                                 self.accounts[who].address)))
        self._check_key(key)
        record = self.model.keys.get(self._address(key))
        if record is not None:
            self._recheck_answers(record.entity_id)

    def _signing_key(self, choice: int) -> bytes:
        """Signing key id ``choice`` of those added so far; beyond them, one never added."""
        if choice < len(self.signing_keys):
            return keccak(self.signing_keys[choice])
        return keccak(b"never added")

    @rule(who=_ADMINISTRATOR, entity_id=ENTITY_IDS,
          form=st.sampled_from(["ed", "p256", "bad-header", "bad-length", "taken"]),
          valid_from=_VALID_FROM, valid_until=_VALID_UNTIL)
    def add_signing_key(self, who: str, entity_id: int, form: str, valid_from: int | None,
                        valid_until: int | None) -> None:
        public_key = (self.signing_keys[0] if form == "taken" and self.signing_keys
                      else signing_public_key(len(self.signing_keys),
                                              "ed" if form == "taken" else form))
        key_id = keccak(public_key)
        start, end = self._window(valid_from, valid_until)
        if self._act(who, "registry", "addSigningKey", (entity_id, public_key, start, end),
                     lambda now, _: self.model.add_signing_key(
                         self._address(who), entity_id, public_key, key_id=key_id,
                         valid_from=start, valid_until=end, now=now)):
            self._probe_key(key_id, "valid_from")
            self.signing_keys.append(public_key)
            if self.model is self.stage.model:  # preparing the stage
                self.stage.signing_keys.append(public_key)
        self._check_signing_key(key_id)

    @rule(who=st.one_of(_ADMINISTRATOR, _ISSUER_KEY), choice=st.integers(0, 4), until=_UNTIL)
    def shorten_signing_key_expiry(self, who: str, choice: int, until: int) -> None:
        key_id, valid_until = self._signing_key(choice), min(self.evm.now + until, FOREVER)
        if self._act(who, "registry", "shortenSigningKeyExpiry", (key_id, valid_until),
                     lambda now, _: self.model.shorten_signing_key_expiry(
                         self._address(who), key_id, valid_until, now)):
            self._probe_key(key_id, "valid_until")
        self._check_signing_key(key_id)

    @rule(who=st.one_of(_ADMINISTRATOR, _ISSUER_KEY), choice=st.integers(0, 4), back=_BACK)
    def revoke_signing_key(self, who: str, choice: int, back: int | None) -> None:
        key_id = self._signing_key(choice)
        when = self._when(back) if back != -1 else self.evm.now + 1
        if self._act(who, "registry", "revokeSigningKey", (key_id, when),
                     lambda now, _: self.model.revoke_signing_key(self._address(who), key_id,
                                                                  when, now)):
            self.backdated += when != 0
            self._probe_key(key_id, "revoked_at")
        self._check_signing_key(key_id)
        record = self.model.signing_keys.get(key_id)
        if record is not None:
            self._recheck_answers(record.entity_id)

    # ---------------------------------------------------------- recognition rules

    _RECOGNISER_KEY = st.one_of(
        *[st.sampled_from(("i1", "i2", "i3", "i1b", "bodyA", "bodyB"))] * 3, _ACTOR)
    _RECOGNISER = st.one_of(*[st.just(_OWN_ENTITY)] * 5, ENTITY_IDS)
    _SCOPE_BITS = st.one_of(*[st.sampled_from([7, 1, 2, 4, 3, 5, 6])] * 4,
                            st.sampled_from([0, 8, 15]))
    #: A recognition's validFrom relative to now (None: 0, any issuance time); windows may
    #: lie in the past.
    _RECOGNISED_FROM = st.sampled_from([None, None, -10**6, -100, 0, 100])
    #: Its validUntil relative to now (None: 0, open; "start": equal to validFrom, empty).
    _RECOGNISED_UNTIL = st.sampled_from([None, None, -50, 1, 3600, "start"])
    _KIND = st.sampled_from([1, 2, 4, 1, 4, 0, 3, 8])

    @rule(who=_RECOGNISER_KEY, recogniser=_RECOGNISER, subject=st.one_of(
          st.sampled_from([1, 2, 3, 4, 5]), ENTITY_IDS), scope=_SCOPE_BITS,
          valid_from=_RECOGNISED_FROM, valid_until=_RECOGNISED_UNTIL)
    def recognise(self, *, who: str, recogniser: int, subject: int, scope: int,
                  valid_from: int | None, valid_until: int | str | None) -> None:
        """``recognise`` by any account, for its own entity (:data:`_OWN_ENTITY`) or any."""
        recogniser_id = self._own(who, recogniser)
        now = self.evm.now
        start = 0 if valid_from is None else max(now + valid_from, 0)
        end = (0 if valid_until is None else start if valid_until == "start"
               else max(now + int(valid_until), 0))
        accepted = self._act(who, "registry", "recognise",
                             (recogniser_id, subject, scope, start, end),
                             lambda now, _: self.model.recognise(
                                 self._address(who), recogniser_id, subject, scope=scope,
                                 valid_from=start, valid_until=end, now=now))
        if accepted:
            # Only the recogniser's own keys trusted at that moment record its recognitions.
            assert self.model.is_trusted_key_of(self._address(who), recogniser_id, now)
            recognition_id = len(self.model.recognitions)
            recorded = self.model.recognitions[recognition_id]
            self._expect_event(
                "registry", "RecognitionRecorded(uint64,uint64,uint64,uint32,uint40,uint40,"
                "address)", (recognition_id, recogniser_id, subject),
                (["uint32", "uint40", "uint40", "address"],
                 (scope, start, recorded.valid_until, self.accounts[who].address)))
            self._probe_recognition(recognition_id)
        self._check_recognitions_between(recogniser_id, subject)

    @rule(who=st.sampled_from(("i1", "i2", "i3", "bodyA", "bodyB")),
          subject=st.sampled_from([1, 2, 3, 4, 5, 6]), scope=_SCOPE_BITS,
          valid_from=_RECOGNISED_FROM, valid_until=_RECOGNISED_UNTIL)
    def recognise_own(self, *, who: str, subject: int, scope: int, valid_from: int | None,
                      valid_until: int | str | None) -> None:
        """``recognise`` by an entity's own key for that entity: the case that is mostly
        accepted, drawn as often again as the general rule so that sequences build up
        recognitions (bodies' ones included) to search."""
        self.recognise(who=who, recogniser=_OWN_ENTITY, subject=subject, scope=scope,
                       valid_from=valid_from, valid_until=valid_until)

    @precondition(lambda self: bool(self.model.recognitions))
    @rule(who=st.one_of(st.just("owner"), st.just("owner"), _RECOGNISER_KEY),
          choice=st.integers(0, 5))
    def withdraw_recognition(self, who: str, choice: int) -> None:
        """``withdrawRecognition`` of one of the newest recognitions by any account ("owner":
        an account holding a key of its recogniser, if any); beyond them, an unknown id (0,
        or the next one)."""
        count = len(self.model.recognitions)
        recognition_id = count - choice if choice < count else (0 if choice % 2 else count + 1)
        if who == "owner":
            found = self.model.recognitions.get(recognition_id)
            owners = [actor for actor in ACTORS if found is not None
                      and self._own(actor, _OWN_ENTITY) == found.recogniser_id]
            who = owners[0] if owners else "s1"
        now = self.evm.now
        if self._act(who, "registry", "withdrawRecognition", (recognition_id,),
                     lambda now, _: self.model.withdraw_recognition(self._address(who),
                                                                    recognition_id, now)):
            withdrawn = self.model.recognitions[recognition_id]
            assert self.model.is_trusted_key_of(self._address(who), withdrawn.recogniser_id,
                                                now)
            assert withdrawn.withdrawn_at == now + 1
            self._expect_event(
                "registry", "RecognitionWithdrawn(uint64,uint64,uint64,uint40,address)",
                (recognition_id, withdrawn.recogniser_id, withdrawn.subject_id),
                (["uint40", "address"], (now + 1, self.accounts[who].address)))
            self._probe_recognition(recognition_id)
        self._check_recognition(recognition_id)

    @rule(recogniser=ENTITY_IDS, subject=ENTITY_IDS, kind=_KIND,
          when=st.one_of(st.integers(0, 20), st.sampled_from([-1, -2, -3])))
    def check_recognised_at(self, recogniser: int, subject: int, kind: int, when: int) -> None:
        """``recognisedAt`` for any pair, kind and time: ``when`` picks one of the edges of
        the recognitions recorded so far, or (negative) now, 0, or the largest uint40."""
        edges = self._recognition_edges()
        at = ({-1: self.evm.now, -2: 0, -3: FOREVER}[when] if when < 0
              else edges[when % len(edges)] if edges else self.evm.now)
        self._check_recognised_at(recogniser, subject, kind, at)

    @initialize(seed=st.integers(0, 2**31))
    def seed_questions(self, seed: int) -> None:
        self.question_seed = seed

    @invariant()
    def recognised_at_agrees(self) -> None:
        """After every step: ``recognisedAt`` for a random question (recogniser, subject, kind,
        issuance time at an edge of a recognition), drawn from a generator seeded by the step,
        so that a failure replays, is the model's answer, found in the same search order.
        (An invariant takes no drawn values: the sequence's seed comes from
        :meth:`seed_questions`.)"""
        self.steps += 1
        if not self.model.recognitions:
            # Nothing to find: every answer is "not recognised" (or self), which the rule
            # check_recognised_at asks too; skipping keeps the run's length.
            return
        # Not for secrets: a reproducible choice of question.
        draw = random.Random(self.question_seed * 7919 + self.steps)  # noqa: S311
        entities = len(self.model.entities)
        edges = self._recognition_edges() or [self.evm.now]
        # Mostly pairs that have recognitions, bodies included, and sometimes any pair.
        pairs = [(r.recogniser_id, r.subject_id) for r in self.model.recognitions.values()]
        if pairs and draw.random() < 0.5:
            recogniser, subject = draw.choice(pairs)
        else:
            recogniser, subject = draw.randint(1, entities), draw.randint(1, entities)
        # A member of either side instead of the entity itself, when one exists.
        recogniser = draw.choice(self._members(recogniser))
        subject = draw.choice(self._members(subject))
        self._check_recognised_at(recogniser, subject, draw.choice((1, 2, 4)),
                                  draw.choice(edges))

    # -------------------------------------------------------------- anchor rules

    def _after_anchor(self, key: str, root: int, accepted: bool, now: int) -> None:
        self._check_anchor(key, ROOTS[root])
        if accepted:
            record = self.model.anchors[(self.model.keys[self._address(key)].entity_id,
                                         ROOTS[root])]
            self._expect_event(
                "anchor", "RootAnchored(bytes32,uint64,address,uint64)",
                (int.from_bytes(ROOTS[root], "big"), record.entity_id),
                (["address", "uint64"], (self.accounts[key].address, record.tree_size)))
            # Only keys trusted at that moment anchor: the model says so, and so does the
            # chain's own answer for that time, kept and asked again later.
            code, _, kind = self.model.check_now(self._address(key), now)
            assert code is TrustCode.TRUSTED
            assert kind is Kind.TRUSTED_ISSUER
            trust = self._ask_trust("key", to_canonical_address(self.accounts[key].address), now)
            assert trust.trusted, f"{key} anchored at {now} but was not trusted then"

    @rule(who=_ISSUER_KEY, root=st.integers(0, len(ROOTS) - 1),
          tree_size=st.sampled_from([1, 1, 7, MAX_TREE_SIZE, 0, MAX_TREE_SIZE + 1]))
    def anchor(self, who: str, root: int, tree_size: int) -> None:
        now = self.evm.now
        accepted = self._act(who, "anchor", "anchor", (ROOTS[root], tree_size),
                             lambda now, block: self.model.anchor(self._address(who),
                                                                  ROOTS[root], tree_size, now,
                                                                  block))
        self._after_anchor(who, root, accepted, now)

    @rule(relayer=_ACTOR, signer=st.one_of(st.just("key"), _ACTOR), key=_ISSUER_KEY,
          nonce=st.sampled_from([0, 0, 0, 1, -1]), deadline=st.sampled_from([60, 60, 0, -1]),
          root=st.integers(0, len(ROOTS) - 1), tree_size=st.sampled_from([1, 1, 7, 0]))
    def anchor_with_signature(self, *, relayer: str, signer: str, key: str, nonce: int,
                              deadline: int, root: int, tree_size: int) -> None:
        """``signer`` ("key": the key itself, which makes the signature valid) signs a request
        naming ``key`` with the key's nonce plus ``nonce`` and a deadline ``deadline`` seconds
        from now; ``relayer`` submits it."""
        now = self.evm.now
        signer = key if signer == "key" else signer
        current = int(self._view("anchor", "nonces", self.accounts[key].address))
        assert current == self.model.nonces.get(self._address(key), 0)
        request_nonce, request_deadline = max(current + nonce, 0), now + deadline
        signature = _sign(self.stage, self.accounts[signer], self.accounts[key].address,
                          root=ROOTS[root], tree_size=tree_size, nonce=request_nonce,
                          deadline=request_deadline)
        accepted = self._act(
            relayer, "anchor", "anchorWithSignature",
            (ROOTS[root], tree_size, self.accounts[key].address, request_nonce,
             request_deadline, signature),
            lambda now, block: self.model.anchor_with_signature(
                self._address(key), signer_ok=signer == key, nonce=request_nonce,
                deadline=request_deadline, root=ROOTS[root], tree_size=tree_size, now=now,
                block=block))
        self._after_anchor(key, root, accepted, now)
        assert int(self._view("anchor", "nonces", self.accounts[key].address)) \
            == self.model.nonces.get(self._address(key), 0)

    @rule(who=_ACTOR)
    def use_nonce(self, who: str) -> None:
        used = self.model.nonces.get(self._address(who), 0)
        self._act(who, "anchor", "useNonce", (), lambda now, _: self.model.use_nonce(
            self._address(who)))
        self._expect_event("anchor", "NonceUsed(address,uint256)",
                           (int(self._address(who), 16),), (["uint256"], (used,)))
        assert int(self._view("anchor", "nonces", self.accounts[who].address)) \
            == self.model.nonces.get(self._address(who), 0)

    _ISSUER_CALLER = st.one_of(*[st.sampled_from(("i1", "i2", "i3", "i1b"))] * 3, _ACTOR)
    _ISSUER_ENTITY = st.one_of(st.just(_OWN_ENTITY), st.just(_OWN_ENTITY), ENTITY_IDS)

    @rule(who=_ISSUER_CALLER, entity_id=_ISSUER_ENTITY, status_list=_STATUS_LIST,
          indices=_INDICES, reason=st.sampled_from([0, 1, 255]))
    def revoke_credentials(self, who: str, entity_id: int, status_list: int, indices: bytes,
                           reason: int) -> None:
        """``revoke`` credentials of ``entity_id`` (:data:`_OWN_ENTITY`: the caller's own
        entity, 0 when it holds no key); so do the next two rules."""
        self._change_status("revoke", who, self._own(who, entity_id), status_list=status_list,
                            indices=indices, reason=reason)

    @rule(who=_ISSUER_CALLER, entity_id=_ISSUER_ENTITY, status_list=_STATUS_LIST,
          indices=_INDICES, reason=st.sampled_from([0, 1, 255]))
    def suspend_credentials(self, who: str, entity_id: int, status_list: int, indices: bytes,
                            reason: int) -> None:
        self._change_status("suspend", who, self._own(who, entity_id), status_list=status_list,
                            indices=indices, reason=reason)

    @rule(who=_ISSUER_CALLER, entity_id=_ISSUER_ENTITY, status_list=_STATUS_LIST,
          indices=_INDICES, reason=st.sampled_from([0, 1, 255]))
    def reinstate_credentials(self, who: str, entity_id: int, status_list: int, indices: bytes,
                              reason: int) -> None:
        self._change_status("reinstate", who, self._own(who, entity_id), status_list=status_list,
                            indices=indices, reason=reason)

    def _own(self, who: str, entity_id: int) -> int:
        if entity_id != _OWN_ENTITY:
            return entity_id
        record = self.model.keys.get(self._address(who))
        return 0 if record is None else record.entity_id

    @rule(who=st.one_of(*[st.sampled_from(("admin", "admin2"))] * 3, _ACTOR),
          entity_id=st.one_of(st.sampled_from([3, 4, 5]), ENTITY_IDS), status_list=_STATUS_LIST,
          indices=_INDICES, reason=st.sampled_from([0, 1, 255]))
    def lift_revocations(self, who: str, entity_id: int, status_list: int, indices: bytes,
                         reason: int) -> None:
        self._change_status("liftRevocations", who, entity_id, status_list=status_list,
                            indices=indices, reason=reason)

    def _change_status(self, action: str, who: str, entity_id: int, *, status_list: int,
                       indices: bytes, reason: int) -> None:
        now = self.evm.now
        accepted = self._act(who, "anchor", action, (entity_id, status_list, indices, reason),
                             lambda now, _: self.model.change_status(
                                 action, self._address(who), entity_id,
                                 status_list=status_list, indices=indices, now=now))
        if accepted:
            # Only the issuer's own trusted keys change its status; only root administrators
            # lift revocations.
            if action == "liftRevocations":
                assert self._address(who) in self.model.root_admins
            else:
                assert self.model.is_trusted_key_of(self._address(who), entity_id, now)
            # One past-tense event, with the indices as given, which the list watchers read.
            self._expect_event("anchor", f"{_STATUS_EVENTS[action]}(uint64,uint32,bytes,uint8,"
                               "address)", (entity_id, status_list),
                               (["bytes", "uint8", "address"],
                                (indices, reason, self.accounts[who].address)))
        words = {int.from_bytes(indices[at:at + 4], "big") // 256
                 for at in range(0, len(indices) - len(indices) % 4, 4)}
        self.touched_words.update((entity_id, status_list, word) for word in words
                                  if word < STATUS_LIST_WORDS)
        # The words just written, and every other word of the list written before: a change
        # touches nothing else.
        for where in sorted(self.touched_words):
            if where[:2] == (entity_id, status_list):
                self._check_words(*where)

    # ---------------------------------------------------------------- time rules

    @rule(seconds=st.sampled_from([1, 2, 59, 3600, 30 * 86400]))
    def advance_time(self, seconds: int) -> None:
        self.evm.advance(seconds)

    @rule(mode=st.sampled_from(["hold blocks", "mine", "refuse by transaction"]))
    def switch(self, mode: str) -> None:
        """"hold blocks": from now on the next transactions share a block (and a second), a
        few at a time; "mine": close the pending block and stop holding; "refuse by
        transaction": from now on refused actions are sent as transactions (mined, reverted)
        instead of calls."""
        if mode == "hold blocks":
            self.evm.hold = True
        elif mode == "mine":
            self.evm.hold = False
            self.evm.mine()
        else:
            self.refuse_by_transaction = True

    # ---------------------------------------------------------------- view rules

    @rule(key=st.one_of(_ISSUER_KEY, st.integers(0, 4)),
          back=st.sampled_from([0, 1, 2, 10, 100, 10**4, 10**6]))
    def check_trusted_at(self, key: str | int, back: int) -> None:
        """Ask whether a key was trusted ``back`` seconds ago: an anchoring key (an account),
        or signing key number ``key`` (an int, see :meth:`_signing_key`)."""
        when = max(self.evm.now - back, 0)
        if isinstance(key, int):
            self._ask_trust("signing key", self._signing_key(key), when)
            return
        self._ask_trust("key", to_canonical_address(self.accounts[key].address), when)
        self._check_key_now(key)

    @rule(entity_id=st.one_of(st.sampled_from([3, 4, 5]), ENTITY_IDS), status_list=_STATUS_LIST,
          index=_INDEX, first=st.sampled_from([0, 1, 510, 511, 512]),
          count=st.sampled_from([0, 1, 2, 3]))
    def check_status(self, entity_id: int, status_list: int, index: int, first: int,
                     count: int) -> None:
        """``statusOf`` one entry, and ``statusWords`` of a range of words (the limits
        included)."""
        ok, value = self._raw_view("anchor", "statusOf", entity_id, status_list, index)
        if index >= STATUS_LIST_SIZE:
            assert (ok, value) == (False, "StatusIndexOutOfRange")
        else:
            assert ok, value
            bits = decode(StatusBits, value)
            assert (bits.revoked, bits.suspended) == self.model.status_of(
                entity_id, status_list, index)
        ok, value = self._raw_view("anchor", "statusWords", entity_id, status_list, first,
                                   count)
        expected: tuple[tuple[int, ...], tuple[int, ...]] | str
        try:
            expected = self.model.status_words(entity_id, status_list, first, count)
        except Refused as refusal:
            expected = refusal.name
        if isinstance(expected, str):
            assert (ok, value) == (False, expected)
            return
        assert ok, value
        got = decode(StatusWords, value)
        assert (got.revoked, got.suspended) == expected

    @rule(key=_ISSUER_KEY, leaf=st.integers(0, len(LEAVES) - 1), leaf_index=st.sampled_from([0, 1]))
    def check_credential(self, key: str, leaf: int, leaf_index: int) -> None:
        root = ROOTS[leaf + 1]
        got = decode(CredentialCheck, self._view(
            "anchor", "checkCredential", self.accounts[key].address, LEAVES[leaf], leaf_index,
            [], root))
        assert got == self._expected_check(key, leaf, leaf_index)

    def _expected_check(self, key: str, leaf: int, leaf_index: int) -> CredentialCheck:
        info = self.model.anchor_of(self._address(key), ROOTS[leaf + 1])
        if not info.anchored:
            return CredentialCheck(status=CredentialStatus(
                anchored=False, entity_id=0, key=info.key, anchored_at=0, block_number=0,
                tree_size=0, index_in_tree=False, issuer_trusted_at_anchoring=False,
                trust_code=TrustCode.TRUSTED, status_list=0, status_list_index=0,
                revoked=False, suspended=False), included=False)
        trust = self.model.trusted_at(info.key, info.anchored_at)
        leaf_input = LEAVES[leaf]
        status_list = index = 0
        revoked = suspended = False
        if len(leaf_input) >= 8:  # the status position the leaf binds: its last 8 bytes
            status_list = int.from_bytes(leaf_input[-8:-4], "big")
            index = int.from_bytes(leaf_input[-4:], "big")
            if index < STATUS_LIST_SIZE:
                revoked, suspended = self.model.status_of(info.entity_id, status_list, index)
        return CredentialCheck(status=CredentialStatus(
            anchored=True, entity_id=info.entity_id, key=info.key, anchored_at=info.anchored_at,
            block_number=info.block_number, tree_size=info.tree_size,
            index_in_tree=leaf_index < info.tree_size,
            issuer_trusted_at_anchoring=trust.trusted, trust_code=trust.code,
            status_list=status_list, status_list_index=index, revoked=revoked,
            suspended=suspended), included=info.tree_size == 1 and leaf_index == 0)

    @rule(entity_id=ENTITY_IDS)
    def check_entity(self, entity_id: int) -> None:
        self._check_entity(entity_id)
        self._check_history(entity_id)
        if entity_id in self.model.entities:
            keys = self._view("registry", "entityKeys", entity_id)
            assert [str(k).lower() for k in keys] == self.model.entity_keys[entity_id]
            assert list(self._view("registry", "entitySigningKeys", entity_id)) \
                == self.model.entity_signing_keys[entity_id]

    @precondition(lambda self: self.actions_since_sweep >= _SWEEP_EVERY)
    @rule()
    def check_everything(self) -> None:
        """Every view of everything the sequence could have changed (after a few actions:
        it reads some fifty views)."""
        self.actions_since_sweep = 0
        assert self._view("registry", "entityCount") == len(self.model.entities)
        assert self._view("registry", "keyCount") == len(self.model.key_list)
        assert self._view("registry", "signingKeyCount") == len(self.model.signing_keys)
        for entity_id in range(len(self.model.entities) + 2):
            self._check_entity(entity_id)
        for who in ACTORS:
            if self._address(who) in self.model.keys or who in ("s13", "s14"):
                self._check_key(who)
        for public_key in self.signing_keys:
            self._check_signing_key(keccak(public_key))
        for index in range(len(self.stage.model.key_list), len(self.model.key_list)):
            key = self.model.key_list[index]  # the keys this sequence added
            assert str(self._view("registry", "keyAt", index)).lower() == key
            assert self._view("registry", "entityOfKey", key) == self.model.keys[key].entity_id
        for entity_id, key_ids in self.model.entity_signing_keys.items():
            if len(key_ids) > len(self.stage.model.entity_signing_keys.get(entity_id, ())):
                infos = decode_all(SigningKeyInfo, self._view(
                    "registry", "entitySigningKeyInfos", entity_id))
                assert infos == tuple(self.model.signing_key_info(k) for k in key_ids)
        for (entity_id, root) in self.model.anchors:
            record = self.model.anchors[(entity_id, root)]
            got = self._read(AnchorInfo, "anchor", "anchorOf", record.key, root)
            assert got == self.model.anchor_of(record.key, root)
        for where in sorted(self.touched_words):
            self._check_words(*where)
        assert self._view("registry", "recognitionCount") == len(self.model.recognitions)
        for recogniser, subject in self.model.pair_recognitions:
            self._check_recognitions_between(recogniser, subject)
        self._recheck_answers()

    def teardown(self) -> None:
        self._recheck_answers()


def _sign(stage: Stage, signer: LocalAccount, key: str, *, root: bytes, tree_size: int,
          nonce: int, deadline: int) -> bytes:
    """``signer``'s EIP-712 signature of an anchoring request naming ``key``: the project's
    own request signing when the signer is the key, else the same request signed by another
    account."""
    anchor = stage.chain.w3.eth.contract(
        address=stage.chain.w3.to_checksum_address(stage.addresses["anchor"]),
        abi=load_artifact("CredentialAnchor").abi)
    if signer.address == key:
        return sign_anchor(anchor, signer, root, tree_size=tree_size, nonce=nonce,
                           deadline=deadline, chain_id=stage.chain.chain_id)
    typed: dict[str, Any] = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"},
                             {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "Anchor": [{"name": "root", "type": "bytes32"},
                       {"name": "treeSize", "type": "uint64"},
                       {"name": "key", "type": "address"},
                       {"name": "nonce", "type": "uint256"},
                       {"name": "deadline", "type": "uint256"}],
        },
        "primaryType": "Anchor",
        "domain": {"name": "CredentialAnchor", "version": "2", "chainId": stage.chain.chain_id,
                   "verifyingContract": anchor.address},
        "message": {"root": root, "treeSize": tree_size, "key": key, "nonce": nonce,
                    "deadline": deadline},
    }
    return bytes(signer.sign_message(encode_typed_data(full_message=typed)).signature)


# ---------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    prepared = build_stage()
    try:
        yield prepared
    finally:
        prepared.chain.close()


def test_registry_and_anchor_state_machine(stage: Stage, sizes: RunSizes) -> None:
    """Random sequences of registry and anchor actions by any account agree with the model
    and keep the invariants (module docstring), step by step; as many as the run size says."""
    sequences = 0

    def factory() -> RegistryMachine:
        nonlocal sequences
        sequences += 1
        return RegistryMachine(stage)

    # Hypothesis takes any factory of machines, though its annotation names the class.
    run_state_machine_as_test(
        cast("type[RuleBasedStateMachine]", factory),
        settings=settings(max_examples=sizes.state_machine_sequences,
                          stateful_step_count=_STEPS, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]))
    assert sequences >= sizes.state_machine_sequences
