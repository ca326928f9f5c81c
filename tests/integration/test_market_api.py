"""The energy market through a real node: real metering, oracle and escrow; HTTP, client and CLI.

* The guide's Python example (``docs/market.md``, "A whole interval over HTTP") runs against a node
  with 2-second intervals: an inverter registered as its own export meter sells to a house, the
  book clears at the gate, the meter's reading after the interval settles it (350 of 400 Wh,
  penalty 2 per missing unit); balances, ``/prices``, ``/orders/{id}`` and the CLI's read commands
  (``--json``, as a subprocess) agree with it.
* A zone capped by a real oracle feed: asks above the feed's fresh value take no part.
* Routes refuse bad input with typed errors.
* The guide's CLI walkthrough runs line by line as written (``autarky node start`` in the
  background, each command with ``--node URL``, ``ORDER=$(…)`` captured), with the exit codes it
  announces, then its results are checked.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import RunningNode, autarky, autarky_json

from autarky.modules.market import messages as market
from autarky.modules.oracle import messages as oracle
from autarky.web.testing import LiveNode, TestKeys, standard_genesis

pytestmark = pytest.mark.slow

GUIDE = Path(__file__).resolve().parents[2] / "docs/market.md"
L = 2_000
CAP_FEED = "grid-price/capped"


def market_genesis(keys: TestKeys) -> dict[str, Any]:
    genesis = standard_genesis(keys, chain_id="market-test")
    genesis["app_state"]["metering"] = {"params": {"interval_ms": L}}
    genesis["app_state"]["market"] = {
        "zones": [{"name": "main", "penalty_per_unit": 2}, {"name": "capped", "price_cap_feed": CAP_FEED}],
        "settlement_delay_ms": 2 * L,
    }
    return genesis


@pytest.fixture(scope="module")
def market_node(tmp_path_factory: pytest.TempPathFactory, test_keys: TestKeys) -> Iterator[LiveNode]:
    data_dir = tmp_path_factory.mktemp("market-node") / "node"
    with LiveNode(data_dir, market_genesis(test_keys)) as live:
        yield live


def _ok(live: LiveNode, key: Any, message: dict[str, Any]) -> dict[str, Any]:
    response = live.submit(live.sign(key, [message]))
    receipt: dict[str, Any] = response.json()["receipt"]
    assert response.status_code == 200 and receipt["code"] == "ok", response.text
    return receipt


def _balance(live: LiveNode, did: str) -> int:
    return int(live.http.get(f"/api/v1/accounts/{did}/balances").json()["balances"].get("aut", 0))


def _wait_until(time_ms: int) -> None:
    while time.time_ns() // 1_000_000 < time_ms:
        time.sleep(0.05)


# -- the guide's Python example: one interval, cleared and settled against the meter -----------------


def test_the_guides_python_example_trades_and_settles_one_interval(
    market_node: LiveNode, test_keys: TestKeys, tmp_path: Path
) -> None:
    text = GUIDE.read_text(encoding="utf-8").split("## A whole interval over HTTP", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[:1]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(GUIDE), "exec"), namespace)
    owner, solar, house = test_keys.alice, test_keys.solar, test_keys.bob
    before = {key.did: _balance(market_node, key.did) for key in (solar, house)}

    book = asyncio.run(namespace["trade_one_interval"](market_node.url, owner, solar, house))

    clearing = book["clearing"]
    assert (clearing["price"], clearing["volume"], clearing["status"]) == (20, 400, "settled")
    assert (clearing["delivered"], clearing["penalty"]) == (350, 100)
    bid, ask = book["bids"][0], book["asks"][0]
    assert (bid["status"], bid["delivered"], bid["paid"], bid["penalty"]) == ("settled", 350, 7000, 100)
    assert (ask["status"], ask["delivered"], ask["paid"], ask["penalty"]) == ("settled", 350, 7000, 100)
    fees = {house.did: 1, solar.did: 3}  # the bid; the baseline, the ask and the reading
    assert _balance(market_node, house.did) == before[house.did] - 7000 + 100 - fees[house.did]
    assert _balance(market_node, solar.did) == before[solar.did] + 7000 - 100 - fees[solar.did]
    locks = market_node.http.get("/api/v1/escrow/locks", params={"account": house.did}).json()["locks"]
    assert [lock for lock in locks if lock["holder"] == "market"] == []

    http = market_node.http
    interval = book["interval"]
    prices = http.get(
        "/api/v1/market/prices", params={"zone": "main", "from": interval, "to": interval}
    ).json()
    assert [(p["interval"], p["price"], p["status"]) for p in prices["prices"]] == [(interval, 20, "settled")]
    assert prices["prices"][0]["start_ms"] == interval * L and prices["more"] is False
    recent = http.get("/api/v1/market/prices", params={"zone": "main"}).json()
    assert interval in [p["interval"] for p in recent["prices"]]
    order = http.get(f"/api/v1/market/orders/{bid['id']}").json()
    assert (
        order["status"] == "settled" and order["clearing"]["price"] == 20 and order["gate_ms"] == interval * L
    )

    # The CLI's read commands answer the same, as one JSON object each.
    node = ("--node", market_node.url)
    cli_book = autarky_json(tmp_path, *node, "market", "book", "--zone", "main", "--interval", str(interval))
    assert cli_book["clearing"] == book["clearing"] and cli_book["bids"] == book["bids"]
    cli_prices = autarky_json(
        tmp_path, *node, "market", "prices", "--zone", "main", "--from", str(interval), "--to", str(interval)
    )
    assert cli_prices["prices"] == prices["prices"]
    assert autarky_json(tmp_path, *node, "market", "order", bid["id"])["paid"] == 7000
    zones = autarky_json(tmp_path, *node, "market", "zones")
    assert [zone["name"] for zone in zones["zones"]] == ["capped", "main"] and zones["interval_ms"] == L
    human = autarky(tmp_path, *node, "market", "book", "--zone", "main", "--interval", str(interval)).stdout
    assert "price 20, volume 400, settled, delivered 350, penalty 100" in human


# -- a zone capped by a real oracle feed -----------------------------------------------------------


def test_a_fresh_oracle_value_caps_the_price(market_node: LiveNode, test_keys: TestKeys) -> None:
    carol, battery, bob = test_keys.carol, test_keys.battery, test_keys.bob
    _ok(market_node, test_keys.alice, oracle.create_feed(CAP_FEED, [carol.did], 1, 3_600_000, decimals=0))
    _ok(market_node, carol, oracle.report(CAP_FEED, 1, 25))
    current = market_node.http.get("/api/v1/market/zones").json()["current_interval"]
    k = current + 2
    bid = _ok(market_node, bob, market.bid("capped", k, 10, 100))
    cheap = _ok(market_node, battery, market.ask("capped", k, 4, 20))
    dear = _ok(market_node, test_keys.alice, market.ask("capped", k, 10, 30))
    _wait_until(k * L + 100)
    deadline = time.monotonic() + 10
    while (
        clearing := market_node.http.get(
            "/api/v1/market/book", params={"zone": "capped", "interval": k}
        ).json()["clearing"]
    ) is None:
        assert time.monotonic() < deadline, "the book was not cleared"
        time.sleep(0.05)
    assert (clearing["price"], clearing["volume"], clearing["cap"], clearing["cap_stale"]) == (
        25,
        4,
        25,
        False,
    )
    ids = [_order_id(receipt) for receipt in (bid, cheap, dear)]
    fills = [market_node.http.get(f"/api/v1/market/orders/{order_id}").json()["fill"] for order_id in ids]
    assert fills == [4, 4, 0]


def _order_id(receipt: dict[str, Any]) -> str:
    (event,) = [event for event in receipt["events"] if event["type"] == "market.order"]
    return str(event["attributes"]["order"])


# -- routes and their errors -----------------------------------------------------------------------


def test_routes_refuse_bad_input_with_typed_errors(market_node: LiveNode) -> None:
    http = market_node.http
    zones = http.get("/api/v1/market/zones").json()
    assert zones["params"] == {
        "max_orders_per_interval": 1000,
        "max_intervals_ahead": 672,
        "settlement_delay_ms": 2 * L,
    }
    empty = http.get("/api/v1/market/book", params={"zone": "main"}).json()
    assert empty["interval"] >= zones["current_interval"] + 1 and empty["clearing"] is None
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/api/v1/market/book", {"zone": "nowhere"}, 404, "api.not_found"),
        ("/api/v1/market/book", {}, 422, "api.invalid_request"),
        ("/api/v1/market/book", {"zone": "main", "interval": -1}, 422, "api.invalid_request"),
        ("/api/v1/market/prices", {"zone": "nowhere"}, 404, "api.not_found"),
        ("/api/v1/market/prices", {"zone": "main", "from": 9, "to": 3}, 400, "api.invalid_request"),
        ("/api/v1/market/prices", {"zone": "main", "limit": 0}, 422, "api.invalid_request"),
        ("/api/v1/market/orders/zz", {}, 400, "api.invalid_hex"),
        ("/api/v1/market/orders/" + "ab" * 31, {}, 400, "api.invalid_hex"),
        ("/api/v1/market/orders/" + "ab" * 32, {}, 404, "api.not_found"),
    ]
    for path, params, status, code in cases:
        response = http.get(path, params=params)
        assert response.status_code == status and response.json()["error"]["code"] == code, (
            path,
            response.text,
        )


# -- the CLI walkthrough of docs/market.md ----------------------------------------------------------


def _walkthrough() -> list[tuple[str, int, str]]:
    """The guide's walkthrough: each command line, the exit code it announces, and the comment."""
    text = GUIDE.read_text(encoding="utf-8").split("## Walkthrough with the CLI", 1)[1]
    block = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)[0]
    commands = []
    for line in block.splitlines():
        command, _, comment = line.partition("   # ")
        expected = re.match(r"exits (\d+)", comment.strip())
        commands.append((command.strip(), int(expected.group(1)) if expected else 0, comment))
    return commands


def _args(command: str, variables: dict[str, str]) -> list[str]:
    args = shlex.split(re.sub(r"\$(\w+)", lambda match: variables[match.group(1)], command))
    assert args[0] == "autarky", command
    return args[1:]


def _clear_of_the_next_boundary(interval_ms: int = 900_000, margin_ms: int = 120_000) -> None:
    """Wait until the next default-interval boundary is at least ``margin_ms`` away, so all orders of
    the walkthrough go to the same interval and none is cleared while it runs."""
    now = time.time_ns() // 1_000_000
    if interval_ms - now % interval_ms < margin_ms:
        _wait_until(now - now % interval_ms + interval_ms + 1_000)


def test_the_guides_cli_walkthrough(tmp_path: Path) -> None:
    node: RunningNode | None = None
    variables: dict[str, str] = {}
    _clear_of_the_next_boundary()
    try:
        for command, expected, comment in _walkthrough():
            capture = re.fullmatch(r"(\w+)=\$\((.*)\)", command)
            args = _args(capture.group(2) if capture else command, variables)
            if args[:2] == ["node", "start"]:
                node = RunningNode(tmp_path)
                continue
            if args[0] == "init":
                autarky(tmp_path, *args)
                continue
            assert node is not None, "the walkthrough starts the node before using it"
            result = autarky(tmp_path, "--node", node.url, *args, expect=expected)
            if capture:
                variables[capture.group(1)] = result.stdout.strip()
            code = re.search(r"market\.[a-z_]+", comment)
            if code is not None:  # a refusal the guide names: the CLI says which
                assert code.group(0) in result.stderr, (command, result.stderr)
        assert node is not None
        order = variables["ORDER"]
        assert re.fullmatch(r"[0-9a-f]{64}", order)
        shown = autarky_json(tmp_path, "--node", node.url, "market", "order", order)
        assert shown["status"] == "cancelled" and shown["limit_price"] == 40
        book = autarky_json(tmp_path, "--node", node.url, "market", "book", "--zone", "main")
        assert [(o["limit_price"], o["status"]) for o in book["bids"]] == [(30, "open")]
        assert [(o["limit_price"], o["status"]) for o in book["asks"]] == [(12, "open"), (40, "cancelled")]
        balance = autarky_json(tmp_path, "--node", node.url, "wallet", "balance", "house")
        assert balance["balances"] == {"aut": 100_000 - 500 * 30 - 3}
        assert book["accepting"] is True and book["clearing"] is None
    finally:
        if node is not None:
            node.stop()
