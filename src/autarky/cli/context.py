"""What every command shares: the global options, the configuration, the keys folder, the node address.

The global options (``autarky [--config F] [--node URL] [--api-key K] [--keys-dir D] COMMAND``) are
kept in one :class:`Context` on Typer's context object; commands get it with :func:`current`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from autarky.cli.errors import UsageProblem
from autarky.cli.keyring import DEFAULT_KEYS_DIR, KeyRing
from autarky.config import DEFAULT_CONFIG_FILE, Config, load_config

T = TypeVar("T")

KEYS_DIR_ENV = "AUTARKY_KEYS_DIR"
NODE_ENV = "AUTARKY_NODE_URL"
"""Not AUTARKY_NODE: that name is the configuration's [node] section (AUTARKY_<SECTION>__<KEY>)."""


@dataclass
class Context:
    config_path: Path | None = None
    node_url: str | None = None
    api_key: str | None = None
    keys_dir: Path | None = None
    _config: Config | None = field(default=None, repr=False)

    # -- configuration ------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        """The TOML file in use: --config, else $AUTARKY_CONFIG, else ./autarky.toml."""
        if self.config_path is not None:
            return self.config_path
        return Path(os.environ.get("AUTARKY_CONFIG") or DEFAULT_CONFIG_FILE)

    def config(self, **overrides: Any) -> Config:
        """The configuration (file + environment); raises ConfigError, which the CLI reports with exit 2."""
        if overrides:
            return load_config(self.config_path, **overrides)
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    # -- keys -----------------------------------------------------------------------------------------
    @property
    def keyring(self) -> KeyRing:
        directory = self.keys_dir or Path(os.environ.get(KEYS_DIR_ENV) or DEFAULT_KEYS_DIR)
        return KeyRing(directory)

    # -- node -----------------------------------------------------------------------------------------
    def node_address(self) -> str:
        """The API base URL: --node, else $AUTARKY_NODE_URL, else http://{api.host}:{api.port} (config)."""
        url = self.node_url or os.environ.get(NODE_ENV)
        if url:
            if not url.startswith(("http://", "https://")):
                raise UsageProblem(f"--node {url!r} is not an http(s) URL, e.g. http://127.0.0.1:8620")
            return url.rstrip("/")
        api = self.config().api
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
        if api.port == 0:
            raise UsageProblem(
                "api.port is 0 (a free port chosen at start): pass --node URL as printed by the node"
            )
        return f"http://{host}:{api.port}"

    def node_api_key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key
        try:
            return self.config().api.api_key
        except Exception:  # a broken config is reported by whatever needs it; the key is optional
            return None


_current = Context()


def set_current(context: Context) -> None:
    """Called by the root command with the global options of this invocation."""
    global _current
    _current = context


def current() -> Context:
    return _current


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion (each command owns its event loop)."""
    return asyncio.run(coroutine)
