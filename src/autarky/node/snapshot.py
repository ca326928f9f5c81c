"""State snapshots: the whole state at one block, in one file, checkable before it is trusted.

A snapshot lets a new node start from a recent block instead of executing the chain from genesis
(SPEC C5). The file is the canonical CBOR of::

    {"format": "autarky-snapshot", "version": 1,
     "chain_id": str,
     "genesis": the genesis document (as the node stores it),
     "header": bytes,                 # the canonical encoding of the block header
     "signature": bytes | None,       # the exporting node's signature over that header
     "node_key": did | None,          # the exporting node's key
     "state": [[key, value], ...],    # every state item at that block, sorted by key
     # version 2 adds what a node on the nats engine needs to continue from the stream:
     "log_position": [...] | None,    # engines/ordering.py LogPosition at that block
     "tx_hashes": [bytes, ...],       # every committed transaction hash (permanent de-duplication)
     "certificate": [...] | None}     # the block's finality certificate, if the exporter had one

Version 1 files (without the last three) are still read.

Trust: :func:`import_snapshot` rebuilds the state commitment from the items and compares it with the
header's state root, checks that genesis, header and snapshot name one chain, checks the header
signature against the stated node key, and only then writes anything. The signature proves which
node exported the header, not that the header is final. A certificate in the snapshot is checked
against the validator set in the snapshot's own state: a quorum of those validators signed this
header's hash and state root (``SnapshotInfo.final``). Without one, check the block hash against a
source you trust (another node's ``autarky node status``) before relying on the imported node.

The imported data directory holds the genesis, a fresh node key, and one block (the snapshot's
header, without its transactions) at the snapshot height; blocks before it are not there, so
``autarky node replay`` on it refuses rather than pretending to replay from genesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.crypto.domains import Domain
from autarky.crypto.keys import PublicKey, SigningKey
from autarky.crypto.keystore import KeystoreError, create_keystore, new_key_file, read_public
from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.engines.ordering import Certificate, verify_certificate
from autarky.ledger.block import BlockHeader
from autarky.ledger.executor import genesis_hash
from autarky.ledger.smt import SparseMerkleTree
from autarky.ledger.state import MappingState
from autarky.modules.validators import read_validators
from autarky.node.errors import ConfigError, CorruptState, StorageError
from autarky.node.genesis import GenesisError, check_genesis
from autarky.node.node import DB_FILE, GENESIS_FILE, NODE_KEY_FILE, NODE_SECRET_FILE
from autarky.node.storage import Storage

__all__ = [
    "SnapshotError",
    "SnapshotInfo",
    "export_snapshot",
    "import_snapshot",
    "read_snapshot",
    "snapshot_height",
]

FORMAT = "autarky-snapshot"
VERSION = 2
SNAPSHOT_HEIGHT_META = "snapshot_height"
"""Meta key recording the height an imported data directory starts from."""

_KEYS = ("chain_id", "format", "genesis", "header", "node_key", "signature", "state", "version")
_KEYS_V2 = tuple(sorted((*_KEYS, "certificate", "log_position", "tx_hashes")))
_EXPORT_ATTEMPTS = 3


class SnapshotError(ConfigError):
    """A snapshot file that cannot be exported, read or imported; the message says why."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    chain_id: str
    height: int
    block_hash: str
    state_root: str
    items: int
    node_key: str | None
    bytes: int
    final: bool = False
    """The snapshot carries a certificate that a quorum of the validators in its state signed."""

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "block_hash": self.block_hash,
            "state_root": self.state_root,
            "items": self.items,
            "node_key": self.node_key,
            "bytes": self.bytes,
            "final": self.final,
        }


@dataclass(frozen=True, slots=True)
class _Snapshot:
    chain_id: str
    genesis: dict[str, Any]
    header: BlockHeader
    signature: bytes | None
    node_key: str | None
    state: list[tuple[str, bytes]]
    log_position: list[Any] | None = None
    tx_hashes: tuple[bytes, ...] = ()
    certificate: Certificate | None = None


def export_snapshot(data_dir: Path | str, path: Path | str) -> SnapshotInfo:
    """Write a snapshot of the latest block stored in ``data_dir`` to ``path``.

    Best with the node stopped. While it runs, a block committed between the reads makes the
    state disagree with the header; the export then retries and finally fails rather than writing
    an inconsistent file.
    """
    data_dir = Path(data_dir)
    if not (data_dir / DB_FILE).exists():
        raise SnapshotError(f"no ledger in {data_dir}: nothing to export (check [node] data_dir)")
    genesis = canonical_decode((data_dir / GENESIS_FILE).read_bytes())
    storage = Storage(data_dir / DB_FILE)
    try:
        for _ in range(_EXPORT_ATTEMPTS):
            height = storage.applied_height
            if height is None:
                raise SnapshotError(f"{data_dir} holds no block")
            block = storage.block(height)
            assert block is not None, "applied height without its block"
            items = sorted(storage.load_state().items())
            if SparseMerkleTree.from_items(items).root == block.header.state_root:
                log_position = storage.get_meta("log_position")
                tx_hashes = storage.all_tx_hashes()
                certificate = storage.certificate(height)
                break
        else:
            raise SnapshotError(
                f"the state in {data_dir} does not match block {height}'s state root; "
                "stop the node and retry, or rebuild it with `autarky node replay`"
            )
        node_key = _node_did(data_dir)
    finally:
        storage.close()
    document = {
        "format": FORMAT,
        "version": VERSION,
        "chain_id": block.header.chain_id,
        "genesis": genesis,
        "header": block.header.encode(),
        "signature": block.signature,
        "node_key": node_key,
        "state": [[key, value] for key, value in items],
        "log_position": log_position,
        "tx_hashes": tx_hashes,
        "certificate": None if certificate is None else canonical_decode(certificate),
    }
    encoded = canonical_encode(document)
    Path(path).write_bytes(encoded)
    return _info(block.header, len(items), node_key, len(encoded), certificate is not None)


def read_snapshot(path: Path | str) -> SnapshotInfo:
    """Read and fully check a snapshot file without importing it."""
    raw = _read(Path(path))
    snapshot = _verify(_decode(raw))
    return _info(
        snapshot.header, len(snapshot.state), snapshot.node_key, len(raw), snapshot.certificate is not None
    )


def import_snapshot(path: Path | str, data_dir: Path | str) -> SnapshotInfo:
    """Check the snapshot at ``path``, then create a node data directory at ``data_dir`` from it."""
    data_dir = Path(data_dir)
    if (data_dir / DB_FILE).exists():
        raise SnapshotError(f"{data_dir} already holds a ledger; import into a new, empty directory")
    raw = _read(Path(path))
    snapshot = _verify(_decode(raw))
    # Everything is checked; from here on we write.
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / GENESIS_FILE).write_bytes(canonical_encode(snapshot.genesis))
    new_key_file(data_dir / NODE_SECRET_FILE, overwrite=True)
    create_keystore(
        data_dir / NODE_KEY_FILE,
        SigningKey.generate(),
        key_file=data_dir / NODE_SECRET_FILE,
        label="node",
        overwrite=True,
    )
    header = snapshot.header
    storage = Storage(data_dir / DB_FILE)
    try:
        storage.set_meta("chain_id", snapshot.chain_id)
        if header.height > 0:
            # The database starts at the snapshot's block: record the height before it as applied,
            # so the snapshot's header is the next (and first stored) block.
            storage.set_meta("applied_height", header.height - 1)
        meta = [] if snapshot.log_position is None else [("log_position", snapshot.log_position)]
        storage.commit_block(header, snapshot.signature, (), (), (), snapshot.state, meta)
        storage.checkpoint()
        storage.set_meta(SNAPSHOT_HEIGHT_META, header.height)
        storage.import_tx_hashes(snapshot.tx_hashes, header.height)
        if snapshot.certificate is not None:
            storage.put_certificate(header.height, canonical_encode(snapshot.certificate.to_cbor()))
        loaded = sorted(storage.load_state().items())
    finally:
        storage.close()
    if SparseMerkleTree.from_items(loaded).root != header.state_root:
        raise CorruptState(f"the state written to {data_dir} does not reproduce the snapshot's state root")
    return _info(header, len(snapshot.state), snapshot.node_key, len(raw), snapshot.certificate is not None)


# ---------------------------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SnapshotError(f"snapshot file {path} does not exist") from exc


def _decode(raw: bytes) -> _Snapshot:
    try:
        document = canonical_decode(raw)
    except DecodeError as exc:
        raise SnapshotError(f"not a snapshot: the file is not canonical CBOR ({exc})") from exc
    if type(document) is not dict or document.get("format") != FORMAT:
        raise SnapshotError("not a snapshot: the file is not an autarky-snapshot document")
    version = document.get("version")
    if version not in (1, VERSION):
        raise SnapshotError(f"snapshot version {version!r} is not supported (this reads 1 and {VERSION})")
    keys = _KEYS if version == 1 else _KEYS_V2
    if sorted(str(key) for key in document) != list(keys):
        raise SnapshotError(f"snapshot version {version} must have exactly the fields {list(keys)}")
    chain_id, genesis, header_bytes = document["chain_id"], document["genesis"], document["header"]
    signature, node_key, state = document["signature"], document["node_key"], document["state"]
    if type(chain_id) is not str or type(genesis) is not dict or type(header_bytes) is not bytes:
        raise SnapshotError("snapshot chain_id, genesis or header has the wrong type")
    if signature is not None and type(signature) is not bytes:
        raise SnapshotError("snapshot signature must be bytes or null")
    if node_key is not None and type(node_key) is not str:
        raise SnapshotError("snapshot node_key must be a did:key or null")
    try:
        header = BlockHeader.decode(header_bytes)
    except ValueError as exc:
        raise SnapshotError(f"snapshot header: {exc}") from exc
    if type(state) is not list:
        raise SnapshotError("snapshot state must be a list of [key, value] pairs")
    items: list[tuple[str, bytes]] = []
    for entry in state:
        pair_ok = type(entry) is list and len(entry) == 2
        if not (pair_ok and type(entry[0]) is str and type(entry[1]) is bytes):
            raise SnapshotError("snapshot state must be a list of [text key, bytes value] pairs")
        if items and entry[0] <= items[-1][0]:
            raise SnapshotError("snapshot state keys must be sorted and distinct")
        items.append((entry[0], entry[1]))
    log_position, tx_hashes, certificate = document.get("log_position"), document.get("tx_hashes", []), None
    if log_position is not None and (type(log_position) is not list or len(log_position) != 5):
        raise SnapshotError("snapshot log_position must be null or a 5-item list")
    if type(tx_hashes) is not list or not all(type(h) is bytes and len(h) == 32 for h in tx_hashes):
        raise SnapshotError("snapshot tx_hashes must be a list of 32-byte hashes")
    if document.get("certificate") is not None:
        try:
            certificate = Certificate.from_cbor(document["certificate"])
        except (TypeError, ValueError) as exc:
            raise SnapshotError(f"snapshot certificate is malformed: {exc}") from exc
    return _Snapshot(
        chain_id, genesis, header, signature, node_key, items, log_position, tuple(tx_hashes), certificate
    )


def _verify(snapshot: _Snapshot) -> _Snapshot:
    header = snapshot.header
    try:
        check_genesis(snapshot.genesis)
    except GenesisError as exc:
        raise SnapshotError(f"snapshot genesis: {exc}") from exc
    if not snapshot.chain_id == header.chain_id == snapshot.genesis["chain_id"]:
        raise SnapshotError(
            f"snapshot names chain {snapshot.chain_id!r}, its header {header.chain_id!r} "
            f"and its genesis {snapshot.genesis['chain_id']!r}: they must agree"
        )
    if header.height == 0 and header.prev_hash != genesis_hash(snapshot.genesis):
        raise SnapshotError("snapshot block 0 does not belong to the snapshot's genesis")
    root = SparseMerkleTree.from_items(snapshot.state).root
    if root != header.state_root:
        raise SnapshotError(
            f"snapshot state does not match its header: state root {root.hex()} "
            f"!= header state root {header.state_root.hex()} (the file is damaged or altered)"
        )
    if snapshot.signature is not None:
        if snapshot.node_key is None:
            raise SnapshotError("snapshot has a header signature but no node_key to check it with")
        try:
            public_key = PublicKey(public_key_from_did(snapshot.node_key))
        except (InvalidDid, ValueError) as exc:
            raise SnapshotError(f"snapshot node_key: {exc}") from exc
        if not public_key.verify(Domain.BLOCK_HEADER, header.encode(), snapshot.signature, header.chain_id):
            raise SnapshotError("snapshot header signature does not verify against its node_key")
    certificate = snapshot.certificate
    if certificate is not None:
        validators = read_validators(MappingState(dict(snapshot.state)))
        problems = verify_certificate(certificate, header.chain_id, validators)
        if (certificate.height, certificate.block_hash, certificate.state_root) != (
            header.height,
            header.hash,
            header.state_root,
        ):
            problems.append("it is for another block")
        if problems:
            raise SnapshotError("snapshot certificate does not verify: " + "; ".join(problems))
    return snapshot


def _node_did(data_dir: Path) -> str | None:
    try:
        return read_public(data_dir / NODE_KEY_FILE).did
    except (OSError, KeystoreError):
        return None


def _info(
    header: BlockHeader, items: int, node_key: str | None, size: int, final: bool = False
) -> SnapshotInfo:
    return SnapshotInfo(
        header.chain_id,
        header.height,
        header.hash.hex(),
        header.state_root.hex(),
        items,
        node_key,
        size,
        final,
    )


def snapshot_height(storage: Storage) -> int | None:
    """The height an imported data directory starts from, or None for one initialised from genesis."""
    try:
        value = storage.get_meta(SNAPSHOT_HEIGHT_META)
    except StorageError:
        return None
    return None if value is None else int(value)
