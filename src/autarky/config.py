"""Configuration: ``autarky.toml`` with environment overrides.

Precedence, highest first: command-line options, environment variables
``AUTARKY_<SECTION>__<KEY>`` (e.g. ``AUTARKY_API__PORT=9000``), the TOML file, the defaults below.
The TOML file is ``./autarky.toml`` unless ``--config`` or ``AUTARKY_CONFIG`` names another.

Example ``autarky.toml``::

    [node]
    data_dir = ".autarky/node"
    block_interval_ms = 10

    [api]
    host = "127.0.0.1"
    port = 8620

The ``nats`` engine (blocks ordered by a replicated JetStream stream; see
:mod:`autarky.engines.nats`) is one line plus a ``[nats]`` section::

    [node]
    engine = "nats"

    [nats]
    servers = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
    monitor_urls = ["http://10.0.0.1:8222", "http://10.0.0.2:8222", "http://10.0.0.3:8222"]
    replicas = 3

With ``engine = "nats"`` the block timing comes from ``[nats]`` (``block_interval_ms``,
``heartbeat_ms``, ``max_block_txs``); the same keys in ``[node]`` drive the embedded engine only.
``monitor_urls`` are the servers' HTTP monitoring addresses: at start the node reads every server's
``/varz`` and ``/jsz`` and refuses to run on one without ``jetstream { sync_interval: always }`` or
older than 2.14.5 (``check_servers = false`` skips that check; do not, outside a test).
List settings from the environment are JSON or comma-separated:
``AUTARKY_NATS__SERVERS=nats://a:4222,nats://b:4222``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from autarky.engines.mempool import MempoolLimits
from autarky.engines.nats import NatsSettings
from autarky.node.errors import ConfigError
from autarky.node.node import NodeSettings

DEFAULT_CONFIG_FILE = "autarky.toml"


class NodeSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data_dir: Path = Path(".autarky/node")
    chain_id: str = "autarky-local"
    engine: Literal["embedded", "nats"] = "embedded"
    block_interval_ms: int = Field(10, ge=1, le=60_000)
    max_block_txs: int = Field(2000, ge=1, le=100_000)
    max_block_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    heartbeat_ms: int = Field(1000, ge=10, le=3_600_000)
    checkpoint_blocks: int = Field(500, ge=1)
    verify_threads: int = Field(2, ge=1, le=64)
    verify_processes: int = Field(2, ge=0, le=64)


class MempoolSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_tx_bytes: int = Field(64 * 1024, ge=256, le=1024 * 1024)
    max_txs: int = Field(50_000, ge=1)
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_per_sender: int = Field(1000, ge=1)


class ApiSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(8620, ge=0, le=65535)
    api_key: str | None = None
    max_body_bytes: int = Field(128 * 1024, ge=1024)


NATS_URL_SCHEMES = ("nats", "tls", "ws", "wss")
MONITOR_URL_SCHEMES = ("http", "https")


def _url_list(value: Any) -> Any:
    """A list as TOML gives it, or text from the environment: JSON (``["a", "b"]``) or ``a,b``."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list: {exc}") from exc
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _check_urls(urls: list[str], schemes: tuple[str, ...], example: str) -> list[str]:
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"{url!r} is not a {'/'.join(schemes)} URL like {example!r}")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number or out of range
        except ValueError as exc:
            raise ValueError(f"{url!r}: {exc}") from exc
    return urls


class NatsSection(BaseModel):
    """``[nats]``: how a node with ``engine = "nats"`` reaches its NATS cluster (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    servers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Client URLs (``nats://host:4222``); the node connects to one and fails over to the others."""
    monitor_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Every server's monitoring URL (``http://host:8222``), for the requirement check at start."""
    stream: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """JetStream stream name (default ``AUTARKY_<CHAIN_ID>``)."""
    replicas: int = Field(3, ge=1, le=5)
    """Copies of the stream: 3 survives one failed server, 5 two; 1 only for a single dev server."""
    duplicate_window_s: float = Field(120.0, gt=0, le=86_400)
    block_interval_ms: int = Field(20, ge=1, le=60_000)
    heartbeat_ms: int = Field(1000, ge=10, le=3_600_000)
    max_block_txs: int = Field(2000, ge=1, le=100_000)
    connect_timeout_s: float = Field(10.0, gt=0, le=600)
    publish_timeout_s: float = Field(10.0, gt=0, le=600)
    creds_file: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    check_servers: bool = True
    resend_after_s: float = Field(5.0, gt=0, le=3600)

    @field_validator("servers", "monitor_urls", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _url_list(value)

    @field_validator("servers")
    @classmethod
    def _server_urls(cls, urls: list[str]) -> list[str]:
        return _check_urls(urls, NATS_URL_SCHEMES, "nats://127.0.0.1:4222")

    @field_validator("monitor_urls")
    @classmethod
    def _monitor_urls(cls, urls: list[str]) -> list[str]:
        return _check_urls(urls, MONITOR_URL_SCHEMES, "http://127.0.0.1:8222")

    @model_validator(mode="after")
    def _consistent(self) -> NatsSection:
        if self.replicas == 1 and max(len(self.servers), len(self.monitor_urls)) > 1:
            raise ValueError(
                "replicas = 1 keeps a single copy of the log, which is only for a one-server development "
                "setup; with several servers use 3 (survives one failed server) or 5 (survives two)"
            )
        if self.password is not None and self.user is None:
            raise ValueError("password is set without user")
        if self.user is not None and self.password is None:
            raise ValueError("user is set without password")
        if self.tls_key is not None and self.tls_cert is None:
            raise ValueError("tls_key is set without tls_cert")
        if self.tls_cert is not None and self.tls_key is None:
            raise ValueError("tls_cert is set without tls_key")
        return self

    def settings(self) -> NatsSettings:
        return NatsSettings(
            servers=tuple(self.servers),
            monitor_urls=tuple(self.monitor_urls),
            stream=self.stream,
            replicas=self.replicas,
            duplicate_window_s=self.duplicate_window_s,
            max_block_txs=self.max_block_txs,
            block_interval_ms=self.block_interval_ms,
            heartbeat_ms=self.heartbeat_ms,
            connect_timeout_s=self.connect_timeout_s,
            publish_timeout_s=self.publish_timeout_s,
            creds_file=self.creds_file,
            user=self.user,
            password=self.password,
            token=self.token,
            tls_ca=self.tls_ca,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
            check_servers=self.check_servers,
            resend_after_s=self.resend_after_s,
        )


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                self._data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: not valid TOML: {exc}") from exc

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTARKY_", env_nested_delimiter="__", extra="forbid")
    node: NodeSection = NodeSection()
    mempool: MempoolSection = MempoolSection()
    api: ApiSection = ApiSection()
    nats: NatsSection = NatsSection()

    _toml_path: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, _CURRENT_TOML_PATH))

    def check_engine(self) -> None:
        """Raise :class:`ConfigError` when the chosen engine lacks what it needs (``[nats]`` servers)."""
        if self.node.engine != "nats":
            return
        if not self.nats.servers:
            raise ConfigError(
                'node.engine is "nats" but no NATS servers are configured: set [nats] servers = '
                '["nats://host:4222", ...] in autarky.toml (or AUTARKY_NATS__SERVERS), '
                'or use engine = "embedded"'
            )
        if self.nats.check_servers and not self.nats.monitor_urls:
            raise ConfigError(
                'node.engine is "nats" but [nats] monitor_urls is empty, so the servers\' settings '
                "(sync_interval: always, version) cannot be checked at start: list every server's "
                'monitoring URL, e.g. monitor_urls = ["http://host:8222", ...], or set '
                "check_servers = false (not recommended)"
            )

    def node_settings(self) -> NodeSettings:
        """The node's settings; with ``engine = "nats"`` they carry :class:`NatsSettings` from ``[nats]``."""
        self.check_engine()
        n, m = self.node, self.mempool
        return NodeSettings(
            data_dir=n.data_dir,
            block_interval_ms=n.block_interval_ms,
            max_block_txs=n.max_block_txs,
            max_block_bytes=n.max_block_bytes,
            heartbeat_ms=n.heartbeat_ms,
            checkpoint_blocks=n.checkpoint_blocks,
            verify_threads=n.verify_threads,
            verify_processes=n.verify_processes,
            mempool=MempoolLimits(m.max_tx_bytes, m.max_txs, m.max_bytes, m.max_per_sender),
            engine=n.engine,
            nats=self.nats.settings() if n.engine == "nats" else None,
        )


_CURRENT_TOML_PATH: Path | None = None


def load_config(path: Path | str | None = None, **overrides: Any) -> Config:
    """Load configuration from ``path`` (or ``$AUTARKY_CONFIG`` or ``./autarky.toml``) and the environment.

    ``overrides`` are sections as dicts, e.g. ``load_config(api={"port": 0})``; they win over everything.
    Raises :class:`ConfigError` with the offending setting named.
    """
    global _CURRENT_TOML_PATH
    if path is None:
        path = os.environ.get("AUTARKY_CONFIG") or DEFAULT_CONFIG_FILE
    toml_path = Path(path)
    if path != DEFAULT_CONFIG_FILE and not toml_path.exists():
        raise ConfigError(f"config file {toml_path} does not exist")
    _CURRENT_TOML_PATH = toml_path
    try:
        config = Config(**overrides)
    except SettingsError as exc:
        raise ConfigError(f"invalid AUTARKY_* environment variable: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"invalid configuration ({toml_path}, AUTARKY_* environment): {problems}") from exc
    finally:
        _CURRENT_TOML_PATH = None
    return config
