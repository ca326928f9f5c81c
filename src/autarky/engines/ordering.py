"""Blocks from an ordered log: the deterministic core of the ``nats`` engine (pure, synchronous).

The distributed engine orders transactions in one append-only log (a JetStream stream replicated
on 3 or 5 servers). Every node reads the same log and derives the same blocks from it with the
code below; nothing here does I/O, reads a clock or trusts whoever wrote an entry.

The log holds three kinds of entry, told apart by subject (``autarky.<chain>.tx|cut|vote``):

* **tx**: signed transactions: one transaction's raw bytes, or a *bundle*, the canonical CBOR array
  of several (:func:`make_bundle`; a node appends what it admitted together as one entry, so the
  stream's per-message cost is paid per bundle). The message id is the hash of the entry, so
  JetStream drops a duplicate inside its window; that is only a first filter.
* **cut**: a block boundary, written by a validator. Its body (canonical CBOR)::

      {"v": 1, "chain": id, "height": h, "prev": hash of the previous valid cut (block 0: the
       genesis block hash), "through": S, "digest": D, "time_ms": t, "signer": validator key}

  wrapped as ``[body, signature]`` (domain ``CUT``, per chain). Block ``h`` is the tx entries with
  log sequence in (previous cut's ``through``, ``S``]. The entries are hash-chained: with
  ``d_0 = prev`` and ``d_i = SHA-256(d_{i-1} || seq_i as 8 bytes || SHA-256(payload_i))`` over
  those entries in log order, ``D = d_k``. Any entry that is missing, altered or reordered when a
  node reads the log makes ``D`` disagree (:class:`LogIntegrityError`; the node stops).
  Validators race to write the next cut with JetStream's expected-last-subject-sequence on the
  cut subject: exactly one cut follows each cut, with no lock and no leader.
* **vote**: ``[body, signature]`` (domain ``VOTE``) over ``{"v": 1, "chain", "height", "block",
  "root", "signer"}``. :class:`QuorumTracker` turns ``quorum(n)`` matching votes into a
  :class:`Certificate`: the block is final.

A cut is ignored (it is not an error of the log) when it does not decode, names another chain,
is not signed by a current validator, is for a height already cut, or has ``through`` before the
previous one or not before the cut itself. A validator's cut that skips a height or names another
``prev`` (a cut entry missing or altered: validators only append after reading the last cut), or
whose digest disagrees with the entries this node read, is an integrity failure.

Within a block, a transaction is dropped (not executed) when it does not decode, when its hash is
already committed (``is_committed``: permanent de-duplication, R3) or when it appeared earlier in
the same block; an entry that is neither a transaction nor a bundle is dropped whole. Everything
else goes to the executor, which validates it.
Block time is the cut's time, never earlier than the previous block's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from autarky.crypto.domains import Domain, domain_tag
from autarky.crypto.keys import PUBLIC_KEY_BYTES, SigningKey, verify_raw
from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.ledger.errors import TxError
from autarky.ledger.tx import SignedTx, decode_tx

TX, CUT, VOTE = "tx", "cut", "vote"
KINDS = (TX, CUT, VOTE)
MAX_CUT_BYTES = 1024


def subject(chain_id: str, kind: str) -> str:
    assert kind in KINDS, kind
    return f"autarky.{chain_id}.{kind}"


def kind_of(subject_name: str) -> str | None:
    """The entry kind from a subject name, or None for anything else."""
    kind = subject_name.rpartition(".")[2]
    return kind if kind in KINDS else None


def quorum(n: int) -> int:
    """Votes needed among ``n`` validators: more than two thirds (same rule as modules/validators)."""
    assert n > 0, "quorum of an empty validator set"
    return (2 * n) // 3 + 1


class LogIntegrityError(Exception):
    """The log this node read is not the log a validator cut: an entry is missing, altered or moved."""


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Where a node stands in the log; stored with each block in the same database transaction."""

    height: int
    cut_hash: bytes
    through: int
    cut_seq: int
    time_ms: int

    def to_cbor(self) -> list[Any]:
        return [self.height, self.cut_hash, self.through, self.cut_seq, self.time_ms]

    @classmethod
    def from_cbor(cls, data: Any) -> LogPosition:
        height, cut_hash, through, cut_seq, time_ms = data
        return cls(height, cut_hash, through, cut_seq, time_ms)

    @classmethod
    def genesis(cls, genesis_block_hash: bytes, time_ms: int) -> LogPosition:
        return cls(0, genesis_block_hash, 0, 0, time_ms)


@dataclass(frozen=True, slots=True)
class Cut:
    height: int
    prev: bytes
    through: int
    digest: bytes
    time_ms: int
    signer: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class DerivedBlock:
    height: int
    time_ms: int
    txs: tuple[SignedTx, ...]
    position: LogPosition
    dropped: int
    cut: Cut


def _seal(key: SigningKey, domain: Domain, chain_id: str, body: dict[str, Any]) -> bytes:
    body_bytes = canonical_encode(body)
    return canonical_encode([body_bytes, key.sign(domain, body_bytes, chain_id)])


def _open(payload: bytes, domain: Domain, chain_id: str, fields: int) -> tuple[dict[str, Any], bytes] | None:
    """The body of a ``[body, signature]`` entry with exactly ``fields`` fields, and its hash, if
    its signature by ``body.signer`` verifies."""
    try:
        wrapper = canonical_decode(payload)
        if type(wrapper) is not list or len(wrapper) != 2:
            return None
        body_bytes, signature = wrapper
        if type(body_bytes) is not bytes or type(signature) is not bytes:
            return None
        body = canonical_decode(body_bytes)
    except DecodeError:
        return None
    if type(body) is not dict or len(body) != fields or body.get("v") != 1 or body.get("chain") != chain_id:
        return None
    signer = body.get("signer")
    if type(signer) is not bytes or len(signer) != PUBLIC_KEY_BYTES:
        return None
    if not verify_raw(signer, domain_tag(domain, chain_id) + body_bytes, signature):
        return None
    return body, hashlib.sha256(body_bytes).digest()


def _is_uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def parse_cut(payload: bytes, chain_id: str) -> Cut | None:
    """A correctly signed, well-formed cut, or None. Validator membership is checked by the caller."""
    if len(payload) > MAX_CUT_BYTES:
        return None
    opened = _open(payload, Domain.CUT, chain_id, 8)
    if opened is None:
        return None
    body, cut_hash = opened
    fields = ("height", "through", "time_ms")
    if not all(_is_uint(body.get(name)) for name in fields):
        return None
    prev, digest = body.get("prev"), body.get("digest")
    if type(prev) is not bytes or len(prev) != 32 or type(digest) is not bytes or len(digest) != 32:
        return None
    return Cut(body["height"], prev, body["through"], digest, body["time_ms"], body["signer"], cut_hash)


def make_cut(
    key: SigningKey, chain_id: str, height: int, prev: bytes, through: int, digest: bytes, time_ms: int
) -> bytes:
    body = {
        "v": 1,
        "chain": chain_id,
        "height": height,
        "prev": prev,
        "through": through,
        "digest": digest,
        "time_ms": time_ms,
        "signer": key.public_key.raw,
    }
    return _seal(key, Domain.CUT, chain_id, body)


def _chain(previous: bytes, seq: int, payload_hash: bytes) -> bytes:
    return hashlib.sha256(previous + seq.to_bytes(8, "big") + payload_hash).digest()


MAX_BUNDLE_TXS = 1000


def make_bundle(raws: Sequence[bytes]) -> bytes:
    """One tx entry holding several transactions (a single one is appended as itself)."""
    assert raws, "an empty bundle"
    return raws[0] if len(raws) == 1 else canonical_encode(list(raws))


def unbundle(payload: bytes) -> list[bytes]:
    """The transactions in a tx entry: a bundle's items, or the entry itself (a lone transaction,
    or bytes the executor's decoder will refuse)."""
    # A transaction is [1, body, signatures]: never an array of byte strings only, which a bundle
    # is (so a bundle of three is not taken for a transaction by its 3-item array header).
    try:
        items = canonical_decode(payload)
    except DecodeError:
        return [payload]
    if (
        type(items) is list
        and 2 <= len(items) <= MAX_BUNDLE_TXS
        and all(type(item) is bytes for item in items)
    ):
        return items
    return [payload]


@dataclass(slots=True)
class _Pending:
    seq: int
    payload_hash: bytes
    raws: list[bytes]


class LogDeriver:
    """Feeds log entries in sequence order; returns a block each time a valid cut completes one.

    ``validators()`` answers the validator keys in force for the next block (read from the
    node's state after the previous block). ``is_committed(hash)`` answers whether a transaction
    hash is in a committed block. The caller applies each returned block before feeding on.
    """

    def __init__(
        self,
        chain_id: str,
        position: LogPosition,
        validators: Callable[[], Sequence[bytes]],
        is_committed: Callable[[bytes], bool],
        *,
        committed_among: Callable[[list[bytes]], AbstractSet[bytes]] | None = None,
        decode: Callable[[bytes], SignedTx] = decode_tx,
    ) -> None:
        self.chain_id = chain_id
        self.position = position
        self._validators = validators
        self._is_committed = is_committed
        # Optional faster equivalents: many hashes in one look-up; a decoder that may reuse a
        # transaction this node already decoded (it must return exactly what decode_tx would).
        self._committed_among = committed_among
        self._decode = decode
        self._pending: list[_Pending] = []
        self._digests: list[bytes] = []  # running digest after each pending entry
        self.last_seq = position.through
        self.last_cut_entry_seq = position.cut_seq
        self.ignored_cuts = 0
        self._pending_txs = 0

    def feed(self, seq: int, kind: str, payload: bytes) -> DerivedBlock | None:
        if seq <= self.last_seq:
            return None  # delivered again (a consumer restart); already taken into account
        self.last_seq = seq
        if kind == TX:
            payload_hash = hashlib.sha256(payload).digest()
            previous = self._digests[-1] if self._digests else self.position.cut_hash
            self._pending.append(_Pending(seq, payload_hash, unbundle(payload)))
            self._digests.append(_chain(previous, seq, payload_hash))
            self._pending_txs += len(self._pending[-1].raws)
            return None
        if kind != CUT:
            return None
        self.last_cut_entry_seq = max(self.last_cut_entry_seq, seq)
        if seq <= self.position.cut_seq:
            return None
        cut = parse_cut(payload, self.chain_id)
        pos = self.position
        if cut is None or cut.signer not in self._validators() or cut.height <= pos.height:
            self.ignored_cuts += 1
            return None
        if cut.height != pos.height + 1 or cut.prev != pos.cut_hash:
            # Validators append a cut only after reading the last one (compare-and-set), so a
            # validator's cut that does not extend the last valid cut means one is missing or altered.
            raise LogIntegrityError(
                f"cut for block {cut.height} (log sequence {seq}) does not follow block {pos.height}'s "
                "cut: a cut entry is missing or altered"
            )
        if not pos.through <= cut.through < seq:
            self.ignored_cuts += 1
            return None
        count = sum(1 for entry in self._pending if entry.seq <= cut.through)
        expected = self._digests[count - 1] if count else pos.cut_hash
        if cut.digest != expected:
            raise LogIntegrityError(
                f"cut for block {cut.height} (log sequence {seq}) commits to entries "
                f"{pos.through + 1}..{cut.through} that differ from what this node read "
                f"({count} entries): an entry is missing, altered or out of order"
            )
        taken, self._pending = self._pending[:count], self._pending[count:]
        self._pending_txs -= sum(len(entry.raws) for entry in taken)
        txs, dropped = self._select(taken)
        time_ms = max(cut.time_ms, pos.time_ms)
        self.position = LogPosition(cut.height, cut.hash, cut.through, seq, time_ms)
        self._rebuild_digests()
        return DerivedBlock(cut.height, time_ms, tuple(txs), self.position, dropped, cut)

    def _select(self, entries: list[_Pending]) -> tuple[list[SignedTx], int]:
        decoded: list[SignedTx] = []
        dropped = 0
        for entry in entries:
            for raw in entry.raws:
                try:
                    decoded.append(self._decode(raw))
                except TxError:
                    dropped += 1
        if self._committed_among is not None:
            committed = self._committed_among([tx.hash for tx in decoded])
            is_committed: Callable[[bytes], bool] = committed.__contains__
        else:
            is_committed = self._is_committed
        txs: list[SignedTx] = []
        in_block: dict[bytes, None] = {}
        for tx in decoded:
            if tx.hash in in_block or is_committed(tx.hash):
                dropped += 1
                continue
            in_block[tx.hash] = None
            txs.append(tx)
        return txs, dropped

    def _rebuild_digests(self) -> None:
        previous = self.position.cut_hash
        self._digests = []
        for entry in self._pending:
            previous = _chain(previous, entry.seq, entry.payload_hash)
            self._digests.append(previous)

    # -- proposing --------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Transaction entries read but not yet in a block."""
        return len(self._pending)

    @property
    def pending_txs(self) -> int:
        """Transactions in those entries."""
        return self._pending_txs

    def propose(self, key: SigningKey, time_ms: int, max_txs: int) -> tuple[bytes, int]:
        """A cut closing the next block over the pending entries holding up to ``max_txs``
        transactions (a bundle larger than that alone), and the sequence the cut subject's last entry must
        have for it to be appended (compare-and-set)."""
        count, txs = 0, 0
        for entry in self._pending:
            if txs + len(entry.raws) > max_txs and (count or max_txs <= 0):
                break  # a bundle larger than max_txs still goes alone into a block
            count += 1
            txs += len(entry.raws)
        pos = self.position
        through = self._pending[count - 1].seq if count else pos.through
        digest = self._digests[count - 1] if count else pos.cut_hash
        payload = make_cut(
            key, self.chain_id, pos.height + 1, pos.cut_hash, through, digest, max(time_ms, pos.time_ms)
        )
        return payload, self.last_cut_entry_seq


# -- votes and certificates -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Vote:
    height: int
    block_hash: bytes
    state_root: bytes
    signer: bytes
    payload: bytes


def make_vote(key: SigningKey, chain_id: str, height: int, block_hash: bytes, state_root: bytes) -> bytes:
    body = {
        "v": 1,
        "chain": chain_id,
        "height": height,
        "block": block_hash,
        "root": state_root,
        "signer": key.public_key.raw,
    }
    return _seal(key, Domain.VOTE, chain_id, body)


def parse_vote(payload: bytes, chain_id: str) -> Vote | None:
    if len(payload) > MAX_CUT_BYTES:
        return None
    opened = _open(payload, Domain.VOTE, chain_id, 6)
    if opened is None:
        return None
    body = opened[0]
    if not _is_uint(body.get("height")):
        return None
    block_hash, root = body.get("block"), body.get("root")
    if type(block_hash) is not bytes or len(block_hash) != 32 or type(root) is not bytes or len(root) != 32:
        return None
    return Vote(body["height"], block_hash, root, body["signer"], payload)


@dataclass(frozen=True, slots=True)
class Certificate:
    """A quorum of validator votes on (height, block hash, state root): the block is final."""

    height: int
    block_hash: bytes
    state_root: bytes
    votes: tuple[bytes, ...]  # the signed vote entries, ordered by signer key

    def to_cbor(self) -> list[Any]:
        return [self.height, self.block_hash, self.state_root, list(self.votes)]

    @classmethod
    def from_cbor(cls, data: Any) -> Certificate:
        height, block_hash, state_root, votes = data
        return cls(height, block_hash, state_root, tuple(votes))

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "block_hash": self.block_hash.hex(),
            "state_root": self.state_root.hex(),
            "votes": [vote.hex() for vote in self.votes],
        }


def verify_certificate(cert: Certificate, chain_id: str, validators: Sequence[bytes]) -> list[str]:
    """Problems with ``cert`` against ``validators`` (empty when it proves finality)."""
    if not validators:
        return ["no validator set"]
    signers: list[bytes] = []
    problems: list[str] = []
    for payload in cert.votes:
        vote = parse_vote(payload, chain_id)
        if vote is None:
            problems.append("a vote does not verify")
            continue
        if (vote.height, vote.block_hash, vote.state_root) != (cert.height, cert.block_hash, cert.state_root):
            problems.append("a vote is for another block")
        elif vote.signer not in validators:
            problems.append(f"{vote.signer.hex()} is not a validator")
        elif vote.signer in signers:
            problems.append(f"{vote.signer.hex()} voted twice")
        else:
            signers.append(vote.signer)
    if len(signers) < quorum(len(validators)):
        problems.append(f"{len(signers)} valid votes, {quorum(len(validators))} needed")
    return problems


@dataclass(slots=True)
class _Tally:
    votes: dict[tuple[bytes, bytes], dict[bytes, bytes]] = field(default_factory=dict)
    certified: bool = False


class QuorumTracker:
    """Collects votes per height and answers certificates and disagreements."""

    def __init__(self, chain_id: str, keep_heights: int = 10_000) -> None:
        self.chain_id = chain_id
        self.keep_heights = keep_heights
        self._tallies: dict[int, _Tally] = {}

    def add(self, vote: Vote, validators: Sequence[bytes]) -> Certificate | None:
        """Count ``vote`` (ignored unless by a validator); a certificate the first time a quorum agrees."""
        if not validators or vote.signer not in validators:
            return None
        tally = self._tallies.setdefault(vote.height, _Tally())
        for signers in tally.votes.values():
            if vote.signer in signers:
                return None  # one vote per validator and height; a second, different one is ignored
        signers = tally.votes.setdefault((vote.block_hash, vote.state_root), {})
        signers[vote.signer] = vote.payload
        if tally.certified or len(signers) < quorum(len(validators)):
            return None
        tally.certified = True
        self._forget_below(vote.height - self.keep_heights)
        votes = tuple(signers[signer] for signer in sorted(signers))
        return Certificate(vote.height, vote.block_hash, vote.state_root, votes)

    def others_agree_against(
        self, height: int, block_hash: bytes, state_root: bytes, validators: Sequence[bytes], me: bytes
    ) -> tuple[int, bytes, bytes] | None:
        """If ``quorum - 1`` other validators agree on something else at ``height``, that value.

        With the node's own vote that would have been a quorum: the node, not they, is wrong.
        """
        tally = self._tallies.get(height)
        if tally is None or not validators:
            return None
        needed = max(1, quorum(len(validators)) - 1)
        for (other_hash, other_root), signers in tally.votes.items():
            if (other_hash, other_root) == (block_hash, state_root):
                continue
            agreeing = sum(1 for signer in signers if signer != me)
            if agreeing >= needed:
                return agreeing, other_hash, other_root
        return None

    def _forget_below(self, height: int) -> None:
        for old in [h for h in self._tallies if h < height]:
            del self._tallies[old]
