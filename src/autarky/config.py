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
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from autarky.engines.mempool import MempoolLimits
from autarky.node.errors import ConfigError
from autarky.node.node import NodeSettings

DEFAULT_CONFIG_FILE = "autarky.toml"


class NodeSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data_dir: Path = Path(".autarky/node")
    chain_id: str = "autarky-local"
    engine: Literal["embedded"] = "embedded"
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

    def node_settings(self) -> NodeSettings:
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
