"""``[nats]`` and ``node.engine`` in ``autarky.toml``: parsing, environment overrides, and clear errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from autarky.config import load_config
from autarky.engines.nats import NatsSettings
from autarky.node.errors import ConfigError

SERVERS = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
MONITORS = ["http://10.0.0.1:8222", "http://10.0.0.2:8222", "http://10.0.0.3:8222"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No AUTARKY_* variable of the caller's shell may change what these tests read."""
    for key in list(os.environ):
        if key.startswith("AUTARKY_"):
            monkeypatch.delenv(key)
    yield


def _toml(values: list[str]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "autarky.toml"
    path.write_text(text, encoding="utf-8")
    return path


NATS_TOML = f"""
[node]
data_dir = "/var/lib/autarky"
engine = "nats"

[nats]
servers = {_toml(SERVERS)}
monitor_urls = {_toml(MONITORS)}
"""


def test_the_default_engine_is_embedded_without_nats_settings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[node]\ndata_dir = "x"\n'))
    assert config.node.engine == "embedded"
    settings = config.node_settings()
    assert settings.engine == "embedded"
    assert settings.nats is None


def test_a_nats_section_becomes_the_node_s_nats_settings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, NATS_TOML))
    settings = config.node_settings()
    assert settings.engine == "nats"
    assert settings.data_dir == Path("/var/lib/autarky")
    assert settings.nats == NatsSettings(
        servers=tuple(SERVERS),
        monitor_urls=tuple(MONITORS),
        replicas=3,
        duplicate_window_s=120.0,
        block_interval_ms=20,
        heartbeat_ms=1000,
        max_block_txs=2000,
        check_servers=True,
    )


def test_every_nats_setting_is_read(tmp_path: Path) -> None:
    text = (
        NATS_TOML
        + """stream = "PLANT_7"
replicas = 5
duplicate_window_s = 300
block_interval_ms = 50
heartbeat_ms = 2000
max_block_txs = 500
connect_timeout_s = 3
publish_timeout_s = 4
creds_file = "/etc/autarky/node.creds"
user = "node-1"
password = "secret"
token = "t0ken"
tls_ca = "/etc/autarky/ca.pem"
tls_cert = "/etc/autarky/node.pem"
tls_key = "/etc/autarky/node.key"
check_servers = false
"""
    )
    nats = load_config(write(tmp_path, text)).node_settings().nats
    assert nats is not None
    assert nats.stream == "PLANT_7" and nats.stream_name("any") == "PLANT_7"
    assert (nats.replicas, nats.duplicate_window_s, nats.block_interval_ms) == (5, 300.0, 50)
    assert (nats.heartbeat_ms, nats.max_block_txs) == (2000, 500)
    assert (nats.connect_timeout_s, nats.publish_timeout_s) == (3.0, 4.0)
    assert nats.creds_file == "/etc/autarky/node.creds"
    assert (nats.user, nats.password, nats.token) == ("node-1", "secret", "t0ken")
    assert (nats.tls_ca, nats.tls_cert, nats.tls_key) == (
        "/etc/autarky/ca.pem",
        "/etc/autarky/node.pem",
        "/etc/autarky/node.key",
    )
    assert nats.check_servers is False


def test_the_nats_block_timing_is_its_own_not_the_embedded_one(tmp_path: Path) -> None:
    text = NATS_TOML.replace('engine = "nats"', 'engine = "nats"\nblock_interval_ms = 7')
    settings = load_config(write(tmp_path, text)).node_settings()
    assert settings.block_interval_ms == 7  # the embedded engine's setting, unused with nats
    assert settings.nats is not None and settings.nats.block_interval_ms == 20


def test_environment_variables_override_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[node]\ndata_dir = "x"\n')
    monkeypatch.setenv("AUTARKY_NODE__ENGINE", "nats")
    monkeypatch.setenv("AUTARKY_NATS__SERVERS", "nats://a:4222, nats://b:4222,nats://c:4222")
    monkeypatch.setenv("AUTARKY_NATS__MONITOR_URLS", '["http://a:8222", "http://b:8222", "http://c:8222"]')
    monkeypatch.setenv("AUTARKY_NATS__REPLICAS", "5")
    monkeypatch.setenv("AUTARKY_NATS__CHECK_SERVERS", "false")
    settings = load_config(path).node_settings()
    assert settings.engine == "nats"
    assert settings.nats is not None
    assert settings.nats.servers == ("nats://a:4222", "nats://b:4222", "nats://c:4222")
    assert settings.nats.monitor_urls == ("http://a:8222", "http://b:8222", "http://c:8222")
    assert settings.nats.replicas == 5
    assert settings.nats.check_servers is False


def test_the_environment_can_switch_a_nats_file_back_to_embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTARKY_NODE__ENGINE", "embedded")
    settings = load_config(write(tmp_path, NATS_TOML)).node_settings()
    assert settings.engine == "embedded" and settings.nats is None


def test_nats_without_servers_is_a_clear_config_error(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[node]\nengine = "nats"\n'))
    with pytest.raises(ConfigError, match=r"no NATS servers are configured: set \[nats\] servers"):
        config.node_settings()


def test_nats_without_monitor_urls_is_refused_unless_the_check_is_off(tmp_path: Path) -> None:
    text = f'[node]\nengine = "nats"\n[nats]\nservers = {_toml(SERVERS)}\n'
    with pytest.raises(ConfigError, match="monitor_urls is empty"):
        load_config(write(tmp_path, text)).node_settings()
    unchecked = load_config(write(tmp_path, text + "check_servers = false\n")).node_settings()
    assert unchecked.nats is not None and unchecked.nats.monitor_urls == ()


def test_an_embedded_node_ignores_an_incomplete_nats_section(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, "[nats]\nreplicas = 5\n")).node_settings()
    assert settings.engine == "embedded"


@pytest.mark.parametrize(
    ("nats_lines", "message"),
    [
        ("replicas = 0", "nats.replicas"),
        ("replicas = 6", "nats.replicas"),
        ("replicas = 1", "replicas = 1 keeps a single copy"),
        ("block_interval_ms = 0", "nats.block_interval_ms"),
        ("duplicate_window_s = 0", "nats.duplicate_window_s"),
        ('stream = "has space"', "nats.stream"),
        ("unknown = 1", "nats.unknown"),
        ('user = "node-1"', "user is set without password"),
        ('password = "x"', "password is set without user"),
        ('tls_key = "k.pem"', "tls_key is set without tls_cert"),
        ('tls_cert = "c.pem"', "tls_cert is set without tls_key"),
    ],
)
def test_bad_nats_settings_name_the_setting(tmp_path: Path, nats_lines: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, NATS_TOML + nats_lines + "\n"))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("servers", '["http://10.0.0.1:4222"]', "is not a nats/tls/ws/wss URL"),
        ("servers", '["10.0.0.1:4222"]', "is not a nats/tls/ws/wss URL"),
        ("servers", '["nats://10.0.0.1:99999"]', "out of range"),
        ("monitor_urls", '["nats://10.0.0.1:8222"]', "is not a http/https URL"),
    ],
)
def test_bad_urls_are_refused(tmp_path: Path, key: str, value: str, message: str) -> None:
    text = f'[node]\nengine = "nats"\n[nats]\n{key} = {value}\n'
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, text))


def test_a_single_dev_server_may_use_one_replica(tmp_path: Path) -> None:
    text = '[node]\nengine = "nats"\n[nats]\nservers = ["nats://127.0.0.1:4222"]\n'
    text += 'monitor_urls = ["http://127.0.0.1:8222"]\nreplicas = 1\n'
    settings = load_config(write(tmp_path, text)).node_settings()
    assert settings.nats is not None and settings.nats.replicas == 1


def test_an_unknown_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"node\.engine"):
        load_config(write(tmp_path, '[node]\nengine = "raft"\n'))


def test_a_bad_environment_list_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTARKY_NATS__SERVERS", "[not json")
    with pytest.raises(ConfigError, match=r"nats\.servers"):
        load_config(write(tmp_path, ""))
