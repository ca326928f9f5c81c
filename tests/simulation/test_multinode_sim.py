"""The ``nats`` engine's deterministic core under a seeded multi-node simulation (``autarky.sim``).

Three parts:

* **Seeded runs**: three validator nodes over one in-memory log with dropped, delayed and duplicated
  publishes, lagging reads and crash-restarts. Every acknowledged transfer is committed exactly
  once, supply is conserved, every node ends at the same certified height with the same blocks,
  and every certificate verifies. A failure names the seed and the one-line command that replays
  it (``python -m autarky.sim --seed N ...``); the same seed gives the same trace, also in another
  process with another hash seed (R10).
* **Integrity through the log**: a deleted or altered transaction entry under a cut stops a new or
  restarted node with :class:`LogIntegrityError`; a cut by a non-validator is ignored; of two
  validators racing for the same cut slot only one is appended (compare-and-set).
* **LogDeriver, votes and certificates**: edge cases of ``engines/ordering.py`` fed by hand.

"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from autarky.crypto.domains import Domain
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_encode
from autarky.engines.ordering import (
    CUT,
    TX,
    VOTE,
    Certificate,
    DerivedBlock,
    LogDeriver,
    LogIntegrityError,
    LogPosition,
    QuorumTracker,
    make_bundle,
    make_cut,
    make_vote,
    parse_cut,
    parse_vote,
    subject,
    unbundle,
    verify_certificate,
)
from autarky.ledger.tx import TxBody, decode_tx, sign_tx
from autarky.modules.bank import messages as bank
from autarky.node.genesis import dev_genesis
from autarky.sim import (
    AppendResult,
    MemoryLog,
    SimNode,
    SimReport,
    Simulation,
    client_key,
    node_key,
    sim_genesis,
)
from autarky.sim.cluster import ASSET, CHAIN_ID, CLIENT_FUNDS

# --- seeded runs -----------------------------------------------------------------------------------

SEEDS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
FAULTS: dict[str, Any] = {
    "steps": 1200,
    "clients": 5,
    "drop": 0.15,
    "delay": 0.3,
    "duplicate": 0.1,
    "restart": 0.01,
}
# Other cluster shapes, a few seeds each: 4 and 5 validators (a quorum without every node, so a
# crashed node does not hold finality back), small blocks, a short duplicate window, slow readers.
SHAPES: dict[str, dict[str, Any]] = {
    "four-validators": {**FAULTS, "nodes": 4, "steps": 600, "max_txs": 2, "restart": 0.03},
    "five-validators": {**FAULTS, "nodes": 5, "steps": 400, "duplicate_window_ms": 50, "heartbeat_ms": 100},
    "slow-readers": {**FAULTS, "steps": 600, "read_batch": 1, "max_read_lag_ms": 1000, "drop": 0.3},
}
SHAPE_SEEDS = (4, 6, 7)


@functools.cache
def simulate(seed: int, shape: str | None = None) -> SimReport:
    return Simulation(seed, **(FAULTS if shape is None else SHAPES[shape])).run()


def failure(report: SimReport, what: str) -> str:
    """An assertion message that names the seed and the command replaying the run."""
    return f"seed {report.seed}: {what}\n    replay with: {report.replay}"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_faulty_cluster_commits_every_acknowledged_transaction_once(seed: int) -> None:
    check(simulate(seed))


@pytest.mark.parametrize("seed", SHAPE_SEEDS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_other_cluster_shapes(shape: str, seed: int) -> None:
    check(simulate(seed, shape))


def check(report: SimReport) -> None:
    assert report.problems() == [], failure(report, "; ".join(report.problems()))
    assert report.settled, failure(report, "the quiet phase did not settle")
    assert report.acknowledged > 0, failure(report, "no transaction was acknowledged")
    assert report.lost == 0, failure(report, f"lost {list(report.lost_txs)}")
    assert report.applied_twice == 0, failure(report, f"{report.applied_twice} applied twice")
    assert report.failed == 0, failure(report, f"{report.failed} acknowledged transactions failed")
    assert report.conserved, failure(report, "bank supply does not equal the sum of balances")
    assert report.roots_equal, failure(report, f"nodes disagree: roots {report.state_roots}")
    assert len(set(report.heights)) == 1, failure(report, f"heights differ: {report.heights}")
    assert report.final_heights == report.heights, failure(
        report, f"certified {report.final_heights}, derived {report.heights}"
    )
    assert report.final_heights[0] > 0, failure(report, "no certificate formed")
    for node, certificates in enumerate(report.certificates):
        heights = [cert.height for cert in certificates]
        assert heights == list(range(1, report.final_heights[node] + 1)), failure(
            report, f"node {node} certified heights {heights}"
        )
        for cert in certificates:
            problems = verify_certificate(cert, CHAIN_ID, report.validators)
            assert problems == [], failure(report, f"node {node} certificate {cert.height}: {problems}")


def test_the_seeded_runs_exercise_every_fault() -> None:
    """A simulation that injects no faults proves nothing: check each kind happened somewhere."""
    totals: dict[str, int] = {}
    for seed in SEEDS:
        for name, value in simulate(seed).stats.items():
            totals[name] = totals.get(name, 0) + value
    for name in (
        "requests_dropped",  # a publish never reached the log; the client sent it again
        "acks_dropped",  # the publish was appended but the client did not hear it
        "delayed",
        "duplicated",
        "duplicate_acks",  # the log's duplicate window absorbed a copy
        "tx_appended_twice",  # a copy came after the window: the log holds the transaction twice
        "entries_dropped_in_blocks",  # ... and the deriver dropped it
        "crashes",
        "revotes",  # a node restarted with blocks still lacking a certificate
        "cuts_rejected",  # validators raced for a cut slot and lost the compare-and-set
        "empty_blocks",  # heartbeats
    ):
        assert totals[name] > 0, f"no {name} in seeds {SEEDS}: {totals}"
    assert totals["integrity_errors"] == 0


def test_the_same_seed_gives_the_same_trace() -> None:
    first = Simulation(7, **FAULTS).run()
    second = Simulation(7, **FAULTS).run()
    assert "\n".join(first.trace).encode() == "\n".join(second.trace).encode()
    assert first.to_json(trace=True) == second.to_json(trace=True)
    assert Simulation(8, **FAULTS).run().trace != first.trace


def test_the_replay_command_reproduces_a_run_in_another_process() -> None:
    """R10: the printed command gives the same report and trace, whatever the hash seed."""
    report = Simulation(11, steps=150, drop=0.2, restart=0.02).run()
    command = shlex.split(report.replay)
    assert command[:4] == ["python", "-m", "autarky.sim", "--seed"]
    outputs = []
    for hash_seed in ("0", "4242"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, *command[1:], "--trace"],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1] == report.to_json(trace=True)


def test_a_failure_message_names_the_seed_and_the_replay_command() -> None:
    report = dataclasses.replace(simulate(SEEDS[0]), lost=2, lost_txs=("ab", "cd"))
    assert "2 acknowledged transactions lost" in report.problems()
    message = failure(report, "; ".join(report.problems()))
    assert f"seed {SEEDS[0]}:" in message
    replay = message.splitlines()[-1].split("replay with: ")[1]
    assert replay == report.replay
    assert replay.startswith(f"python -m autarky.sim --seed {SEEDS[0]} ")
    assert "--steps 1200" in replay and "--drop 0.15" in replay and "--restart 0.01" in replay


def test_the_simulated_genesis_is_the_one_the_node_builds() -> None:
    validators = [node_key(index).public_key.raw for index in range(3)]
    accounts = [client_key(index).did for index in range(4)]
    built = dev_genesis(
        CHAIN_ID,
        time_ms=0,
        allocations=[(account, ASSET, CLIENT_FUNDS) for account in accounts],
        validators=validators,
    )
    assert sim_genesis(validators, accounts) == built


# --- the in-memory log -----------------------------------------------------------------------------


def test_memory_log_duplicate_window() -> None:
    log = MemoryLog(duplicate_window_ms=100)
    assert log.append("a", b"x", "id-1", now_ms=0) == AppendResult(1)
    assert log.append("a", b"x", "id-1", now_ms=99) == AppendResult(1, duplicate=True)
    assert log.last_seq == 1
    assert log.append("a", b"x", "id-1", now_ms=100) == AppendResult(2)  # the window has passed
    assert log.append("a", b"x", "id-1", now_ms=150) == AppendResult(2, duplicate=True)
    assert log.append("a", b"y", now_ms=150) == AppendResult(3)  # no id: never a duplicate
    assert [entry.payload for entry in log.entries_from(1)] == [b"x", b"x", b"y"]
    with pytest.raises(ValueError, match="backwards"):
        log.append("a", b"z", now_ms=149)


def test_memory_log_compare_and_set_per_subject() -> None:
    log = MemoryLog()
    assert log.append("cut", b"1", expected_last_subject_seq=0).seq == 1
    assert log.append("tx", b"t", expected_last_subject_seq=0).seq == 2  # other subject: its own count
    rejected = log.append("cut", b"2", expected_last_subject_seq=0)
    assert rejected == AppendResult(None, rejected="wrong last sequence: 1")
    assert not rejected.acknowledged
    assert log.append("cut", b"2", expected_last_subject_seq=1).seq == 3
    # The message id is checked before the expected sequence (as nats-server does).
    assert log.append("cut", b"3", "m", expected_last_subject_seq=3).seq == 4
    assert log.append("cut", b"3", "m", expected_last_subject_seq=3) == AppendResult(4, duplicate=True)


def test_memory_log_faults() -> None:
    log = MemoryLog()
    for payload in (b"a", b"b", b"c"):
        log.append("s", payload)
    assert log.delete(3).payload == b"c"
    assert log.last_seq == 3 and log.last_subject_seq("s") == 2
    assert [entry.seq for entry in log.entries_from(1)] == [1, 2]
    assert [entry.seq for entry in log.entries_from(2, limit=1)] == [2]
    log.tamper(1, b"A")
    entry = log.entry(1)
    assert entry is not None and entry.payload == b"A"
    with pytest.raises(KeyError):
        log.delete(3)
    assert log.append("s", b"d", expected_last_subject_seq=2).seq == 4


# --- integrity through the log ---------------------------------------------------------------------

OUTSIDER = SigningKey.from_seed(sha256(b"autarky/sim-test/outsider"))


class Cluster:
    """Three validator nodes over one log, driven by hand (no scheduler, no randomness)."""

    def __init__(self, validators: int = 3) -> None:
        keys = [node_key(index) for index in range(validators)]
        self.sender, self.receiver = client_key(0), client_key(1)
        self.genesis = sim_genesis(
            sorted(key.public_key.raw for key in keys), [self.sender.did, self.receiver.did]
        )
        self.log = MemoryLog(duplicate_window_ms=1000)
        self.nodes = [SimNode(index, self.genesis, self.log, key) for index, key in enumerate(keys)]
        self.now = 0
        self.sequence = 0

    def tick(self) -> int:
        self.now += 10
        return self.now

    def transfer(self, amount: int = 5, sequence: int | None = None) -> bytes:
        """A signed transfer with the sender's next sequence (or ``sequence``, not counted)."""
        if sequence is None:
            sequence = self.sequence
            self.sequence += 1
        message = bank.send(self.receiver.did, ASSET, amount)
        return sign_tx(TxBody(CHAIN_ID, self.sender.did, sequence, 1, 0, (message,)), self.sender).raw

    def submit(self, count: int = 1) -> list[int]:
        """Append ``count`` transfers; their log sequences."""
        seqs = []
        for _ in range(count):
            raw = self.transfer()
            result = self.log.append(subject(CHAIN_ID, TX), raw, sha256(raw).hex(), now_ms=self.tick())
            assert result.seq is not None
            seqs.append(result.seq)
        return seqs

    def sync(self, nodes: Sequence[SimNode] | None = None) -> None:
        """Each up node publishes its votes and reads the whole log; three rounds, so a block read in
        the first round has every vote published in the second and read by all in the third."""
        for _ in range(3):
            now = self.tick()
            for node in self.nodes if nodes is None else nodes:
                if node.up:
                    node.flush(now)
                    node.read(now)

    def block(self, proposer: int = 0) -> AppendResult:
        self.sync()
        result = self.nodes[proposer].propose(self.tick())
        self.sync()
        return result

    def newcomer(self, key: SigningKey = OUTSIDER) -> SimNode:
        return SimNode(99, self.genesis, self.log, key)


def test_cluster_helper_makes_certified_blocks() -> None:
    cluster = Cluster()
    cluster.submit(3)
    assert cluster.block(proposer=1).seq == 4
    cluster.submit(1)
    assert cluster.block(proposer=2).acknowledged
    for node in cluster.nodes:
        assert (node.height, node.final_height) == (2, 2)
        assert [len(record.txs) for record in node.disk.records] == [3, 1]
    roots = {node.disk.chain.root for node in cluster.nodes}
    assert len(roots) == 1
    newcomer = cluster.newcomer()
    newcomer.read(cluster.tick())
    assert (newcomer.height, newcomer.disk.chain.root) == (2, *roots)
    assert not newcomer.is_validator() and not newcomer.proposal_due(cluster.tick() + 10_000)


def test_deleting_a_transaction_under_a_cut_stops_a_new_node() -> None:
    cluster = Cluster()
    seqs = cluster.submit(3)
    cluster.block()
    cluster.log.delete(seqs[1])
    newcomer = cluster.newcomer()
    with pytest.raises(LogIntegrityError, match="missing, altered or out of order"):
        newcomer.read(cluster.tick())
    assert newcomer.height == 0 and newcomer.halted is not None and not newcomer.up
    with pytest.raises(RuntimeError, match="halted"):
        newcomer.read(cluster.tick())


def test_tampering_a_transaction_under_a_cut_stops_a_restarted_node() -> None:
    cluster = Cluster()
    late = cluster.nodes[2]
    late.crash()
    seqs = cluster.submit(2)
    assert cluster.block().acknowledged  # nodes 0 and 1 derive block 1; node 2 is down
    # Replace the entry with another valid, signed transfer: only the cut's digest can tell.
    cluster.log.tamper(seqs[0], cluster.transfer(amount=999, sequence=0))
    late.restart()
    with pytest.raises(LogIntegrityError):
        late.read(cluster.tick())
    assert late.height == 0
    # Nodes that applied the block before the tampering do not read those entries again.
    survivor = cluster.nodes[0]
    survivor.crash()
    survivor.restart()
    survivor.read(cluster.tick())
    assert survivor.height == 1


def test_a_cut_by_a_non_validator_is_ignored() -> None:
    cluster = Cluster()
    cluster.submit(2)
    outsider = cluster.newcomer()
    cluster.sync([*cluster.nodes, outsider])
    assert outsider.memory is not None
    payload, expected = outsider.memory.deriver.propose(outsider.key, cluster.tick(), 10)
    forged = cluster.log.append(
        subject(CHAIN_ID, CUT), payload, expected_last_subject_seq=expected, now_ms=cluster.now
    )
    assert forged.seq is not None  # the log itself does not check who writes
    cluster.sync([*cluster.nodes, outsider])
    for node in [*cluster.nodes, outsider]:
        assert node.height == 0
        assert node.memory is not None and node.memory.deriver.ignored_cuts == 1
    # The validators' next compare-and-set expects the forged entry, and their cut is taken.
    result = cluster.nodes[1].propose(cluster.tick())
    assert result.seq == forged.seq + 1
    cluster.sync([*cluster.nodes, outsider])
    for node in [*cluster.nodes, outsider]:
        assert node.height == 1 and len(node.disk.records[0].txs) == 2
        assert node.disk.records[0].proposer == cluster.nodes[1].key.public_key.raw


def test_two_validators_racing_for_a_cut_slot_append_only_one() -> None:
    cluster = Cluster()
    cluster.submit(2)
    early, late = cluster.nodes[0], cluster.nodes[1]
    now = cluster.tick()
    early.read(now, limit=1)  # it has seen one transfer, the other node both
    late.read(now)
    assert early.memory is not None and late.memory is not None
    assert (early.memory.deriver.pending, late.memory.deriver.pending) == (1, 2)
    won = late.propose(now)
    lost = early.propose(now)
    assert won.seq is not None
    assert lost == AppendResult(None, rejected=f"wrong last sequence: {won.seq}")
    cuts = [entry for entry in cluster.log.entries_from(1) if entry.subject == subject(CHAIN_ID, CUT)]
    assert [entry.seq for entry in cuts] == [won.seq]
    # Having lost, the early node does not try again until it has read the winning cut.
    assert not early.proposal_due(now + 10_000)
    cluster.sync()
    assert [node.height for node in cluster.nodes] == [1, 1, 1]
    assert [len(node.disk.records[0].txs) for node in cluster.nodes] == [2, 2, 2]
    assert early.proposal_due(cluster.now + 10_000)


def test_a_restarted_node_counts_again_the_votes_of_blocks_it_had_not_certified() -> None:
    cluster = Cluster()
    slow = cluster.nodes[2]
    cluster.submit(1)
    cluster.sync()
    cluster.nodes[0].propose(cluster.tick())
    cluster.sync(cluster.nodes[:2])  # nodes 0 and 1 derive block 1 and vote; node 2 lags
    watcher = cluster.nodes[0]
    assert watcher.height == 1 and watcher.final_height == 0  # 2 of 3 votes
    cluster.submit(2)  # these entries lie after the two votes: block 2's ``through`` passes them
    cluster.sync(cluster.nodes[:2])
    cluster.nodes[1].propose(cluster.tick())
    cluster.sync(cluster.nodes[:2])
    assert watcher.height == 2 and watcher.position.through > watcher.disk.records[0].cut_seq
    watcher.crash()
    watcher.restart()  # reads again from block 1's cut: the two votes are counted again
    cluster.sync([slow])  # node 2 catches up and votes for blocks 1 and 2
    cluster.sync()
    for node in cluster.nodes:
        assert sorted(node.disk.certificates) == [1, 2], node.name


def test_a_crash_between_a_block_and_its_vote_is_repaired_by_the_restart() -> None:
    cluster = Cluster()
    cluster.submit(1)
    cluster.sync()
    cluster.nodes[0].propose(cluster.tick())
    now = cluster.tick()
    for node in cluster.nodes:
        node.read(now)  # block 1 applied; votes are still in each node's outbox
    cluster.nodes[1].crash()  # its vote is lost
    cluster.nodes[1].restart()
    assert cluster.nodes[1].revotes == 1
    cluster.sync()
    assert [node.final_height for node in cluster.nodes] == [1, 1, 1]


def test_a_deleted_cut_is_an_integrity_failure() -> None:
    cluster = Cluster()
    for _ in range(3):
        cluster.submit(1)
        cluster.block()
    assert [node.height for node in cluster.nodes] == [3, 3, 3]
    cluster.log.delete(cluster.nodes[0].disk.records[1].cut_seq)  # block 2's cut
    replacement = cluster.newcomer(node_key(0))  # validator 0 rebuilt from an empty disk
    try:
        replacement.read(cluster.tick())
    except LogIntegrityError:
        return  # the behaviour wanted
    # What happens instead: block 3's cut is ignored (its ``prev`` is the missing cut), and the
    # replacement's own cut for height 2 passes the compare-and-set: a different block 2.
    stalled = (replacement.height, replacement.memory.deriver.ignored_cuts if replacement.memory else None)
    appended = replacement.propose(cluster.tick())
    replacement.read(cluster.tick())
    forked = replacement.disk.chain.headers[2].hash != cluster.nodes[0].disk.chain.headers[2].hash
    raise AssertionError(
        f"no LogIntegrityError: (height, ignored cuts) = {stalled}; its own cut for height 2: "
        f"{appended}; different block 2: {forked}"
    )


# --- LogDeriver edge cases -------------------------------------------------------------------------

VALIDATORS = [node_key(index) for index in range(3)]
VALIDATOR_KEYS = sorted(key.public_key.raw for key in VALIDATORS)
PREV0 = sha256(b"genesis block")
GENESIS_POSITION = LogPosition.genesis(PREV0, 1_000)
SENDER, RECEIVER = client_key(0), client_key(1)


def transfer(sequence: int, amount: int = 1) -> bytes:
    body = TxBody(CHAIN_ID, SENDER.did, sequence, 1, 0, (bank.send(RECEIVER.did, ASSET, amount),))
    return sign_tx(body, SENDER).raw


class Feeder:
    """A deriver fed by hand: ``feed`` gives each entry the next sequence and remembers it."""

    def __init__(
        self, position: LogPosition = GENESIS_POSITION, validators: Sequence[bytes] = VALIDATOR_KEYS
    ) -> None:
        self.validators = list(validators)
        self.committed: dict[bytes, None] = {}
        self.deriver = LogDeriver(CHAIN_ID, position, lambda: self.validators, self.committed.__contains__)
        self.seq = position.cut_seq
        self.entries: list[tuple[int, str, bytes]] = []

    def feed(self, kind: str, payload: bytes) -> DerivedBlock | None:
        self.seq += 1
        self.entries.append((self.seq, kind, payload))
        block = self.deriver.feed(self.seq, kind, payload)
        if block is not None:
            for tx in block.txs:
                self.committed[tx.hash] = None
        return block

    def tx(self, raw: bytes) -> None:
        assert self.feed(TX, raw) is None

    def propose(self, key: SigningKey = VALIDATORS[0], time_ms: int = 2_000, max_txs: int = 100) -> bytes:
        payload, expected = self.deriver.propose(key, time_ms, max_txs)
        assert expected == self.deriver.last_cut_entry_seq
        return payload

    def cut(self, **fields: Any) -> bytes:
        """A cut extending this deriver's position over all pending entries, with ``fields`` changed."""
        pos = self.deriver.position
        body: dict[str, Any] = {
            "height": pos.height + 1,
            "prev": pos.cut_hash,
            "through": self.seq,
            "digest": self.digest(),
            "time_ms": 2_000,
        }
        key = fields.pop("key", VALIDATORS[0])
        chain = fields.pop("chain", CHAIN_ID)
        body.update(fields)
        return make_cut(
            key, chain, body["height"], body["prev"], body["through"], body["digest"], body["time_ms"]
        )

    def digest(self) -> bytes:
        payload, _ = self.deriver.propose(VALIDATORS[0], 0, 1_000_000)
        cut = parse_cut(payload, CHAIN_ID)
        assert cut is not None
        return cut.digest


def test_deriver_empty_cut_makes_an_empty_block_and_keeps_pending_entries() -> None:
    feeder = Feeder()
    feeder.tx(transfer(0))
    block = feeder.feed(CUT, feeder.propose(max_txs=0))
    assert block is not None and block.txs == () and block.height == 1
    assert block.position.through == 0 and feeder.deriver.pending == 1
    block = feeder.feed(CUT, feeder.propose())
    assert block is not None and len(block.txs) == 1 and block.position.through == 1


def test_a_validator_cut_that_skips_a_height_or_names_another_prev_is_an_integrity_failure() -> None:
    for changes in ({"height": 2}, {"prev": sha256(b"other")}):
        feeder = Feeder()
        feeder.tx(transfer(0))
        with pytest.raises(LogIntegrityError, match="does not follow"):
            feeder.feed(CUT, feeder.cut(**changes))


def test_deriver_ignores_cuts_that_do_not_extend_the_last_one() -> None:
    feeder = Feeder()
    feeder.tx(transfer(0))
    pos = feeder.deriver.position
    bad: list[Callable[[], bytes]] = [
        lambda: feeder.cut(height=0),
        lambda: feeder.cut(through=feeder.seq + 1),  # the cut's own sequence: not before it
        lambda: feeder.cut(key=OUTSIDER),
        lambda: feeder.cut(chain="another-chain"),
        lambda: b"\xa0",
        lambda: b"",
        lambda: canonical_encode([b"body", b"sig"]),
        lambda: feeder.cut()[:-1],
    ]
    for index, make in enumerate(bad):
        assert feeder.feed(CUT, make()) is None, index
        assert feeder.deriver.position == pos
    assert feeder.deriver.ignored_cuts == len(bad)
    assert feeder.deriver.last_cut_entry_seq == feeder.seq  # ignored cuts still occupy the slot
    block = feeder.feed(CUT, feeder.cut(through=1))
    assert block is not None and len(block.txs) == 1


def test_deriver_cut_through_may_point_between_transactions() -> None:
    feeder = Feeder()
    feeder.tx(transfer(0))
    feeder.feed(VOTE, b"not even a vote")  # seq 2: votes are outside the digest
    feeder.tx(transfer(1))
    payload, _ = feeder.deriver.propose(VALIDATORS[0], 2_000, 1)
    cut = parse_cut(payload, CHAIN_ID)
    assert cut is not None and cut.through == 1
    moved = make_cut(VALIDATORS[0], CHAIN_ID, 1, PREV0, 2, cut.digest, 2_000)  # through = the vote
    block = feeder.feed(CUT, moved)
    assert block is not None and len(block.txs) == 1 and feeder.deriver.pending == 1


@pytest.mark.parametrize("fault", ["missing", "altered", "reordered", "moved"])
def test_deriver_detects_a_log_that_differs_from_the_cut(fault: str) -> None:
    honest = Feeder()
    raws = [transfer(0), transfer(1), transfer(2)]
    honest.tx(raws[0])
    honest.feed(VOTE, b"vote")
    honest.tx(raws[1])
    honest.tx(raws[2])
    cut = honest.propose()
    seen = list(honest.entries)  # what another node reads: (seq, kind, payload)
    if fault == "missing":
        del seen[2]
    elif fault == "altered":
        seen[2] = (3, TX, transfer(1, amount=2))
    elif fault == "reordered":
        seen[2], seen[3] = (3, TX, raws[2]), (4, TX, raws[1])
    else:  # the same payloads, one of them at another sequence
        seen[0], seen[1] = (1, VOTE, b"vote"), (2, TX, raws[0])
    reader = LogDeriver(CHAIN_ID, GENESIS_POSITION, lambda: VALIDATOR_KEYS, lambda tx_hash: False)
    for seq, kind, payload in seen:
        assert reader.feed(seq, kind, payload) is None
    with pytest.raises(LogIntegrityError, match="differ from what this node read"):
        reader.feed(5, CUT, cut)
    honest_reader = LogDeriver(CHAIN_ID, GENESIS_POSITION, lambda: VALIDATOR_KEYS, lambda tx_hash: False)
    for seq, kind, payload in honest.entries:
        honest_reader.feed(seq, kind, payload)
    assert honest_reader.feed(5, CUT, cut) is not None


def test_deriver_drops_malformed_duplicate_and_committed_entries() -> None:
    feeder = Feeder()
    first, second = transfer(0), transfer(1)
    feeder.tx(first)
    block = feeder.feed(CUT, feeder.propose())
    assert block is not None and [tx.raw for tx in block.txs] == [first]
    for raw in (b"garbage", second, first, second):  # first: committed; second: twice in the block
        feeder.tx(raw)
    block = feeder.feed(CUT, feeder.propose())
    assert block is not None
    assert [tx.raw for tx in block.txs] == [second]
    assert block.dropped == 3
    assert block.position.through == feeder.seq - 1  # every entry is under the digest


def test_deriver_block_time_never_goes_backwards() -> None:
    feeder = Feeder()
    block = feeder.feed(CUT, feeder.propose(time_ms=5_000))
    assert block is not None and block.time_ms == 5_000
    block = feeder.feed(CUT, feeder.cut(time_ms=4_000))  # a validator with a slow clock
    assert block is not None and block.time_ms == 5_000 and block.cut.time_ms == 4_000
    assert feeder.deriver.position.time_ms == 5_000


def test_deriver_partial_proposal_leaves_the_rest_for_the_next_block() -> None:
    feeder = Feeder()
    for sequence in range(5):
        feeder.tx(transfer(sequence))
    block = feeder.feed(CUT, feeder.propose(max_txs=2))
    assert block is not None and [tx.body.sequence for tx in block.txs] == [0, 1]
    assert block.position.through == 2 and feeder.deriver.pending == 3
    block = feeder.feed(CUT, feeder.propose(max_txs=2))
    assert block is not None and [tx.body.sequence for tx in block.txs] == [2, 3]
    assert feeder.deriver.last_cut_entry_seq == feeder.seq


def test_deriver_restarted_from_a_position_derives_the_same_blocks() -> None:
    feeder = Feeder()
    for sequence in range(3):
        feeder.tx(transfer(sequence))
    first = feeder.feed(CUT, feeder.propose(max_txs=1))  # through 1, cut at 4
    assert first is not None
    feeder.feed(CUT, b"junk")  # an ignored cut after the position's cut
    feeder.tx(transfer(3))
    second = feeder.feed(CUT, feeder.propose())
    assert second is not None and len(second.txs) == 3
    committed_then = {tx.hash: None for tx in first.txs}
    restarted = LogDeriver(CHAIN_ID, first.position, lambda: VALIDATOR_KEYS, committed_then.__contains__)
    assert restarted.last_seq == 1 and restarted.last_cut_entry_seq == 4
    again = None
    for seq, kind, payload in feeder.entries:  # a consumer may deliver everything again
        block = restarted.feed(seq, kind, payload)
        again = block or again
    assert again == second
    assert restarted.ignored_cuts == 1  # the junk cut; the first cut is below the position and skipped
    assert restarted.feed(2, TX, transfer(9)) is None and restarted.pending == 0  # old sequence: ignored


def test_deriver_asks_the_validator_set_for_each_cut() -> None:
    feeder = Feeder()
    block = feeder.feed(CUT, feeder.propose(key=VALIDATORS[2]))
    assert block is not None
    feeder.validators = [key for key in VALIDATOR_KEYS if key != VALIDATORS[2].public_key.raw]
    assert feeder.feed(CUT, feeder.propose(key=VALIDATORS[2])) is None
    assert feeder.feed(CUT, feeder.propose(key=VALIDATORS[1])) is not None


def test_parse_cut_rejects_an_extra_field() -> None:
    body = {
        "v": 1,
        "chain": CHAIN_ID,
        "height": 1,
        "prev": PREV0,
        "through": 0,
        "digest": PREV0,
        "time_ms": 0,
        "signer": VALIDATORS[0].public_key.raw,
        "extra": 1,
    }
    assert parse_cut(_seal(body, Domain.CUT), CHAIN_ID) is None


def test_parse_cut_rejects_an_extra_hash_field() -> None:
    body = {
        "v": 1,
        "chain": CHAIN_ID,
        "height": 1,
        "prev": PREV0,
        "through": 0,
        "digest": PREV0,
        "time_ms": 0,
        "signer": VALIDATORS[0].public_key.raw,
        "_hash": b"anything",
    }
    assert parse_cut(_seal(body, Domain.CUT), CHAIN_ID) is None


def _seal(body: dict[str, Any], domain: Domain) -> bytes:
    body_bytes = canonical_encode(body)
    return canonical_encode([body_bytes, VALIDATORS[0].sign(domain, body_bytes, CHAIN_ID)])


# --- votes and certificates ------------------------------------------------------------------------

BLOCK, ROOT = sha256(b"block"), sha256(b"root")


def vote(key: SigningKey, height: int = 1, block: bytes = BLOCK, root: bytes = ROOT) -> bytes:
    return make_vote(key, CHAIN_ID, height, block, root)


def add(tracker: QuorumTracker, payload: bytes) -> Certificate | None:
    parsed = parse_vote(payload, CHAIN_ID)
    assert parsed is not None
    return tracker.add(parsed, VALIDATOR_KEYS)


def test_quorum_tracker_counts_one_vote_per_validator() -> None:
    tracker = QuorumTracker(CHAIN_ID)
    assert add(tracker, vote(VALIDATORS[0])) is None
    assert add(tracker, vote(VALIDATORS[0])) is None  # again
    assert add(tracker, vote(OUTSIDER)) is None  # not a validator
    assert add(tracker, vote(VALIDATORS[1], block=sha256(b"other"))) is None  # another block
    assert add(tracker, vote(VALIDATORS[1])) is None  # its second vote at this height: ignored
    assert add(tracker, vote(VALIDATORS[2])) is None  # 2 of 3 on BLOCK; quorum(3) is 3
    tracker = QuorumTracker(CHAIN_ID)
    assert add(tracker, vote(VALIDATORS[0])) is None
    assert add(tracker, vote(VALIDATORS[1])) is None
    certificate = add(tracker, vote(VALIDATORS[2]))
    assert certificate is not None and certificate.height == 1
    assert list(certificate.votes) == [
        vote(key) for key in sorted(VALIDATORS, key=lambda k: k.public_key.raw)
    ]
    assert verify_certificate(certificate, CHAIN_ID, VALIDATOR_KEYS) == []
    assert Certificate.from_cbor(certificate.to_cbor()) == certificate
    assert add(tracker, vote(VALIDATORS[0], height=2)) is None  # the next height starts afresh


def test_verify_certificate_names_each_problem() -> None:
    good = [vote(key) for key in VALIDATORS]
    assert verify_certificate(Certificate(1, BLOCK, ROOT, tuple(good)), CHAIN_ID, VALIDATOR_KEYS) == []
    cases = {
        "a vote does not verify": [*good[:2], good[2][:-1] + bytes([good[2][-1] ^ 1])],
        "a vote is for another block": [*good[:2], vote(VALIDATORS[2], block=sha256(b"x"))],
        "is not a validator": [*good, vote(OUTSIDER)],
        "voted twice": [*good[:2], good[1]],
        "2 valid votes, 3 needed": good[:2],
    }
    for expected, votes in cases.items():
        problems = verify_certificate(Certificate(1, BLOCK, ROOT, tuple(votes)), CHAIN_ID, VALIDATOR_KEYS)
        assert any(expected in problem for problem in problems), (expected, problems)
    assert verify_certificate(Certificate(1, BLOCK, ROOT, tuple(good)), CHAIN_ID, []) == ["no validator set"]
    assert verify_certificate(Certificate(1, BLOCK, ROOT, tuple(good)), "other-chain", VALIDATOR_KEYS) != []


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_bundles_of_every_size_come_back_as_their_transactions(size: int) -> None:
    raws = [transfer(i) for i in range(size)]
    assert unbundle(make_bundle(raws)) == raws
    assert [decode_tx(raw).raw for raw in unbundle(make_bundle(raws))] == raws


def test_a_bundle_entry_becomes_one_block_of_its_transactions() -> None:
    feeder = Feeder()
    feeder.feed(TX, make_bundle([transfer(0), transfer(1), transfer(2)]))
    block = feeder.feed(CUT, feeder.propose())
    assert block is not None and len(block.txs) == 3 and block.dropped == 0
