"""Oracle feeds through a real node: the HTTP API, the Python client, and the CLI as a subprocess.

* HTTP: a feed created and reported to with signed transactions shows in ``/api/v1/oracle/feeds``,
  ``/feeds/{feed}`` (latest value, fresh flag judged at ``at_ms``, open round) and
  ``/feeds/{feed}/rounds``; bad names and ranges get typed errors.
* The guide's Python client example (``docs/oracle.md``, "Over HTTP") runs against the node.
* The guide's CLI walkthrough runs line by line as written (``autarky node start`` in the
  background; each command gets ``--node URL``), with the exit codes it announces; then its
  results are checked: the medians, the refused late report, the rewards, the negative value.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from test_cli import RunningNode, autarky, autarky_json

from autarky.modules.oracle import messages as oracle
from autarky.web.testing import LiveNode, TestKeys

pytestmark = pytest.mark.slow

FEED = "grid-price/zone-a"
HOUR = 3_600_000
GUIDE = Path(__file__).resolve().parents[2] / "docs/oracle.md"


def _ok(live: LiveNode, key: Any, message: dict[str, Any]) -> dict[str, Any]:
    response = live.submit(live.sign(key, [message]))
    receipt: dict[str, Any] = response.json()["receipt"]
    assert response.status_code == 200 and receipt["code"] == "ok", response.text
    return receipt


def test_feeds_latest_fresh_and_rounds_over_http(live_node: LiveNode, test_keys: TestKeys) -> None:
    alice, reporters = test_keys.alice, [test_keys.battery, test_keys.solar, test_keys.carol]
    create = oracle.create_feed(
        FEED, [key.did for key in reporters], 2, HOUR, decimals=4, description="zone A, aut/kWh"
    )
    _ok(live_node, alice, create)
    http = live_node.http

    empty = http.get(f"/api/v1/oracle/feeds/{FEED}").json()
    assert empty["latest"] is None and empty["fresh"] is False and empty["round"] == 1
    assert empty["owner"] == alice.did and empty["open_round"] is None and empty["decimals"] == 4

    _ok(live_node, reporters[0], oracle.report(FEED, 1, 2150))
    opened = http.get(f"/api/v1/oracle/feeds/{FEED}").json()["open_round"]
    assert opened["status"] == "open" and opened["reports"] == [{"reporter": reporters[0].did, "value": 2150}]
    receipt = _ok(live_node, reporters[1], oracle.report(FEED, 1, 2100))
    assert [e["type"] for e in receipt["events"]][-1] == "oracle.reported"

    feed = http.get(f"/api/v1/oracle/feeds/{FEED}").json()
    latest = feed["latest"]
    assert latest["value"] == 2100 and latest["display"] == "0.2100" and latest["round"] == 1
    assert feed["fresh"] is True and feed["round"] == 2 and feed["open_round"] is None
    final_ms = latest["time_ms"]
    at_edge = http.get(f"/api/v1/oracle/feeds/{FEED}", params={"at_ms": final_ms + HOUR - 1}).json()
    aged = http.get(f"/api/v1/oracle/feeds/{FEED}", params={"at_ms": final_ms + HOUR}).json()
    assert at_edge["fresh"] is True and aged["fresh"] is False and aged["latest"]["age_ms"] == HOUR

    late = live_node.submit(live_node.sign(reporters[2], [oracle.report(FEED, 1, 2300)])).json()
    assert late["receipt"]["code"] == "oracle.round_closed"
    _ok(live_node, reporters[2], oracle.report(FEED, 2, -5))

    rounds = http.get(f"/api/v1/oracle/feeds/{FEED}/rounds").json()
    assert [(r["round"], r["status"]) for r in rounds["rounds"]] == [(1, "final"), (2, "open")]
    assert rounds["rounds"][0]["display"] == "0.2100" and rounds["from"] == 1 and rounds["to"] == 2
    only_first = http.get(f"/api/v1/oracle/feeds/{FEED}/rounds", params={"from": 1, "to": 1}).json()
    assert [r["round"] for r in only_first["rounds"]] == [1]

    listed = http.get("/api/v1/oracle/feeds", params={"prefix": "grid-price/"}).json()
    assert [f["feed"] for f in listed["feeds"]] == [FEED] and listed["more"] is False
    assert http.get("/api/v1/oracle/feeds", params={"prefix": "weather/"}).json()["feeds"] == []

    for path, params, status, code in (
        ("/api/v1/oracle/feeds/no/such-feed", {}, 404, "api.not_found"),
        ("/api/v1/oracle/feeds/Bad%20Name", {}, 400, "api.invalid_request"),
        ("/api/v1/oracle/feeds/no/such-feed/rounds", {}, 404, "api.not_found"),
        (f"/api/v1/oracle/feeds/{FEED}/rounds", {"from": 5, "to": 2}, 400, "api.invalid_request"),
        (f"/api/v1/oracle/feeds/{FEED}/rounds", {"from": 1, "to": 101}, 400, "api.invalid_request"),
        (f"/api/v1/oracle/feeds/{FEED}/rounds", {"from": 0}, 422, "api.invalid_request"),
        ("/api/v1/oracle/feeds", {"limit": 0}, 422, "api.invalid_request"),
    ):
        response = http.get(path, params=params)
        assert response.status_code == status and response.json()["error"]["code"] == code, (
            path,
            response.text,
        )


def test_the_guides_python_client_example_runs(live_node: LiveNode, test_keys: TestKeys) -> None:
    text = GUIDE.read_text(encoding="utf-8").split("## Over HTTP", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[:1]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(GUIDE), "exec"), namespace)
    reporter = test_keys.solar
    feed = live_node.http.get(f"/api/v1/oracle/feeds/{FEED}")
    if feed.status_code == 404:  # this test alone: make the feed
        _ok(live_node, test_keys.alice, oracle.create_feed(FEED, [reporter.did], 1, HOUR, decimals=4))
        expected_round = 1
    else:
        expected_round = feed.json()["round"]
    latest = asyncio.run(namespace["report_price"](live_node.url, reporter, 2222))
    assert latest is not None and latest["round"] == expected_round  # the report reached the quorum


# -- the CLI walkthrough of docs/oracle.md ----------------------------------------------------------


def _walkthrough() -> list[tuple[list[str], int]]:
    """The guide's walkthrough: each command's arguments and the exit code it announces."""
    text = GUIDE.read_text(encoding="utf-8").split("## Walkthrough with the CLI", 1)[1]
    block = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)[0]
    commands = []
    for line in block.splitlines():
        command, _, comment = line.partition("   # ")
        expected = re.match(r"exits (\d+)", comment.strip())
        commands.append((shlex.split(command), int(expected.group(1)) if expected else 0))
    return commands


def test_the_guides_cli_walkthrough(tmp_path: Path) -> None:
    node: RunningNode | None = None
    try:
        for args, expected in _walkthrough():
            assert args[0] == "autarky", args
            if args[1:3] == ["node", "start"]:
                node = RunningNode(tmp_path)
                continue
            if args[1] == "init":
                autarky(tmp_path, *args[1:])
                continue
            assert node is not None, "the walkthrough starts the node before using it"
            result = autarky(tmp_path, "--node", node.url, *args[1:], expect=expected)
            if expected == 1:
                assert "oracle.round_closed" in result.stderr, result.stderr
        assert node is not None
        remote = ("--node", node.url)

        latest = autarky_json(tmp_path, *remote, "oracle", "latest", FEED)
        assert latest["latest"]["display"] == "0.2250" and latest["latest"]["round"] == 2
        rounds = autarky_json(tmp_path, *remote, "oracle", "rounds", FEED)
        finals = [(r["round"], r["status"], r["value"]) for r in rounds["rounds"]]
        assert finals == [(1, "final", 2100), (2, "final", 2250)]
        balance = autarky_json(tmp_path, *remote, "wallet", "balance", "meter-3")
        assert balance["balances"]["aut"] == 1000 - 2 + 5  # two fees (one refused report), one reward
        weather = autarky_json(tmp_path, *remote, "oracle", "latest", "weather/temp-c/farm-1")
        assert weather["latest"]["value"] == -35 and weather["latest"]["display"] == "-3.5"
        feeds = autarky_json(tmp_path, *remote, "oracle", "feeds")
        assert [f["feed"] for f in feeds["feeds"]] == [FEED, "weather/temp-c/farm-1"]
        assert feeds["feeds"][0]["budget"] is None  # withdrawn

        human = autarky(tmp_path, *remote, "oracle", "latest", FEED)
        assert "0.2250" in human.stdout and "fresh" in human.stdout
        refused = autarky_json(
            tmp_path, *remote, "oracle", "report", FEED, "0.12345", "--reporter", "meter-1", expect=2
        )
        assert refused["error"]["code"] == "cli.usage"
    finally:
        if node is not None:
            node.stop()
