"""A whole Autarky cluster on this machine: N local nats-servers and M nodes, each node its own process.

Used by ``autarky cluster up``, ``autarky up --engine nats`` and the cluster benchmark. Everything
listens on 127.0.0.1 with ports the OS picked as free; everything lives in one directory::

    base_dir/cluster.json            what runs where (see below); written last by create()
    base_dir/cluster.lock            flock held by the one program that created, reopened or started it
    base_dir/genesis.json            the one genesis every node starts from (validators = all node keys)
    base_dir/nats/n<j>/              LocalCluster: nats-server.conf, store/, nats-server.log
    base_dir/node<i>/                node i's data directory (init_data_dir with its own node key)
    base_dir/node<i>/autarky.toml    [node] engine = "nats"; [nats] servers (node i's own server first),
                                     monitor_urls, replicas; [api] 127.0.0.1 and a fixed free port
    base_dir/node<i>/node.log        the node process's stdout and stderr (never a pipe)

The API (keep it stable: ``autarky bench cluster`` and ``autarky up --engine nats`` are written
against it)::

    cluster = LocalAutarkyCluster.create(base_dir, nodes=3, servers=3, *, chain_id="autarky-local",
                                         genesis_extra_allocations=[(did, asset, amount), ...],
                                         block_interval_ms=20, duplicate_window_s=120.0,
                                         replicas=None)          # None: min(servers, 3)
    async with cluster:                     # start(timeout_s=60) ... stop()
        cluster.api_urls                    # ["http://127.0.0.1:<port>", ...], node i at index i
        await cluster.status()              # [node i's /api/v1/status + index, api_url, pid, running,
                                            #  nats_server (health of the server it is connected to)]
                                            # or {index, api_url, ..., "error": "..."} if unreachable
        await cluster.server_health()       # [{name, url, monitor_url, pid, healthy, detail}, ...]
        await cluster.wait_converged(60)    # all running nodes at one height and state root:
                                            # {height, state_root, block_hash, final_height, nodes, seconds}
        cluster.nodes[1].kill()             # NodeProcess: kill (SIGKILL), terminate, start, restart,
        cluster.nodes[1].start()            #   running, pid, index, api_url, data_dir, config_path,
        await cluster.nodes[1].wait_ready() #   log_path, process
        cluster.nats.servers[0].pause()     # LocalServer: kill, pause, resume, restart (nats_server.py)

``create`` also takes ``genesis_identities`` (identity-module accounts at block 0),
``genesis_time_ms`` and ``api_ports`` (fixed API ports, node i at index i; 0 or missing = a free
port). ``LocalAutarkyCluster.open(base_dir)`` reads ``cluster.json`` again: as recorded (for
``autarky cluster status`` from another process), or with ``fresh_ports=True`` to start a stopped
cluster again on ports that are free now (server names, stores, node data and keys stay the same).

``cluster.json``: ``format`` ("autarky-cluster"), ``version``, ``chain_id``, ``base_dir``,
``replicas``, ``block_interval_ms``, ``duplicate_window_s``, ``stream``, ``supervisor_pid``, ``nodes``
(``index``, ``api_url``, ``dashboard_url``, ``data_dir``, ``config_path``, ``log_path``, ``node_key``
(did), ``pid``) and ``servers`` (``name``, ``url``, ``monitor_url``, ``client_port``, ``cluster_port``,
``monitor_port``, ``store_dir``, ``config_path``, ``log_path``, ``pid``). Pids are those of running
processes, ``null`` once stopped.

Processes: :meth:`LocalAutarkyCluster.start` starts the servers (waiting until every ``/healthz``
answers 200), then every node as ``python -m autarky.cli -v --config node<i>/autarky.toml node start``
in its own session (so a Ctrl-C at the terminal reaches only the program that owns the cluster, which
then stops the nodes before the servers), with ``AUTARKY_*`` removed from its environment (the file
decides), and waits until every node's ``/readyz`` answers 200. :meth:`LocalAutarkyCluster.stop`
sends SIGTERM to the nodes, waits (SIGKILL after 20 s), then stops the servers the same way; it is
idempotent and also runs when ``start`` fails. Every node process is also remembered in a
module-level table and killed at interpreter exit, like the servers (a ``kill -9`` of the owning
Python process cannot be covered; ``cluster.json`` has the pids).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from autarky.crypto.keys import SigningKey
from autarky.engines.nats import NatsSettings
from autarky.engines.nats_server import (
    HOST,
    ChildProcess,
    LocalCluster,
    LocalServer,
)
from autarky.node.genesis import dev_genesis, write_genesis
from autarky.node.node import init_data_dir

__all__ = ["CLUSTER_FILE", "ClusterError", "LocalAutarkyCluster", "NodeProcess"]

CLUSTER_FILE = "cluster.json"
LOCK_FILE = "cluster.lock"
FORMAT = "autarky-cluster"
VERSION = 1
NODE_CONFIG_FILE = "autarky.toml"
NODE_LOG_FILE = "node.log"
NATS_DIR = "nats"
NODE_STOP_TIMEOUT_S = 20.0
SERVER_STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 3.0


class ClusterError(Exception):
    """The local cluster could not be created, started or read; the message says which part and why."""


# --------------------------------------------------------------------------------------------------
# Node processes

# Node processes are killed at interpreter exit like the nats-servers: one registry,
# engines/nats_server.track_process.


def _child_environment() -> dict[str, str]:
    """This process's environment without AUTARKY_* settings: the node's config file decides."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}


@dataclass(eq=False)
class NodeProcess(ChildProcess):
    """One node, run as ``autarky node start`` in its own process from ``config_path``.

    Output goes to ``log_path`` (appended). ``start`` does not wait; :meth:`wait_ready` does.
    """

    index: int
    api_url: str
    data_dir: Path
    config_path: Path
    node_key: str = ""
    """The node's did:key (its validator key)."""
    process: subprocess.Popen[bytes] | None = None
    recorded_pid: int | None = None
    """The pid ``cluster.json`` named when this object was read from it (another process's child)."""
    _sigterm_sent: bool = field(default=False, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / NODE_LOG_FILE

    @property
    def dashboard_url(self) -> str:
        return self.api_url + "/"

    @property
    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid if self.process.poll() is None else None
        return self.recorded_pid

    def command(self) -> list[str]:
        return [sys.executable, "-m", "autarky.cli", "-v", "--config", str(self.config_path), "node", "start"]

    def start(self) -> None:
        """Launch the node process (its own session; output appended to ``log_path``)."""
        if self.running:
            raise ClusterError(f"node {self.index} is already running (pid {self.pid})")
        self._reap()
        self._launch(
            self.command(), self.log_path, f"node {self.index}", cwd=self.data_dir, env=_child_environment()
        )
        self.recorded_pid = None

    def terminate(self, timeout_s: float = NODE_STOP_TIMEOUT_S) -> None:
        """SIGTERM (the node finishes its block and stops), wait up to ``timeout_s``, then SIGKILL."""
        self._send_sigterm()
        self._wait_or_kill(timeout_s)

    def restart(self) -> None:
        """Stop the process if it runs (SIGTERM), then start it again: same config, data and port."""
        self.terminate()
        self.start()

    async def wait_ready(self, timeout_s: float = 60) -> None:
        """Wait until ``/readyz`` answers 200; raise :class:`ClusterError` (with the log's end) if not."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise ClusterError(
                        f"node {self.index} exited with code {self.process.returncode} while starting; "
                        f"last lines of {self.log_path}:\n{self.log_tail()}"
                    )
                try:
                    response = await client.get(f"{self.api_url}/readyz")
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text.strip()}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise ClusterError(
                        f"node {self.index} not ready after {timeout_s:g} s ({self.api_url}/readyz: {last}); "
                        f"last lines of {self.log_path}:\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "api_url": self.api_url,
            "dashboard_url": self.dashboard_url,
            "data_dir": str(self.data_dir),
            "config_path": str(self.config_path),
            "log_path": str(self.log_path),
            "node_key": self.node_key,
            "pid": self.pid,
        }


# --------------------------------------------------------------------------------------------------
# Files


def _free_ports(count: int, exclude: Sequence[int] = ()) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago, none of ``exclude``."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
            if port not in exclude:
                ports.append(port)
        return ports


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string uses the same escapes


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_string(value) for value in values) + "]"


def _node_config(
    data_dir: Path,
    chain_id: str,
    port: int,
    servers: Sequence[str],
    monitor_urls: Sequence[str],
    replicas: int,
    block_interval_ms: int,
    duplicate_window_s: float,
) -> str:
    return "\n".join(
        [
            "# Written by autarky.cluster.local.LocalAutarkyCluster; rewritten when the cluster is reopened.",
            "[node]",
            f"data_dir = {_toml_string(str(data_dir))}",
            f"chain_id = {_toml_string(chain_id)}",
            'engine = "nats"',
            "# Every node of a local cluster shares this machine's cores: admission checks run in",
            "# threads, not in worker processes per node (whose pickling and extra processes cost",
            "# more than they give here; `autarky bench cluster` measured 0.37 -> 0.47 of embedded).",
            "verify_processes = 0",
            "",
            "[nats]",
            f"servers = {_toml_list(servers)}",
            f"monitor_urls = {_toml_list(monitor_urls)}",
            f"replicas = {replicas}",
            f"block_interval_ms = {block_interval_ms}",
            f"duplicate_window_s = {float(duplicate_window_s)!r}",
            "",
            "[api]",
            f"host = {_toml_string(HOST)}",
            f"port = {port}",
            "",
        ]
    )


def _own_server_first(urls: Sequence[str], index: int) -> list[str]:
    """Node ``index`` connects to server ``index mod n`` first and fails over to the others in order."""
    own = index % len(urls)
    return [urls[own], *urls[:own], *urls[own + 1 :]]


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def _server_from_json(entry: Mapping[str, Any]) -> LocalServer:
    return LocalServer(
        name=str(entry["name"]),
        client_port=int(entry["client_port"]),
        cluster_port=None if entry.get("cluster_port") is None else int(entry["cluster_port"]),
        monitor_port=int(entry["monitor_port"]),
        store_dir=Path(entry["store_dir"]),
        config_path=Path(entry["config_path"]),
    )


def _server_json(server: LocalServer, recorded_pid: int | None = None) -> dict[str, Any]:
    pid = server.process.pid if server.running and server.process is not None else recorded_pid
    return {
        "name": server.name,
        "url": server.url,
        "monitor_url": server.monitor_url,
        "client_port": server.client_port,
        "cluster_port": server.cluster_port,
        "monitor_port": server.monitor_port,
        "store_dir": str(server.store_dir),
        "config_path": str(server.config_path),
        "log_path": str(server.log_path),
        "pid": pid,
    }


def _lock_directory(base_dir: Path) -> int:
    """Take ``base_dir/cluster.lock`` (an exclusive flock) and return its descriptor, or raise.

    Held from create/open(fresh_ports)/start until stop, so two programs never run (or rewrite the
    configs of) one cluster directory: two nodes on one ledger would corrupt it.
    """
    fd = os.open(base_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ClusterError(
            f"the cluster in {base_dir} is in use by another process (pid {holder}); stop that one first "
            f"(`autarky cluster status --dir {base_dir}` shows what runs)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


# --------------------------------------------------------------------------------------------------
# The cluster


class LocalAutarkyCluster:
    """Local nats-servers and node processes, described by ``base_dir/cluster.json`` (module docstring)."""

    def __init__(
        self,
        base_dir: Path,
        nats: LocalCluster,
        nodes: Sequence[NodeProcess],
        *,
        chain_id: str,
        replicas: int,
        block_interval_ms: int,
        duplicate_window_s: float,
        server_pids: Mapping[str, int | None] | None = None,
        supervisor_pid: int | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.nats = nats
        self.nodes = list(nodes)
        self.chain_id = chain_id
        self.replicas = replicas
        self.block_interval_ms = block_interval_ms
        self.duplicate_window_s = duplicate_window_s
        self._server_pids = dict(server_pids or {})
        self._supervisor_pid = supervisor_pid
        self._lock: int | None = None

    # -- the lock: one process runs a cluster directory at a time ---------------------------------------
    def _acquire_lock(self) -> None:
        if self._lock is None:
            self._lock = _lock_directory(self.base_dir)

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    # -- creating and opening ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        base_dir: Path,
        nodes: int = 3,
        servers: int = 3,
        *,
        chain_id: str = "autarky-local",
        genesis_extra_allocations: Sequence[tuple[str, str, int]] = (),
        block_interval_ms: int = 20,
        duplicate_window_s: float = 120.0,
        replicas: int | None = None,
        genesis_identities: Sequence[Mapping[str, Any]] = (),
        genesis_time_ms: int | None = None,
        genesis_modules: Mapping[str, Any] | None = None,
        api_ports: Sequence[int] = (),
    ) -> LocalAutarkyCluster:
        """Write the servers' configs, one genesis, every node's data directory and config. Starts nothing.

        Every node is a validator. ``genesis_extra_allocations`` fund accounts at block 0 (the fee
        asset is ``aut``); ``replicas`` defaults to ``min(servers, 3)``.
        """
        base_dir = Path(base_dir).resolve()
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        if servers < 1:
            raise ValueError("a cluster needs at least one nats-server")
        replicas = min(servers, 3) if replicas is None else replicas
        if not 1 <= replicas <= min(servers, 5):
            raise ValueError(f"replicas must be between 1 and {min(servers, 5)} with {servers} server(s)")
        if replicas == 1 and servers > 1:
            raise ValueError("replicas = 1 is for a single server; with several servers use 3 or 5")
        if len(api_ports) > nodes:
            raise ValueError(f"{len(api_ports)} API ports given for {nodes} nodes")
        base_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock_directory(base_dir)
        try:
            return cls._create_locked(
                base_dir,
                lock,
                nodes,
                servers,
                chain_id=chain_id,
                genesis_extra_allocations=genesis_extra_allocations,
                block_interval_ms=block_interval_ms,
                duplicate_window_s=duplicate_window_s,
                replicas=replicas,
                genesis_identities=genesis_identities,
                genesis_time_ms=genesis_time_ms,
                genesis_modules=genesis_modules,
                api_ports=api_ports,
            )
        except BaseException:
            os.close(lock)
            raise

    @classmethod
    def _create_locked(
        cls,
        base_dir: Path,
        lock: int,
        nodes: int,
        servers: int,
        *,
        chain_id: str,
        genesis_extra_allocations: Sequence[tuple[str, str, int]],
        block_interval_ms: int,
        duplicate_window_s: float,
        replicas: int,
        genesis_identities: Sequence[Mapping[str, Any]],
        genesis_time_ms: int | None,
        api_ports: Sequence[int],
        genesis_modules: Mapping[str, Any] | None = None,
    ) -> LocalAutarkyCluster:
        for existing in [base_dir / CLUSTER_FILE, base_dir / NATS_DIR] + [
            base_dir / f"node{index}" for index in range(nodes)
        ]:
            if existing.exists():
                raise ClusterError(
                    f"{existing} exists: {base_dir} already holds a cluster (or part of one); "
                    "reopen it with LocalAutarkyCluster.open, or choose an empty directory"
                )

        node_keys = [SigningKey.generate() for _ in range(nodes)]
        genesis = dev_genesis(
            chain_id,
            time_ms=time.time_ns() // 1_000_000 if genesis_time_ms is None else genesis_time_ms,
            allocations=list(genesis_extra_allocations),
            identities=list(genesis_identities),
            validators=[key.public_key.raw for key in node_keys],
            modules=genesis_modules,
        )
        nats = LocalCluster.create(base_dir / NATS_DIR, servers)
        node_processes = []
        for index, key in enumerate(node_keys):
            data_dir = base_dir / f"node{index}"
            init_data_dir(data_dir, genesis, key)
            node_processes.append(
                NodeProcess(
                    index=index,
                    api_url="",
                    data_dir=data_dir,
                    config_path=data_dir / NODE_CONFIG_FILE,
                    node_key=key.did,
                )
            )
        write_genesis(base_dir / "genesis.json", genesis)
        cluster = cls(
            base_dir,
            nats,
            node_processes,
            chain_id=chain_id,
            replicas=replicas,
            block_interval_ms=block_interval_ms,
            duplicate_window_s=duplicate_window_s,
        )
        cluster._lock = lock  # held until stop()
        cluster._write_node_configs(api_ports)
        cluster.write_description()  # last: a directory with cluster.json is a complete cluster
        return cluster

    @classmethod
    def open(
        cls, base_dir: Path, *, fresh_ports: bool = False, api_ports: Sequence[int] = ()
    ) -> LocalAutarkyCluster:
        """The cluster ``base_dir/cluster.json`` describes; nothing is started.

        ``fresh_ports=True`` (for starting a stopped cluster again) picks new free ports for the
        servers and the APIs (``api_ports`` where given) and rewrites every config file; server names,
        stores, node data and keys stay. Without it, the description is taken as recorded (to look at
        a cluster another process runs).
        """
        base_dir = Path(base_dir).resolve()
        path = base_dir / CLUSTER_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ClusterError(f"{base_dir} holds no cluster ({CLUSTER_FILE} is missing)") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ClusterError(f"cannot read {path}: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ClusterError(f"{path} is not an Autarky cluster description")
        if document.get("version") != VERSION:
            raise ClusterError(
                f"{path} has version {document.get('version')!r}; this Autarky reads {VERSION}"
            )
        try:
            nodes = [
                NodeProcess(
                    index=int(entry["index"]),
                    api_url=str(entry["api_url"]),
                    data_dir=Path(entry["data_dir"]),
                    config_path=Path(entry["config_path"]),
                    node_key=str(entry.get("node_key", "")),
                    recorded_pid=None if fresh_ports else entry.get("pid"),
                )
                for entry in document["nodes"]
            ]
            server_entries = list(document["servers"])
            if fresh_ports:
                nats = LocalCluster.create(base_dir / NATS_DIR, len(server_entries))
                names = [str(entry["name"]) for entry in server_entries]
                if [server.name for server in nats.servers] != names:
                    raise ClusterError(f"{path} names servers {names}; cannot recreate them")
                server_pids: dict[str, int | None] = {}
            else:
                nats = LocalCluster(
                    base_dir / NATS_DIR, [_server_from_json(e) for e in server_entries], "autarky"
                )
                server_pids = {str(e["name"]): e.get("pid") for e in server_entries}
            cluster = cls(
                base_dir,
                nats,
                nodes,
                chain_id=str(document["chain_id"]),
                replicas=int(document["replicas"]),
                block_interval_ms=int(document["block_interval_ms"]),
                duplicate_window_s=float(document["duplicate_window_s"]),
                server_pids=server_pids,
                supervisor_pid=None if fresh_ports else document.get("supervisor_pid"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClusterError(f"{path} is damaged: {type(exc).__name__}: {exc}") from exc
        if fresh_ports:
            cluster._acquire_lock()  # held until stop(): nobody else may rewrite or start this directory
            cluster._write_node_configs(api_ports)
            cluster.write_description()
        return cluster

    def _write_node_configs(self, api_ports: Sequence[int]) -> None:
        taken = [port for server in self.nats.servers for port in self._server_ports(server)]
        chosen = [port for port in api_ports if port]
        free = iter(_free_ports(len(self.nodes), exclude=[*taken, *chosen]))
        urls = self.nats.urls
        for node in self.nodes:
            given = api_ports[node.index] if node.index < len(api_ports) else 0
            port = given or next(free)
            node.api_url = f"http://{HOST}:{port}"
            node.config_path.write_text(
                _node_config(
                    node.data_dir,
                    self.chain_id,
                    port,
                    _own_server_first(urls, node.index),
                    self.nats.monitor_urls,
                    self.replicas,
                    self.block_interval_ms,
                    self.duplicate_window_s,
                ),
                encoding="utf-8",
            )

    @staticmethod
    def _server_ports(server: LocalServer) -> list[int]:
        ports = [server.client_port, server.monitor_port]
        return ports if server.cluster_port is None else [*ports, server.cluster_port]

    # -- description ------------------------------------------------------------------------------------
    @property
    def api_urls(self) -> list[str]:
        return [node.api_url for node in self.nodes]

    @property
    def server_urls(self) -> list[str]:
        return self.nats.urls

    @property
    def monitor_urls(self) -> list[str]:
        return self.nats.monitor_urls

    @property
    def stream(self) -> str:
        return NatsSettings().stream_name(self.chain_id)

    def describe(self) -> dict[str, Any]:
        """What ``cluster.json`` holds (see the module docstring)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "chain_id": self.chain_id,
            "base_dir": str(self.base_dir),
            "genesis": str(self.base_dir / "genesis.json"),
            "replicas": self.replicas,
            "block_interval_ms": self.block_interval_ms,
            "duplicate_window_s": self.duplicate_window_s,
            "stream": self.stream,
            "supervisor_pid": self._supervisor_pid,
            "nodes": [node.to_json() for node in self.nodes],
            "servers": [_server_json(s, self._server_pids.get(s.name)) for s in self.nats.servers],
        }

    def write_description(self) -> None:
        _write_json(self.base_dir / CLUSTER_FILE, self.describe())

    # -- running ----------------------------------------------------------------------------------------
    async def start(self, timeout_s: float = 60) -> None:
        """Start the servers (until all are healthy), then every node process (until all are ready).

        On any failure, or cancellation, everything this cluster started is stopped again before the
        exception propagates; a :class:`ClusterError` names the node and shows the end of its log.
        """
        deadline = time.monotonic() + timeout_s
        self._acquire_lock()
        try:
            await self.nats.start(timeout_s)
            for node in self.nodes:
                if not node.running:
                    node.start()
            self._supervisor_pid = os.getpid()
            self._server_pids = {}
            self.write_description()
            remaining = max(deadline - time.monotonic(), 1.0)
            await asyncio.gather(*(node.wait_ready(remaining) for node in self.nodes))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM every node and wait (SIGKILL after 20 s), then the servers the same way. Idempotent."""
        try:
            for node in self.nodes:  # signal all first, so they shut down in parallel
                node._send_sigterm()
            for node in self.nodes:
                node._wait_or_kill(NODE_STOP_TIMEOUT_S)
        finally:
            self.nats.stop()
            self._supervisor_pid = None
            self._server_pids = {}
            if self.started_here:
                with contextlib.suppress(OSError):
                    self.write_description()
            self._release_lock()

    @property
    def started_here(self) -> bool:
        """Whether this object started (or ever held) processes of its own."""
        return any(node.process is not None for node in self.nodes) or any(
            server.process is not None for server in self.nats.servers
        )

    async def __aenter__(self) -> LocalAutarkyCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- looking at it ----------------------------------------------------------------------------------
    async def server_health(self, client: httpx.AsyncClient | None = None) -> list[dict[str, Any]]:
        """Each server's ``GET /healthz`` (200 = JetStream current and in contact with its meta leader)."""
        async with contextlib.AsyncExitStack() as stack:
            if client is None:
                client = await stack.enter_async_context(httpx.AsyncClient(timeout=HTTP_TIMEOUT_S))
            results = await asyncio.gather(*(_healthz(client, s.monitor_url) for s in self.nats.servers))
        return [
            {
                "name": server.name,
                "url": server.url,
                "monitor_url": server.monitor_url,
                "pid": _server_json(server, self._server_pids.get(server.name))["pid"],
                "healthy": healthy,
                "detail": detail,
            }
            for server, (healthy, detail) in zip(self.nats.servers, results, strict=True)
        ]

    async def status(self) -> list[dict[str, Any]]:
        """One dict per node: its ``/api/v1/status`` (or ``error``), with ``nats_server`` health."""
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            statuses, health = await asyncio.gather(
                asyncio.gather(*(_node_status(client, node) for node in self.nodes)),
                self.server_health(client),
            )
        by_address = {entry["url"].removeprefix("nats://"): entry for entry in health}
        for entry in statuses:
            engine = entry.get("engine")
            server = engine.get("server") if isinstance(engine, dict) else None
            entry["nats_server"] = by_address.get(server) if isinstance(server, str) else None
        return list(statuses)

    async def wait_converged(self, timeout_s: float = 60) -> dict[str, Any]:
        """Wait until every running node reports one height and state root; return what they agree on.

        "Running" means the processes this object started and has not stopped; for a cluster opened
        from ``cluster.json`` every node counts. Raises :class:`ClusterError` after ``timeout_s``.
        """
        started = time.monotonic()
        watched = [node for node in self.nodes if node.running] or (
            [] if self.started_here else list(self.nodes)
        )
        if not watched:
            raise ClusterError("no node of the cluster is running")
        last: list[dict[str, Any]] = []
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            while True:
                last = list(await asyncio.gather(*(_node_status(client, node) for node in watched)))
                answers = {(entry.get("height"), entry.get("state_root")) for entry in last}
                if not any("error" in entry for entry in last) and len(answers) == 1:
                    height, state_root = answers.pop()
                    return {
                        "height": height,
                        "state_root": state_root,
                        "block_hash": last[0].get("block_hash"),
                        "final_height": min(int(entry.get("final_height") or 0) for entry in last),
                        "nodes": [node.index for node in watched],
                        "seconds": round(time.monotonic() - started, 3),
                    }
                if time.monotonic() - started >= timeout_s:
                    break
                await asyncio.sleep(0.1)
        described = "; ".join(
            f"node {entry['index']}: "
            + (
                f"error {entry['error']}"
                if "error" in entry
                else f"height {entry.get('height')} root {str(entry.get('state_root'))[:12]}"
                f"{' fault ' + str(entry['fault']) if entry.get('fault') else ''}"
            )
            for entry in last
        )
        raise ClusterError(f"nodes did not converge in {timeout_s:g} s: {described}")


async def _node_status(client: httpx.AsyncClient, node: NodeProcess) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "index": node.index,
        "api_url": node.api_url,
        "pid": node.pid,
        "running": node.running if node.process is not None else None,
    }
    try:
        response = await client.get(f"{node.api_url}/api/v1/status")
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return entry
    if not isinstance(document, dict):
        entry["error"] = "the status is not a JSON object"
        return entry
    return {**document, **entry}


async def _healthz(client: httpx.AsyncClient, monitor_url: str) -> tuple[bool, str]:
    try:
        response = await client.get(f"{monitor_url}/healthz")
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.status_code == 200:
        return True, "ok"
    return False, f"HTTP {response.status_code}: {response.text.strip()}"
