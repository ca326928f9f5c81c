"""The ``nats`` engine: transactions ordered by a replicated JetStream stream, blocks derived by every node.

Each node runs one of these. It

* **publishes** the transactions its node admitted to ``autarky.<chain>.tx`` (message id = the
  transaction hash); a submission is acknowledged once JetStream has stored it on a quorum of
  the stream's replicas (file storage, ``sync_interval: always``, 3 or 5 replicas);
* **consumes** the whole stream in order from where its node stands (an ordered consumer from
  the stored :class:`~autarky.engines.ordering.LogPosition`) and turns it into blocks with the
  pure :class:`~autarky.engines.ordering.LogDeriver` (entries hash-chained through the cuts,
  duplicates dropped against the node's permanent transaction index);
* **cuts** blocks when it is a validator: after ``block_interval_ms`` with transactions waiting
  (later validators in the set wait longer, so usually one cuts and the others stand by), or after
  ``heartbeat_ms`` with none, it appends a signed cut with ``Nats-Expected-Last-Subject-Sequence``
  set to the last cut it read: of several validators racing, exactly one wins;
* **votes**: after its node stored a block, a validator signs (height, block hash, state root) to
  ``autarky.<chain>.vote``; every node's :class:`~autarky.engines.ordering.QuorumTracker` (in the
  node) turns a quorum of matching votes into a finality certificate.

No node trusts the stream: every node executes every block and checks every signature itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.engines.base import BatchSink, Engine, OrderedBatch
from autarky.engines.ordering import (
    CUT,
    MAX_BUNDLE_TXS,
    TX,
    VOTE,
    LogDeriver,
    LogIntegrityError,
    LogPosition,
    kind_of,
    make_bundle,
    make_vote,
    parse_cut,
    subject,
    unbundle,
)
from autarky.ledger.block import BlockHeader
from autarky.ledger.tx import SignedTx, decode_tx

log = logging.getLogger("autarky.engine.nats")

MIN_REPLICAS = 1


class EngineUnavailable(Exception):
    """The ordering service could not take a transaction (an operational fault, not a rejection)."""

    code = "engine.unavailable"


@dataclass(frozen=True, slots=True)
class NatsSettings:
    """How a node reaches its NATS cluster (``[nats]`` in ``autarky.toml``)."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    monitor_urls: tuple[str, ...] = ()
    stream: str | None = None
    replicas: int = 3
    duplicate_window_s: float = 120.0
    max_block_txs: int = 2000
    block_interval_ms: int = 20
    heartbeat_ms: int = 1000
    connect_timeout_s: float = 10.0
    publish_timeout_s: float = 10.0
    creds_file: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    check_servers: bool = True
    resend_after_s: float = 5.0
    """A transaction this node had acknowledged that is in no block after this long is sent again."""
    extra: dict[str, Any] = field(default_factory=dict)

    def stream_name(self, chain_id: str) -> str:
        return self.stream or "AUTARKY_" + chain_id.upper().replace("-", "_")


BUNDLE_BYTES = 256 * 1024


def _bundles(raws: Sequence[bytes]) -> list[list[bytes]]:
    """Consecutive groups of at most ``MAX_BUNDLE_TXS`` transactions and about ``BUNDLE_BYTES``."""
    groups: list[list[bytes]] = []
    size = 0
    for raw in raws:
        if not groups or len(groups[-1]) >= MAX_BUNDLE_TXS or size + len(raw) > BUNDLE_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(raw)
        size += len(raw) + 3
    return groups


class NatsEngine(Engine):
    name = "nats"
    remote_ordering = True

    def __init__(
        self,
        settings: NatsSettings,
        chain_id: str,
        key: SigningKey,
        position: Callable[[], LogPosition],
        validators: Callable[[], Sequence[bytes]],
        is_committed: Callable[[bytes], bool],
        on_vote: Callable[[bytes], None],
        on_fault: Callable[[str], None],
        committed_among: Callable[[list[bytes]], AbstractSet[bytes]] | None = None,
    ) -> None:
        self.settings = settings
        self.chain_id = chain_id
        self.key = key
        self._position = position
        self._validators = validators
        self._is_committed = is_committed
        self._on_vote = on_vote
        self._on_fault = on_fault
        self._committed_among = committed_among
        # Transactions this node admitted (decoded and checked already), until the deriver meets
        # them in the log: decoding them again would give the same SignedTx.
        self._admitted: dict[bytes, SignedTx] = {}
        self.stream = settings.stream_name(chain_id)
        self._subjects = {kind: subject(chain_id, kind) for kind in (TX, CUT, VOTE)}
        self._nc: Any = None
        self._js: Any = None
        self._deriver: LogDeriver | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._halted: str | None = None
        self._pending_since: float | None = None
        self._last_cut_at = time.monotonic()
        self._wake = asyncio.Event()
        self._sub: Any = None
        self.cuts_won = 0
        self.cuts_lost = 0
        self.resent = 0
        self.rereads = 0
        self._reconciled_at: int | None = None
        self.resubscribed = 0
        # Transactions this node handed to the stream and saw acknowledged, until they are in a block:
        # hash -> [raw, monotonic time last sent, attempts, time read back or None]. JetStream has
        # been seen to acknowledge entries and then not deliver them, or to deliver entries and
        # then drop them, around a killed or paused server (docs/cluster.md); so the node that
        # acknowledged a transaction to its client keeps sending it until it is in a block.
        self._outbox: dict[bytes, list[Any]] = {}
        self.server_version: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect, check the servers, and create or check the stream."""
        import nats
        from nats.js.api import StorageType, StreamConfig

        if self.settings.check_servers and self.settings.monitor_urls:
            from autarky.engines.nats_server import check_servers

            await check_servers(list(self.settings.monitor_urls))
        options: dict[str, Any] = {
            "servers": list(self.settings.servers),
            "connect_timeout": self.settings.connect_timeout_s,
            "max_reconnect_attempts": -1,
            # The configured order is deliberate: a node's own (nearest) server first.
            "dont_randomize": True,
            # A paused or cut-off server keeps the TCP connection open: find out in seconds, not
            # after the client's default of two missed pings two minutes apart, and move on.
            "ping_interval": 2,
            "max_outstanding_pings": 2,
            "reconnect_time_wait": 0.25,
            "name": f"autarky-{self.key.public_key.hex()[:12]}",
            "error_cb": self._error_cb,
            "disconnected_cb": self._disconnected_cb,
            "reconnected_cb": self._reconnected_cb,
            "pending_size": 64 * 1024 * 1024,
        }
        if self.settings.creds_file:
            options["user_credentials"] = self.settings.creds_file
        if self.settings.user:
            options["user"] = self.settings.user
            options["password"] = self.settings.password
        if self.settings.token:
            options["token"] = self.settings.token
        if self.settings.tls_ca or self.settings.tls_cert:
            import ssl

            context = ssl.create_default_context(cafile=self.settings.tls_ca)
            if self.settings.tls_cert:
                context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
            options["tls"] = context
        try:
            self._nc = await nats.connect(**options)
        except Exception as exc:
            raise EngineUnavailable(
                f"cannot connect to NATS at {', '.join(self.settings.servers)}: {exc}"
            ) from exc
        version = getattr(self._nc, "connected_server_version", None)
        self.server_version = None if version is None else f"{version.major}.{version.minor}.{version.patch}"
        self._js = self._nc.jetstream(timeout=self.settings.publish_timeout_s)
        config = StreamConfig(
            name=self.stream,
            subjects=[f"autarky.{self.chain_id}.*"],
            storage=StorageType.FILE,
            num_replicas=self.settings.replicas,
            duplicate_window=self.settings.duplicate_window_s,
            max_msg_size=BUNDLE_BYTES + 64 * 1024,
        )
        try:
            info = await self._js.stream_info(self.stream)
        except Exception:
            info = None
        if info is None:
            deadline = time.monotonic() + self.settings.connect_timeout_s
            while True:
                try:
                    info = await self._js.add_stream(config)
                    break
                except Exception as exc:
                    # A fresh cluster may still be electing its JetStream meta leader.
                    if time.monotonic() > deadline:
                        raise EngineUnavailable(f"cannot create stream {self.stream}: {exc}") from exc
                    await asyncio.sleep(0.25)
        if (info.config.max_msg_size or 0) not in (-1, 0) and info.config.max_msg_size < config.max_msg_size:
            info.config.max_msg_size = config.max_msg_size  # bundles need room; an older stream gets it
            info = await self._js.update_stream(info.config)
        storage = str(getattr(info.config.storage, "value", info.config.storage))
        if storage != "file" or (info.config.num_replicas or 1) < min(self.settings.replicas, 3):
            raise EngineUnavailable(
                f"stream {self.stream} has storage {storage} and {info.config.num_replicas} replicas; "
                f"Autarky needs file storage and {self.settings.replicas} replicas: delete and recreate it"
            )

    async def start(self, sink: BatchSink, next_height: int, last_time_ms: int) -> None:
        if self._nc is None:
            await self.connect()
        position = self._position()
        assert position.height == next_height - 1, "log position and node height disagree"
        self._deriver = LogDeriver(
            self.chain_id,
            position,
            self._validators,
            self._is_committed,
            committed_among=self._committed_among,
            decode=self._decode,
        )
        self._tasks = [
            asyncio.create_task(self._consume(sink), name="nats-consume"),
            asyncio.create_task(self._cut_loop(), name="nats-cut"),
            asyncio.create_task(self._resend_loop(), name="nats-resend"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    def notify(self) -> None:
        return None

    def halt(self, reason: str) -> None:
        """Stop cutting and voting (the node found itself wrong); consuming stops too."""
        self._halted = reason
        self._wake.set()

    # -- publishing -------------------------------------------------------------------------------------
    async def publish(self, txs: Sequence[SignedTx]) -> list[BaseException | None]:
        """Append transactions to the stream, in bundles; None for each one JetStream acknowledged."""
        if self._js is None:
            return [EngineUnavailable("the engine is not connected") for _ in txs]
        groups = _bundles([tx.raw for tx in txs])
        results = await asyncio.gather(
            *(self._append(make_bundle(group), None) for group in groups), return_exceptions=True
        )
        now = time.monotonic()
        answers: list[BaseException | None] = []
        position = 0
        for group, result in zip(groups, results, strict=True):
            for _ in group:
                tx = txs[position]
                position += 1
                if isinstance(result, BaseException):
                    answers.append(EngineUnavailable(f"not stored: {result}"))
                else:
                    self._outbox[tx.hash] = [tx.raw, now, 0, None]
                    self._admitted[tx.hash] = tx
                    answers.append(None)
        return answers

    def _decode(self, raw: bytes) -> SignedTx:
        tx = self._admitted.pop(hashlib.sha256(raw).digest(), None) if self._admitted else None
        if tx is not None and tx.raw == raw:
            return tx
        return decode_tx(raw)

    async def _append(self, payload: bytes, attempt: int | None) -> Any:
        # The message id is the entry's hash (with the attempt when sent again: the stream may
        # remember an id without holding its entry).
        msg_id = hashlib.sha256(payload).hexdigest() + ("" if attempt is None else f".{attempt}")
        return await self._js.publish(self._subjects[TX], payload, headers={"Nats-Msg-Id": msg_id})

    async def _resend_loop(self) -> None:
        """Send again what this node acknowledged but its own consumer has not read back in time."""
        while not self._stopping:
            await asyncio.sleep(1.0)
            if self._halted is not None or self._js is None:
                continue
            now = time.monotonic()
            patience = self.settings.resend_after_s
            # Not read back: after resend_after_s. Read back but in no block: much later (a read
            # can be of entries the stream later drops, see _reconcile).
            due = [
                entry
                for entry in self._outbox.values()
                if (entry[3] is None and now - entry[1] >= patience)
                or (entry[3] is not None and now - max(entry[1], entry[3]) >= 6 * patience)
            ]
            if not due:
                continue
            for entry in due:
                entry[1], entry[2] = now, entry[2] + 1
            groups = _bundles([entry[0] for entry in due])
            results = await asyncio.gather(
                *(self._append(make_bundle(group), due[0][2]) for group in groups), return_exceptions=True
            )
            self.resent += sum(
                len(group)
                for group, result in zip(groups, results, strict=True)
                if not isinstance(result, BaseException)
            )
            log.warning(
                "sent %d acknowledged transactions again (not read back from the stream after %.0f s)",
                len(due),
                self.settings.resend_after_s,
            )

    def block_applied(self, header: BlockHeader, tx_hashes: Sequence[bytes] = ()) -> None:
        """The node stored ``header``: forget its transactions from the outbox; as a validator, vote."""
        if self._outbox:
            for tx_hash in tx_hashes:
                self._outbox.pop(tx_hash, None)
        if self._halted is not None or self._js is None:
            return
        if self.key.public_key.raw not in self._validators():
            return
        vote = make_vote(self.key, self.chain_id, header.height, header.hash, header.state_root)
        task = asyncio.get_running_loop().create_task(self._publish_vote(vote))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _publish_vote(self, vote: bytes) -> None:
        for _ in range(20):
            try:
                await self._js.publish(self._subjects[VOTE], vote)
                return
            except Exception as exc:
                if self._stopping:
                    return
                log.debug("vote publish failed, retrying: %s", exc)
                await asyncio.sleep(0.25)
        log.warning("could not publish a vote after 20 attempts")

    # -- consuming --------------------------------------------------------------------------------------
    async def _consume(self, sink: BatchSink) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        assert self._deriver is not None
        while not self._stopping and self._halted is None:
            start = self._deriver.last_seq + 1
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
            try:
                self._sub = await self._js.subscribe(
                    f"autarky.{self.chain_id}.*",
                    stream=self.stream,
                    ordered_consumer=True,
                    config=config,
                    idle_heartbeat=1.0,
                    pending_msgs_limit=1_000_000,
                    pending_bytes_limit=512 * 1024 * 1024,
                )
            except Exception as exc:
                log.warning("cannot subscribe to %s from %d: %s; retrying", self.stream, start, exc)
                await asyncio.sleep(0.5)
                continue
            try:
                await self._read(sink)
            except LogIntegrityError as exc:
                if await self._reconcile(exc):
                    continue
                self._halted = str(exc)
                self._on_fault(f"log integrity: {exc}")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return
                log.warning("consumer of %s failed (%s); resubscribing", self.stream, exc)
                await asyncio.sleep(0.25)
            finally:
                with contextlib.suppress(Exception):
                    await self._sub.unsubscribe()

    async def _read(self, sink: BatchSink) -> None:
        deriver = self._deriver
        assert deriver is not None
        quiet_since = time.monotonic()
        while not self._stopping and self._halted is None:
            try:
                msg = await self._sub.next_msg(timeout=1.0)
            except TimeoutError:
                # Validators cut at least every heartbeat, so a quiet consumer is suspect: if the
                # stream holds entries past what it delivered, it died with its server; replace it.
                if time.monotonic() - quiet_since > max(3.0, 3 * self.settings.heartbeat_ms / 1000):
                    try:
                        info = await asyncio.wait_for(self._js.stream_info(self.stream), 2.0)
                    except Exception:
                        info = None
                    if info is not None and info.state.last_seq < deriver.last_seq:
                        raise LogIntegrityError(
                            f"the stream ends at {info.state.last_seq} but this node read entries up to "
                            f"{deriver.last_seq}: entries it delivered are no longer in the stream"
                        ) from None
                    self.resubscribed += 1
                    raise RuntimeError(f"no entries after {deriver.last_seq} for a while") from None
                continue
            quiet_since = time.monotonic()
            meta = msg.metadata
            seq = meta.sequence.stream
            kind = kind_of(msg.subject)
            if kind is None:
                continue
            if kind == VOTE:
                if seq > deriver.last_seq:
                    deriver.last_seq = seq
                    self._on_vote(msg.data)
                continue
            if kind == TX and self._outbox:
                # Read back from the stream: send it again only if it is still in no block much later.
                now = time.monotonic()
                for raw in unbundle(msg.data):
                    entry = self._outbox.get(hashlib.sha256(raw).digest())
                    if entry is not None:
                        entry[3] = now
            block = deriver.feed(seq, kind, msg.data)
            if kind == TX and deriver.pending and self._pending_since is None:
                self._pending_since = time.monotonic()
                self._wake.set()
            if block is None:
                continue
            self._last_cut_at = time.monotonic()
            self._pending_since = time.monotonic() if deriver.pending else None
            await asyncio.shield(sink(OrderedBatch(block.height, block.time_ms, block.txs, block.position)))

    async def _reconcile(self, error: LogIntegrityError) -> bool:
        """After an integrity failure: True if this node may read the log again from its last block.

        That is so when the cut of the last block this node applied is still in the stream, as it
        was: the entries after it that this node read (and that made the failure) were replaced in
        the stream, e.g. after a paused or killed server's uncommitted tail was dropped. Nothing
        derived from them was applied, so the node forgets them and reads again. When the cut is
        gone or changed, or the same block fails twice, the failure stands: the node stops.
        """
        deriver = self._deriver
        assert deriver is not None
        position = deriver.position
        if self._reconciled_at == position.height:
            return False
        if position.cut_seq > 0:
            try:
                message = await asyncio.wait_for(self._js.get_msg(self.stream, position.cut_seq), 5.0)
                cut = parse_cut(message.data, self.chain_id)
            except Exception as exc:
                log.error("cannot read back this node's last cut at %d: %s", position.cut_seq, exc)
                return False
            if cut is None or cut.hash != position.cut_hash:
                return False
        self._reconciled_at = position.height
        log.warning("log integrity (%s); the last applied cut is intact: reading again from it", error)
        self._deriver = LogDeriver(
            self.chain_id,
            position,
            self._validators,
            self._is_committed,
            committed_among=self._committed_among,
            decode=self._decode,
        )
        for entry in self._outbox.values():
            entry[3] = None  # what was read back may be gone: resend unless read back again
        self.rereads += 1
        return True

    # -- cutting ----------------------------------------------------------------------------------------
    def _rank(self) -> int | None:
        keys = sorted(self._validators())
        me = self.key.public_key.raw
        return keys.index(me) if me in keys else None

    async def _cut_loop(self) -> None:
        interval = self.settings.block_interval_ms / 1000
        heartbeat = self.settings.heartbeat_ms / 1000
        while not self._stopping:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval / 2)
            if self._halted is not None or self._deriver is None:
                continue
            rank = self._rank()
            if rank is None:
                continue
            now = time.monotonic()
            # The first validator cuts after one interval; the others stand by a little longer each.
            patience = 1 + rank
            due = (
                self._pending_since is not None and now - self._pending_since >= interval * patience
            ) or now - self._last_cut_at >= heartbeat * patience
            if due:
                await self._try_cut()

    async def _try_cut(self) -> None:
        from nats.js.errors import APIError

        deriver = self._deriver
        assert deriver is not None
        payload, expected = deriver.propose(
            self.key, time.time_ns() // 1_000_000, self.settings.max_block_txs
        )
        headers = {"Nats-Expected-Last-Subject-Sequence": str(expected)}
        try:
            await self._js.publish(self._subjects[CUT], payload, headers=headers)
            self.cuts_won += 1
        except APIError as exc:
            # Another validator cut first (wrong last sequence): its cut arrives through the consumer.
            self.cuts_lost += 1
            log.debug("cut not appended: %s", exc)
        except Exception as exc:
            log.debug("cut publish failed: %s", exc)
        self._last_cut_at = time.monotonic()
        if self._pending_since is not None:
            self._pending_since = time.monotonic()

    # -- callbacks and status ---------------------------------------------------------------------------
    async def _error_cb(self, exc: Exception) -> None:
        log.debug("nats: %s", exc)

    async def _disconnected_cb(self) -> None:
        log.info("nats: disconnected")

    async def _reconnected_cb(self) -> None:
        url = getattr(self._nc, "connected_url", None)
        log.info("nats: reconnected to %s", getattr(url, "netloc", url))

    def status(self) -> dict[str, Any]:
        deriver = self._deriver
        connected = bool(self._nc is not None and self._nc.is_connected)
        url = getattr(self._nc, "connected_url", None) if self._nc is not None else None
        return {
            "engine": self.name,
            "stream": self.stream,
            "connected": connected,
            "server": getattr(url, "netloc", None),
            "server_version": self.server_version,
            "log_sequence": None if deriver is None else deriver.last_seq,
            "pending_entries": None if deriver is None else deriver.pending,
            "pending_txs": None if deriver is None else deriver.pending_txs,
            "ignored_cuts": None if deriver is None else deriver.ignored_cuts,
            "cuts_won": self.cuts_won,
            "cuts_lost": self.cuts_lost,
            "outbox": len(self._outbox),
            "resent": self.resent,
            "resubscribed": self.resubscribed,
            "rereads": self.rereads,
            "validator_rank": self._rank(),
            "halted": self._halted,
            "block_interval_ms": self.settings.block_interval_ms,
            "heartbeat_ms": self.settings.heartbeat_ms,
        }
