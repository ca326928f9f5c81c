"""The executor: a pure function from (state, block environment, ordered transactions) to a block.

Nothing here reads a clock, a file, the network or a random source; the same inputs give the same
header, receipts and write set on every replica. A transaction goes through these steps, and the
first failing step decides its result code (the documented order of precedence):

1. decode: ``core.malformed``
2. chain id: ``core.wrong_chain``
3. expiry (``expiry`` 0 means none; otherwise the block height must not exceed it): ``core.expired``
4. every signature verifies over ``domain_tag(TX, chain) || body``: ``core.bad_signature``
5. the first signer is an active key of the sender: ``core.unknown_signer``, ``core.account_revoked``,
   ``core.account_paused`` (its owner paused it: ``identity/pause``)
6. the sequence is the sender's next one: ``core.bad_sequence``
7. each message type is routed and allowed by the key's scope: ``core.unknown_message``, ``core.key_scope``
8. module ``ante`` hooks in router order (``bank``: frozen wallet, fee)
9. the messages, in order; the first failing message's code

A transaction that fails in steps 1-8 changes nothing. One that fails in step 9 keeps its fee and
sequence increment (so it cannot be replayed) and loses every write of its messages. Either way it
stays in the block, with its code in its receipt.

:func:`check_tx` (a machine's pre-check, before it signs) runs steps 2-9 on a throwaway overlay
with step 4 skipped. What it cannot know: the block the transaction will land in (its height and
time, so ``core.expired`` and windows counted in blocks; the transactions ordered before it, which
may take its sequence number or spend the same funds) and whether the real signatures verify.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import InvalidKey, check_public_key, verify_raw
from autarky.encoding import canonical_encode, decode_trusted, encode_ordered
from autarky.ledger.block import BlockHeader, Event, Receipt
from autarky.ledger.errors import (
    BAD_SEQUENCE,
    BAD_SIGNATURE,
    EXPIRED,
    KEY_SCOPE,
    OK,
    WRONG_CHAIN,
    TxError,
)
from autarky.ledger.merkle import merkle_root
from autarky.ledger.router import App, BlockEnv, KeyScope, TxContext
from autarky.ledger.smt import SparseMerkleTree
from autarky.ledger.state import MappingState, Overlay, StateReader
from autarky.ledger.tx import SignedTx, TxBody, decode_tx, encode_signed

SEQUENCE_PREFIX = "core/seq/"


class SignatureVerifier(Protocol):
    def verify(self, tx: SignedTx) -> bool:
        """True when every signature of ``tx`` verifies and every signing key is acceptable."""
        ...


class DirectVerifier:
    """Verifies every signature with libsodium, every time."""

    def verify(self, tx: SignedTx) -> bool:
        return verify_signatures(tx)


def verify_signatures(tx: SignedTx) -> bool:
    payload = tx.signed_payload()
    for public_key, signature in tx.signatures:
        try:
            check_public_key(public_key)
        except InvalidKey:
            return False
        if not verify_raw(public_key, payload, signature):
            return False
    return True


def sequence_of(state: StateReader, account: str) -> int:
    raw = state.get(SEQUENCE_PREFIX + account)
    return 0 if raw is None else int(decode_trusted(raw))


@dataclass(frozen=True, slots=True)
class BlockResult:
    header: BlockHeader
    receipts: tuple[Receipt, ...]
    end_events: tuple[Event, ...]
    changes: tuple[tuple[str, bytes | None], ...]
    tree: SparseMerkleTree


def _authorise(ctx: TxContext, verifier: SignatureVerifier) -> None:
    """Steps 2-8 of the precedence order. Writes (sequence, fee) go to ``ctx.state``."""
    tx, env = ctx.tx, ctx.env
    body = tx.body
    if body.chain_id != env.chain_id:
        raise WRONG_CHAIN(f"transaction is for chain {body.chain_id!r}, this is {env.chain_id!r}")
    if body.expiry_height != 0 and env.height > body.expiry_height:
        raise EXPIRED(f"expired at height {body.expiry_height}, block is {env.height}")
    if not verifier.verify(tx):
        raise BAD_SIGNATURE()
    ctx.scope = ctx.app.authenticator.authenticate(ctx.state, body.sender, tx.signatures[0][0])
    expected = sequence_of(ctx.state, body.sender)
    if body.sequence != expected:
        raise BAD_SEQUENCE(f"sequence {body.sequence} given, {expected} expected")
    ctx.state.set_obj(SEQUENCE_PREFIX + body.sender, expected + 1)
    for message in body.messages:
        ctx.app.route(message)
        if not ctx.scope.allows(message["type"]):
            raise KEY_SCOPE(f"this key may not send {message['type']}")
    for module in ctx.app.modules:
        module.ante(ctx)


def execute_tx(
    block_state: Overlay,
    env: BlockEnv,
    item: bytes | SignedTx,
    index: int,
    app: App,
    verifier: SignatureVerifier,
) -> Receipt:
    """Apply one transaction to ``block_state`` (only if it passes authorisation).

    ``item`` is the raw transaction, or the node's already-decoded copy of it: decoding is a pure
    function of the bytes, so both give the same result.
    """
    if type(item) is SignedTx:
        tx = item
    else:
        assert type(item) is bytes
        try:
            tx = decode_tx(item)
        except TxError as exc:
            return Receipt(sha256(item), index, exc.code, (), None, exc.detail)
    if app.fast_path is not None:
        receipt = app.fast_path(block_state, env, tx, index, verifier)
        if receipt is not None:
            return receipt
    tx_state = block_state.child()
    ctx = TxContext(tx_state, env, tx, KeyScope(tx.signatures[0][0], ()), app)
    try:
        _authorise(ctx, verifier)
    except TxError as exc:
        return Receipt(tx.hash, index, exc.code, (), tx.body.sender, exc.detail)
    ante_events = len(ctx.events)
    message_state = tx_state.child()
    ctx.state = message_state
    try:
        for position, message in enumerate(tx.body.messages):
            ctx.message_index = position
            app.route(message).handle(ctx, message)
    except TxError as exc:
        tx_state.commit()
        return Receipt(tx.hash, index, exc.code, tuple(ctx.events[:ante_events]), tx.body.sender, exc.detail)
    message_state.commit()
    tx_state.commit()
    return Receipt(tx.hash, index, OK, tuple(ctx.events), tx.body.sender)


@dataclass(frozen=True, slots=True)
class Executed:
    """What executing one signed transaction gave: its receipt and its writes, in key order (the
    ``changes()`` of the overlay it was executed on, a child of the block's)."""

    receipt: Receipt
    changes: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class AppliedBlock:
    """A block's transactions and end_block applied: its receipts, end events and write set."""

    receipts: tuple[Receipt, ...]
    end_events: tuple[Event, ...]
    changes: tuple[tuple[str, bytes | None], ...]


def apply_block(
    state: StateReader,
    env: BlockEnv,
    txs: Sequence[bytes | SignedTx],
    app: App,
    verifier: SignatureVerifier | None = None,
    executed: Sequence[Executed] = (),
) -> AppliedBlock:
    """Execute ``txs`` in order on top of ``state``, then every module's end_block; no commitment.

    Nothing here reads ``env.prev_hash``: only the header does (:func:`seal_header`), which is what
    lets a simulation compute state roots on another core while the next block executes
    (``autarky.node.commit_worker``; ``tests/unit/test_architecture.py`` keeps modules from
    reading it).

    ``executed``: what :func:`execute_tx` gave for the first transactions of ``txs``,
    executed in this order on this ``state`` at this height and time (an in-process pre-check of
    the signed transactions: ``autarky.agent.InProcessLedger.check_signed``). Their writes and
    receipts are taken instead of running the modules a second time, while the transaction is the
    one that was executed and its signatures verify (an ``executed`` entry ran with a verifier
    accepting everything); from the first that is not, everything is executed. The block is the
    same either way (``tests/unit/test_executed_reuse.py``).
    """
    verifier = verifier or DirectVerifier()
    block_state = Overlay(state)
    receipts: list[Receipt] = []
    for index, (item, done) in enumerate(zip(txs, executed, strict=False)):  # executed: a prefix
        if type(item) is not SignedTx or item.hash != done.receipt.tx_hash or not verifier.verify(item):
            break
        assert done.receipt.index == index, "executed out of block order"
        for key, value in done.changes:
            if value is None:
                block_state.delete(key)
            else:
                block_state.set(key, value)
        receipts.append(done.receipt)
    for index in range(len(receipts), len(txs)):
        receipts.append(execute_tx(block_state, env, txs[index], index, app, verifier))
    end_events = tuple(app.end_block(block_state, env))
    return AppliedBlock(tuple(receipts), end_events, tuple(block_state.changes()))


def seal_header(
    env: BlockEnv, receipts: Sequence[Receipt], end_events: Sequence[Event], state_root: bytes
) -> BlockHeader:
    """The header of a block applied in ``env`` whose write set gave ``state_root``."""
    return BlockHeader(
        chain_id=env.chain_id,
        height=env.height,
        prev_hash=env.prev_hash,
        time_ms=env.time_ms,
        tx_count=len(receipts),
        tx_root=merkle_root([receipt.tx_hash for receipt in receipts]),
        result_root=result_root(receipts, end_events),
        state_root=state_root,
    )


def execute_block(
    state: StateReader,
    tree: SparseMerkleTree,
    env: BlockEnv,
    txs: Sequence[bytes | SignedTx],
    app: App,
    verifier: SignatureVerifier | None = None,
    executed: Sequence[Executed] = (),
) -> BlockResult:
    """Execute ``txs`` in order on top of ``state`` (whose commitment is ``tree``); ``executed`` as
    in :func:`apply_block`."""
    applied = apply_block(state, env, txs, app, verifier, executed)
    new_tree = tree.update(applied.changes)
    header = seal_header(env, applied.receipts, applied.end_events, new_tree.root)
    return BlockResult(header, applied.receipts, applied.end_events, applied.changes, new_tree)


def result_root(receipts: Sequence[Receipt], end_events: Sequence[Event]) -> bytes:
    leaves = [receipt.consensus_bytes() for receipt in receipts]
    leaves.append(encode_ordered([event.consensus_cbor() for event in end_events]))
    return merkle_root(leaves)


def genesis_hash(genesis: Mapping[str, Any]) -> bytes:
    return sha256(canonical_encode(dict(genesis)))


def execute_genesis(genesis: Mapping[str, Any], app: App) -> BlockResult:
    """Block 0: each module writes its initial state from ``genesis["app_state"]``."""
    chain_id = genesis["chain_id"]
    env = BlockEnv(chain_id, 0, int(genesis["genesis_time_ms"]), genesis_hash(genesis))
    state = Overlay(MappingState({}))
    app.init_genesis(state, genesis.get("app_state", {}))
    changes = tuple(state.changes())
    tree = SparseMerkleTree.empty().update(changes)
    header = BlockHeader(
        chain_id, 0, env.prev_hash, env.time_ms, 0, merkle_root([]), result_root((), ()), tree.root
    )
    return BlockResult(header, (), (), changes, tree)


# -- Pre-check -------------------------------------------------------------------------------------

UNSIGNED_SIGNATURE = bytes(64)
"""The placeholder signature of a transaction built for :func:`check_tx`; it never verifies."""


class AcceptingVerifier:
    """Accepts every transaction without looking at a signature: for :func:`check_tx` only."""

    def verify(self, tx: SignedTx) -> bool:
        return True


ACCEPTING_VERIFIER = AcceptingVerifier()


def unsigned_tx(
    body: TxBody, signer_public_key: bytes, cosigners: Sequence[bytes] = (), body_bytes: bytes | None = None
) -> SignedTx:
    """``body`` as if signed by ``signer_public_key`` and ``cosigners`` (placeholder signatures).

    ``body_bytes``: ``body.encode()`` if the caller has it already. The hash is not the hash the
    signed transaction will have (the signatures are part of it), so ids a module derives from the
    hash differ between a check and the real execution.
    """
    if body_bytes is None:
        body_bytes = body.encode()
    signatures = tuple((key, UNSIGNED_SIGNATURE) for key in (signer_public_key, *cosigners))
    raw = encode_signed(body_bytes, signatures)
    return SignedTx(body, body_bytes, signatures, raw, sha256(raw))


def check_tx(
    state: StateReader,
    env: BlockEnv,
    body: TxBody,
    signer_public_key: bytes,
    app: App,
    cosigners: Sequence[bytes] = (),
) -> Receipt:
    """The receipt ``body`` would get if signed by these keys and executed in block ``env``.

    Runs steps 2-9 of the precedence order (the module docstring) exactly as :func:`execute_tx`
    does, on a throwaway overlay over ``state``, with a verifier that accepts every signature
    (step 4 is skipped: nothing is signed yet; a machine checks before it signs). Nothing is
    written to ``state``. What a check cannot know: the block the transaction will really land in
    (its height, so ``core.expired`` and height-based windows; its time; and the transactions
    before it, e.g. another one taking the same sequence number or spending the same funds), and
    whether the real signatures will verify. Its ``tx_hash`` and the ids modules derive from it are
    those of the unsigned placeholder, not of the signed transaction.
    """
    tx = unsigned_tx(body, signer_public_key, cosigners)
    return execute_tx(Overlay(state), env, tx, 0, app, ACCEPTING_VERIFIER)
