"""The anchoring pipeline: cut batches, anchor their roots, wait for confirmations, record the
anchors.

Every step starts from what the database and the chain say, not from memory, so the pipeline
can be killed at any point and restarted:

1. ``cut_due`` puts waiting credentials into batches (by size or age); the batch and its tree
   are committed before anything is sent.
2. ``advance`` asks the chain first. If the root is already anchored for the issuer (because a
   transaction went out before a crash), it adopts that anchor instead of sending another; a
   root is never anchored twice. Otherwise it sends the anchoring transaction (directly with
   the issuer's key, or signed by it and submitted by a relayer) and records its hash.
3. Once the anchor has the configured number of confirmations, the batch is marked anchored
   with its transaction, block number and block hash, and its receipts can be served.
4. Anchors stay watched for ``reorg_window`` blocks: if the chain no longer has the stored
   block hash at that height (a reorganisation), the batch goes back to built, and step 2
   adopts the anchor where the new chain has it, or anchors again. Receipts naming the
   dropped block stop verifying; the new ones verify.

Failures of one batch (RPC errors, a revert) are logged and retried with backoff; they do not
stop the other batches.

A batch whose issuer the registry does not trust now (its key revoked or expired, the issuer or
a body above it suspended or revoked) is not sent: the contract would refuse it. It waits, with
the reason kept in memory (:meth:`Pipeline.blocked_reason`), and is sent as soon as the
registry trusts the issuer again (checked at most once a second per issuer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3Exception

from anchor_service.chain import Deployment, Transactor, check_contract_versions, sign_anchor
from anchor_service.errors import (
    AnchorServiceError,
    BatchBlockedError,
    ChainError,
    ContractVersionError,
    RevertError,
)
from anchor_service.metrics import Metrics
from anchor_service.store import BatchRecord, BatchState, Lease, Store
from anchor_service.trust import IssuerTrustView
from verifier.contract_types import AnchorInfo, read

__all__ = ["WRONG_CONTRACTS", "BatchPolicy", "BlockedBatches", "Pipeline"]

#: How :attr:`Pipeline.chain_problem` begins when the deployment's contracts are not 2.x.
WRONG_CONTRACTS: Final = "wrong contracts: "

log = logging.getLogger("anchor_service.pipeline")

_IMMEDIATE_TRIES = 3  # tries of one step before a transport or RPC error means backing off
_CHAIN_RETRY_MAX = 30.0  # seconds between checks of an unreachable or wrong chain node, at most


@dataclass(frozen=True)
class BlockedBatches:
    """An issuer's batches that cannot be anchored now, for one reason."""

    issuer_id: int
    issuer: str  # the issuer's name in this service
    reason: str
    batch_ids: tuple[int, ...]  # oldest first


@dataclass(frozen=True)
class BatchPolicy:
    """When to cut batches and when an anchor counts."""

    max_size: int = 10_000  # cut as soon as this many credentials wait
    max_age: float = 10.0  # ... or once the oldest has waited this long (seconds)
    confirmations: int = 1  # blocks, the anchoring block included
    resend_after: float = 120.0  # seconds before an unmined transaction is sent again
    signature_ttl: int = 3600  # seconds a relayed anchoring signature stays valid
    reorg_window: int = 128  # blocks during which an anchor is checked for reorganisations
    reorg_check_every: float = 2.0  # seconds between those checks

    def __post_init__(self) -> None:
        if self.max_size < 1 or self.max_age < 0 or self.confirmations < 1:
            raise AnchorServiceError("batch policy needs max_size >= 1, max_age >= 0, "
                                     "confirmations >= 1")


class Pipeline:
    """Moves the batches of the issuers whose keys it holds from built to anchored."""

    def __init__(
        self,
        store: Store,
        w3: Web3,
        deployment: Deployment,
        signers: Mapping[int, LocalAccount],
        policy: BatchPolicy | None = None,
        *,
        relayer: LocalAccount | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        chain_checked: bool = False,
    ) -> None:
        self.store = store
        self.w3 = w3
        # Nothing is sent before the node has been seen to be the deployment's chain
        # (``chain_checked``: the caller has seen it): see :meth:`check_chain`.
        self._chain_id = deployment.chain_id
        self._deployment = deployment
        self._chain_checked = chain_checked
        self._chain_problem: str | None = None if chain_checked else "not checked yet"
        self._chain_retry_at = 0.0  # time.monotonic() of the next check
        self._chain_delay = 0.0
        #: The chain id the node answered last (None: it has not answered).
        self.node_chain_id: int | None = deployment.chain_id if chain_checked else None
        self.policy = policy or BatchPolicy()
        registry, self._anchor = deployment.contracts(w3)
        #: The registry's trust of each issuer now (cached a second): shared with the API,
        #: which refuses submissions for untrusted issuers and shows why batches wait.
        self.trust = IssuerTrustView(store, registry)
        self._blocked: dict[int, tuple[int, str]] = {}  # batch id -> (issuer id, reason)
        self._clock = clock
        self._metrics = metrics
        self._signers: dict[int, LocalAccount] = {}
        self._transactors: dict[int, Transactor] = {}
        self._relayer = Transactor(w3, relayer) if relayer is not None else None
        self._retry_at: dict[int, tuple[float, float]] = {}  # batch id -> (when, delay)
        self._reorg_check_at: dict[int, float] = {}  # issuer id -> next check
        self._lease: Lease | None = None  # the issuer lease of the round in progress
        # One round at a time within this process: two rounds must not both send the same
        # batch. Cutting needs no round: Store.cut_batch is one transaction, serialised per
        # issuer in the database.
        self._round = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set: start the next round without waiting
        self._thread: threading.Thread | None = None
        for issuer_id, account in signers.items():
            self.add_signer(issuer_id, account)

    def add_signer(self, issuer_id: int, account: LocalAccount) -> None:
        """Anchor for ``issuer_id`` with ``account`` from now on."""
        issuer = self.store.issuer(issuer_id)
        if account.address.lower() != issuer.key_address.lower():
            raise AnchorServiceError(
                f"the key given for issuer {issuer.name} is {account.address}, but the "
                f"issuer anchors with {issuer.key_address}"
            )
        with self._round:
            self._signers[issuer_id] = account
            self._transactors[issuer_id] = Transactor(self.w3, account)

    # ------------------------------------------------------------------ cutting

    def cut_due(self) -> list[BatchRecord]:
        """Cut every batch that is due by size or by age."""
        with self._round:
            return self._cut_due()

    def _cut_due(self) -> list[BatchRecord]:
        cut = []
        now = self._clock()
        for issuer_id in self._signers:
            while True:
                count, oldest = self.store.pending(issuer_id, up_to=self.policy.max_size)
                full = count >= self.policy.max_size
                old = count > 0 and oldest is not None and now - oldest >= self.policy.max_age
                if not (full or old):
                    break
                batch = self.store.cut_batch(issuer_id, self.policy.max_size)
                if batch is None:
                    break
                self._cut(batch)
                cut.append(batch)
        return cut

    def _cut(self, batch: BatchRecord) -> None:
        log.info("batch cut", extra={"batch": batch.id, "size": batch.size})
        if self._metrics is not None:
            self._metrics.batch_size.observe(batch.size)

    def cut_now(self, issuer_id: int) -> list[BatchRecord]:
        """Cut batches of everything the issuer has waiting, whatever its age. Does not wait
        for a round in progress (which may be waiting for the chain node): the batches are
        built and committed here, and a round sends them (:meth:`wake` starts one)."""
        return self._cut_all(issuer_id)

    def _cut_all(self, issuer_id: int) -> list[BatchRecord]:
        cut = []
        while (batch := self.store.cut_batch(issuer_id, self.policy.max_size)) is not None:
            self._cut(batch)
            cut.append(batch)
        return cut

    # ---------------------------------------------------------------- the chain

    @property
    def chain_problem(self) -> str | None:
        """Why nothing is anchored yet: the node has not answered since start, or it is not
        the deployment's chain. None once it has been seen to be the deployment's chain. The
        text names no host (it is shown on ``/readyz``)."""
        return self._chain_problem

    def check_chain(self) -> bool:
        """Whether the node is the deployment's chain, with the deployment's contracts of
        version 2.x there: asked until it answers that it is, with backoff (1 s, doubling, at
        most 30 s between tries); then always True."""
        if self._chain_checked:
            return True
        now = time.monotonic()
        if now < self._chain_retry_at:
            return False
        try:
            chain_id = int(self.w3.eth.chain_id)
        except (Web3Exception, OSError) as exc:
            self._chain_problem = f"unreachable: {type(exc).__name__}"
            self._chain_later(now)
            log.warning("chain node unreachable, not anchoring; next try in %.0f s: %s",
                        self._chain_delay, exc)
            return False
        self.node_chain_id = chain_id
        if chain_id != self._chain_id:
            problem = (f"wrong chain: the deployment is for chain {self._chain_id}, the node "
                       f"is chain {chain_id}")
            if problem != self._chain_problem:
                log.error("not anchoring: %s", problem)
            self._chain_problem = problem
            self._chain_later(now)
            return False
        if not self._contracts_ok(now):
            return False
        if self._chain_problem != "not checked yet":
            log.info("chain node reachable (chain %d): anchoring", chain_id)
        self._chain_checked, self._chain_problem = True, None
        return True

    def _contracts_ok(self, now: float) -> bool:
        """Whether the deployment's contracts on the node are 2.x (see
        :func:`~anchor_service.chain.check_contract_versions`): a 1.x anchor has the same
        ``anchor`` function, and would take 2.x leaves that neither verify nor change status
        there."""
        try:
            check_contract_versions(self.w3, self._deployment)
        except ContractVersionError as exc:
            problem = f"{WRONG_CONTRACTS}{exc}"
            if problem != self._chain_problem:
                log.error("not anchoring: %s", problem)
            self._chain_problem = problem
        except (Web3Exception, OSError) as exc:
            self._chain_problem = f"unreachable: {type(exc).__name__}"
        else:
            return True
        self._chain_later(now)
        return False

    def _chain_later(self, now: float) -> None:
        self._chain_delay = min(max(self._chain_delay * 2, 1.0), _CHAIN_RETRY_MAX)
        self._chain_retry_at = now + self._chain_delay

    # ---------------------------------------------------------------- anchoring

    def advance(self) -> list[BatchRecord]:
        """Take every unfinished batch one step further; return those now anchored."""
        with self._round:
            return self._advance_all()

    def _advance_all(self) -> list[BatchRecord]:
        if not self.check_chain():
            return []  # batches wait, built, until the node is the deployment's chain
        unfinished = [BatchState.BUILT, BatchState.SENT]
        anchored = []
        for issuer_id in list(self._signers):
            # One process at a time sends an issuer's transactions (replicas share the
            # database), and reads its batches only once it holds the lease, since another
            # replica may have moved them on meanwhile.
            with self.store.issuer_lease(issuer_id) as lease:
                if not lease.held:
                    continue
                self._lease = lease
                try:
                    self._watch_for_reorgs(issuer_id)
                    batches = self.store.batches(issuer_id=issuer_id, states=unfinished,
                                                 limit=10_000)
                    self._forget_blocked(issuer_id, {b.id for b in batches})
                    anchored += self._advance_issuer(reversed(batches))
                finally:
                    self._lease = None
        return anchored

    def _watch_for_reorgs(self, issuer_id: int) -> None:
        """Send back to built every recent anchor whose block the chain no longer has."""
        now = self._clock()
        if now < self._reorg_check_at.get(issuer_id, 0.0):
            return
        self._reorg_check_at[issuer_id] = now + self.policy.reorg_check_every
        try:
            latest = int(self.w3.eth.block_number)
            hashes: dict[int, bytes | None] = {}
            for batch in self.store.recent_anchors(issuer_id, latest - self.policy.reorg_window):
                if batch.block_number is None:
                    continue
                if batch.block_number not in hashes:
                    hashes[batch.block_number] = self._block_hash(batch.block_number)
                # No block at that height (a node behind the others) proves nothing: only
                # another block where the anchor's was does.
                seen = hashes[batch.block_number]
                if seen is not None and seen != batch.block_hash:
                    self.store.mark_reorganised(batch.id)
                    log.warning("batch %s: its anchor in block %s was reorganised away; "
                                "anchoring it again", batch.id, batch.block_number,
                                extra={"batch": batch.id})
                    if self._metrics is not None:
                        self._metrics.reorgs.inc()
        except (AnchorServiceError, Web3Exception, OSError) as exc:
            log.warning("reorganisation check failed: %s", exc)

    def _block_hash(self, number: int) -> bytes | None:
        try:
            return bytes(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def _advance_issuer(self, batches: Iterable[BatchRecord]) -> list[BatchRecord]:
        anchored = []
        now = self._clock()
        for batch in batches:
            when, delay = self._retry_at.get(batch.id, (0.0, 0.0))
            if now < when:
                continue
            try:
                if self._advance_retrying(batch):
                    anchored.append(batch)
                self._retry_at.pop(batch.id, None)
                self._blocked.pop(batch.id, None)
            except BatchBlockedError as exc:
                self._block(batch, str(exc))
            except (AnchorServiceError, Web3Exception, OSError) as exc:
                if isinstance(exc, RevertError) and exc.name == "KeyNotTrusted":
                    # The registry changed within the trust cache's second: ask it afresh,
                    # and wait like any blocked batch (no backoff).
                    self.trust.forget(batch.issuer_id)
                    self._block(batch, self.trust.refusal(batch.issuer_id)
                                or f"issuer not trusted: the anchor contract refuses it: {exc}")
                    continue
                if isinstance(exc, RevertError):
                    self._blocked[batch.id] = (batch.issuer_id,
                                               f"the anchor contract refuses it: {exc}")
                delay = min(max(delay * 2, 1.0), 60.0)
                self._retry_at[batch.id] = (now + delay, delay)
                log.warning("batch %s not advanced, retrying in %.0f s: %s", batch.id, delay,
                            exc, extra={"batch": batch.id})
                if self._metrics is not None:
                    self._metrics.errors.labels(kind=type(exc).__name__).inc()
        return anchored

    def _advance_retrying(self, batch: BatchRecord) -> bool:
        """:meth:`_advance`, tried again at once after a transport or RPC error (a dropped
        connection, a node's internal error): one flaky call among the several a step makes
        should not cost the batch a backoff. Safe because each try starts from the chain and
        the database: a transaction is recorded before it is broadcast, so a try after a lost
        answer finds it (pending, mined, or unknown to the node) instead of sending another."""
        for _ in range(_IMMEDIATE_TRIES - 1):
            try:
                return self._advance(batch)
            except (Web3Exception, OSError):
                pass
            fresh = self.store.batch(batch.id)
            if fresh is None or fresh.state is BatchState.ANCHORED:
                return False
            batch = fresh
        return self._advance(batch)  # the last try: its error means backing off

    def run_once(self) -> list[BatchRecord]:
        """One round: cut what is due, then advance everything."""
        with self._round:
            self._cut_due()
            return self._advance_all()

    def _advance(self, batch: BatchRecord) -> bool:
        issuer = self.store.issuer(batch.issuer_id)
        info = read(AnchorInfo, self._anchor.functions.anchorOf(issuer.key_address, batch.root))
        if info.anchored:
            return self._confirm(batch, info)
        if batch.state is BatchState.SENT and not self._lost(batch):
            return False  # still on its way
        refusal = self.trust.refusal(batch.issuer_id)  # None (unknown): the contract decides
        if refusal is not None:
            raise BatchBlockedError(refusal)
        if self.store.has_unplaced(batch.id):
            # Built with 1.x leaves (no status position) and then lost or reorganised away:
            # anchored here, its receipts could be neither served nor verified.
            raise BatchBlockedError(
                "built on CredentialAnchor 1.x leaves, without status positions: it is not "
                "sent to this 2.x anchor (anchor it on its 1.x deployment with anchor-service "
                "0.1.x)")
        sender, signed = self._sign(batch, replace=batch.state is BatchState.SENT)
        if self._lease is not None:
            self._lease.confirm()  # still the one process sending for this issuer
        # Recorded before it leaves: if the answer to the broadcast is lost, or this process
        # dies, the next try finds the transaction by its hash instead of sending another.
        self.store.mark_sent(batch.id, bytes(signed.hash))
        tx_hash = sender.broadcast(signed)
        log.info("anchor sent", extra={"batch": batch.id, "tx": tx_hash.hex()})
        return False

    def _block(self, batch: BatchRecord, reason: str) -> None:
        previous = self._blocked.get(batch.id)
        self._blocked[batch.id] = (batch.issuer_id, reason)
        if previous is None or previous[1] != reason:  # once per reason, not every round
            log.warning("batch %s cannot be anchored: %s", batch.id, reason,
                        extra={"batch": batch.id})

    def _forget_blocked(self, issuer_id: int, unfinished: set[int]) -> None:
        """Drop the reasons kept for the issuer's batches that are finished now (here or by
        another replica)."""
        for batch_id, (owner, _) in list(self._blocked.items()):
            if owner == issuer_id and batch_id not in unfinished:
                del self._blocked[batch_id]

    def blocked_reason(self, batch: BatchRecord) -> str | None:
        """Why an unfinished batch cannot be anchored now, or None. The registry's trust of
        its issuer (asked at most once a second, so any replica answers alike) comes first;
        then a refusal this process met sending it."""
        if batch.state is BatchState.ANCHORED:
            return None
        refusal = self.trust.refusal(batch.issuer_id)
        if refusal is not None:
            return refusal
        kept = self._blocked.get(batch.id)
        if kept is None or kept[1].startswith("issuer not trusted"):
            return None  # trusted again: the batch goes out in the next round
        return kept[1]

    def blocked(self) -> list[BlockedBatches]:
        """Every unfinished batch that cannot be anchored now, grouped by issuer and reason
        (from the database and the registry, so that every replica reports alike)."""
        groups: dict[tuple[int, str], list[int]] = {}
        names: dict[int, str] = {}
        for issuer in self.store.issuers():
            names[issuer.id] = issuer.name
            batches = self.store.batches(issuer_id=issuer.id,
                                         states=[BatchState.BUILT, BatchState.SENT],
                                         limit=10_000)
            for batch in reversed(batches):
                reason = self.blocked_reason(batch)
                if reason is not None:
                    groups.setdefault((issuer.id, reason), []).append(batch.id)
        return [BlockedBatches(issuer_id, names[issuer_id], reason, tuple(ids))
                for (issuer_id, reason), ids in sorted(groups.items())]

    def _lost(self, batch: BatchRecord) -> bool:
        """Whether the batch's transaction failed or vanished, so it must be sent again."""
        if batch.tx_hash is None:
            return True
        try:
            receipt = self.w3.eth.get_transaction_receipt(HexBytes(batch.tx_hash))
        except TransactionNotFound:
            try:
                self.w3.eth.get_transaction(HexBytes(batch.tx_hash))
            except TransactionNotFound:
                return True  # the node never got it (the broadcast failed), or dropped it
            sent_at = batch.sent_at or 0.0  # pending: replace it only once it looks stuck
            return self._clock() - sent_at >= self.policy.resend_after
        # Mined but not anchored: it reverted.
        return int(receipt["status"]) != 1

    def _sign(self, batch: BatchRecord, *, replace: bool) -> tuple[Transactor, SignedTransaction]:
        """The batch's anchoring transaction, signed, with who sends it; ``replace`` when an
        earlier one is lost (same nonce, higher fees: at most one of them can be mined)."""
        key = self._signers[batch.issuer_id]
        if self._relayer is None:
            call = self._anchor.functions.anchor(batch.root, batch.size)
            sender = self._transactors[batch.issuer_id]
            return sender, sender.sign(call, replace=replace)
        nonce = int(self._anchor.functions.nonces(key.address).call())
        deadline = int(self.w3.eth.get_block("latest")["timestamp"]) + self.policy.signature_ttl
        signature = sign_anchor(self._anchor, key, batch.root, tree_size=batch.size,
                                nonce=nonce, deadline=deadline)
        call = self._anchor.functions.anchorWithSignature(
            batch.root, batch.size, key.address, nonce, deadline, signature)
        return self._relayer, self._relayer.sign(call, replace=replace)

    def _confirm(self, batch: BatchRecord, info: AnchorInfo) -> bool:
        block_number = info.block_number
        # The transaction that anchored it, from the chain's own event: the recorded hash may
        # be of a replacement that lost the race, or of a send whose answer was lost.
        tx_hash = self._find_anchor_tx(batch, block_number)
        depth = int(self.w3.eth.block_number) - block_number + 1
        if depth < self.policy.confirmations:
            if batch.state is BatchState.BUILT or batch.tx_hash != tx_hash:
                self.store.mark_sent(batch.id, tx_hash)  # adopted: the one that was mined
            return False
        block = self.w3.eth.get_block(block_number)
        self.store.mark_anchored(batch.id, tx_hash=tx_hash, block_number=block_number,
                                 block_hash=bytes(block["hash"]),
                                 anchored_at=float(info.anchored_at))
        log.info("batch anchored", extra={"batch": batch.id, "block": block_number})
        if self._metrics is not None:
            self._metrics.anchor_latency.observe(max(0.0, self._clock() - batch.created_at))
            try:  # a metric only: the batch is anchored whatever this read does
                receipt = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
                self._metrics.gas_used.inc(int(receipt["gasUsed"]))
            except (Web3Exception, OSError) as exc:
                log.warning("gas of batch %s not counted: %s", batch.id, exc)
        return True

    def _find_anchor_tx(self, batch: BatchRecord, block_number: int) -> bytes:
        """The transaction that anchored the batch's root: from the RootAnchored event."""
        issuer = self.store.issuer(batch.issuer_id)
        logs = self._anchor.events.RootAnchored().get_logs(
            from_block=block_number, to_block=block_number,
            argument_filters={"root": batch.root, "entityId": issuer.entity_id},
        )
        if not logs:
            raise ChainError(f"no RootAnchored event for batch {batch.id} in block {block_number}")
        return bytes(logs[0]["transactionHash"])

    # --------------------------------------------------------------- background

    def start(self, interval: float = 0.5) -> None:
        """Run rounds in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True,
                                        name="anchor-pipeline")
        self._thread.start()

    def wake(self) -> None:
        """Start the background loop's next round now instead of after its interval; one
        woken during a round starts as soon as that round ends. Returns at once."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            # Cleared before the round: a wake during the round means the batches it asked
            # for may have been cut after this round listed its batches, so another follows.
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # keep the loop alive; the next round starts from the database
                log.exception("pipeline round failed")
            self._wake.wait(interval)
