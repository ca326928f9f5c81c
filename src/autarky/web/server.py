"""Serving the API in the caller's event loop, next to the node it serves.

    node = await Node.open(settings); await node.start()
    api = await start_api(node, port=0)        # port 0: the OS picks a free port
    print(api.url)                             # http://127.0.0.1:54321
    ...
    await api.stop(); await node.stop()

uvicorn runs as a task of the current loop (so route handlers and the node share one thread, see
``api.py``), logs only warnings, leaves the process's logging configuration alone and installs no
signal handlers: the caller owns Ctrl-C. ``stop()`` ends open event streams first, then lets
in-flight requests finish (at most ``GRACEFUL_SHUTDOWN_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from autarky.node.node import Node
from autarky.web.api import DEFAULT_MAX_BODY_BYTES, create_app

log = logging.getLogger("autarky.web")

GRACEFUL_SHUTDOWN_S = 5
STARTUP_TIMEOUT_S = 10.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The embedding program decides what Ctrl-C does; uvicorn must not take SIGINT/SIGTERM.
        yield


class ApiServer:
    """A running API server. ``url`` is where it answers; ``await stop()`` ends it."""

    def __init__(
        self, app: FastAPI, server: uvicorn.Server, task: asyncio.Task[None], host: str, port: int
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server = server
        self._task = task

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self.app.state.closing.set()  # ends every event stream (see events.py)
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def __repr__(self) -> str:
        return f"ApiServer({self.url})"


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, _ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    # The protocol must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it a response written in two parts waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def start_api(
    node: Node,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ApiServer:
    """Serve ``create_app(node, api_key)`` on ``host:port`` in the running event loop."""
    if api_key is None and host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("the API listens on %s without an API key: admin routes are open to that network", host)
    app = create_app(node, api_key, max_body_bytes=max_body_bytes)
    sock = _bind(host, port)
    bound_port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"autarky-api-{bound_port}")
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # raises what stopped the server
            raise RuntimeError("the API server stopped during startup")
        if asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the API server did not start within {STARTUP_TIMEOUT_S} s")
        await asyncio.sleep(0.01)
    return ApiServer(app, server, task, host, bound_port)
