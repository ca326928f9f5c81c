"""Metering through a real node: the HTTP API, the Python client, and the CLI as a subprocess.

* HTTP: a meter registered and read with signed transactions shows in ``/api/v1/metering/meters``,
  ``/meters/{meter}`` and ``/usage`` (energy per interval, ``complete``); refused readings carry their
  codes in the receipt; an infrastructure's tariff, a deposit, a bill larger than the deposit and
  the debt show in ``/tariffs/{infra}`` and ``/bills``; bad queries get typed errors. The client's
  ``metering_*`` methods read the same documents.
* The guide's Python client example (``docs/metering.md``, "Over HTTP") runs against the node.
* The guide's CLI walkthrough runs line by line as written (``autarky node start`` in the background;
  each command gets ``--node URL``), with the exit codes it announces; then its results are checked:
  the home's usage, the car's statement and debt, the charger's income, and a withdrawal.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
from test_cli import RunningNode, autarky, autarky_json

from autarky.modules.metering import messages as metering
from autarky.web.client import AutarkyClient, NotFound
from autarky.web.testing import LiveNode, TestKeys, key_for

pytestmark = pytest.mark.slow

GUIDE = Path(__file__).resolve().parents[2] / "docs/metering.md"
L = 900_000  # the default interval


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _receipt(
    live: LiveNode, key: Any, message: dict[str, Any], cosigners: tuple[Any, ...] = ()
) -> dict[str, Any]:
    response = live.submit(live.sign(key, [message], cosigners=cosigners))
    assert response.status_code == 200, response.text
    receipt: dict[str, Any] = response.json()["receipt"]
    return receipt


def _ok(live: LiveNode, key: Any, message: dict[str, Any], cosigners: tuple[Any, ...] = ()) -> dict[str, Any]:
    receipt = _receipt(live, key, message, cosigners)
    assert receipt["code"] == "ok", receipt
    return receipt


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_meters_usage_tariffs_and_bills_over_http(live_node: LiveNode, test_keys: TestKeys) -> None:
    alice, solar, bob, carol = test_keys.alice, test_keys.solar, test_keys.bob, test_keys.carol
    http = live_node.http

    # alice's solar inverter (her machine) meters her export.
    _ok(live_node, alice, metering.register(solar.did, alice.did, "export", "wh"))
    start = _now_ms()
    _ok(live_node, solar, metering.read([(10_000, start)]))
    second = _now_ms()
    receipt = _ok(live_node, solar, metering.read([(10_250, second)]))
    read_event = next(e for e in receipt["events"] if e["type"] == "metering.read")
    assert read_event["attributes"]["energy"] == 250
    # Refused: the same reading again, a lower value, a reading from the future.
    assert (
        _receipt(live_node, solar, metering.read([(10_250, second)]))["code"] == "metering.duplicate_reading"
    )
    assert (
        _receipt(live_node, solar, metering.read([(10_200, _now_ms())]))["code"] == "metering.value_backwards"
    )
    future = metering.read([(10_300, _now_ms() + 3_600_000)])
    assert _receipt(live_node, solar, future)["code"] == "metering.future_reading"
    assert _receipt(live_node, bob, metering.read([(1, _now_ms())]))["code"] == "metering.unknown_meter"

    (listed,) = http.get("/api/v1/metering/meters", params={"subject": alice.did}).json()["meters"]
    assert (listed["meter"], listed["direction"], listed["unit"], listed["infra"]) == (
        solar.did,
        "export",
        "wh",
        None,
    )
    assert (listed["baseline"], listed["counted"], listed["readings"]) == (10_000, 250, 2)
    assert listed["last_reading"] == {"time_ms": second, "value": 10_250}
    assert http.get(f"/api/v1/metering/meters/{solar.did}").json() == listed

    interval = (second - 1) // L
    usage = http.get(
        "/api/v1/metering/usage",
        params={"account": alice.did, "direction": "export", "from": interval - 1, "to": interval},
    ).json()
    assert usage["unit"] == "wh" and usage["total"] == 250 and usage["interval_ms"] == L
    assert [(i["interval"], i["energy"], i["complete"]) for i in usage["intervals"]] == [
        (interval - 1, 0, True),
        (interval, 250, False),  # the inverter has not reported past this interval's end yet
    ]
    assert usage["intervals"][1]["start_ms"] == interval * L
    default = http.get("/api/v1/metering/usage", params={"account": alice.did, "direction": "export"}).json()
    assert default["total"] == 250 and len(default["intervals"]) == 96
    params = http.get("/api/v1/metering/params").json()
    assert params["interval_ms"] == L and params["default_tariff"] is None

    # bob runs a charger (it meters itself); carol charges there with a deposit too small for the bill.
    assert http.get(f"/api/v1/metering/tariffs/{bob.did}").json() == {"infra": bob.did, "tariff": None}
    _ok(live_node, bob, metering.set_tariff(bob.did, "aut", 3))
    tariff = http.get(f"/api/v1/metering/tariffs/{bob.did}").json()["tariff"]
    assert tariff == {"asset": "aut", "price_per_unit": 3, "source": "own"}
    _ok(live_node, carol, metering.register(bob.did, carol.did, "import", "wh", bob.did), cosigners=(bob,))
    receipt = _ok(live_node, carol, metering.deposit(bob.did, "aut", 100, _now_ms() + 3_600_000))
    lock = next(e for e in receipt["events"] if e["type"] == "metering.deposited")["attributes"]["lock"]
    bob_before = live_node.http.get(f"/api/v1/accounts/{bob.did}/balances").json()["balances"]["aut"]
    _ok(live_node, bob, metering.read([(0, _now_ms())]))
    receipt = _ok(live_node, bob, metering.read([(40, _now_ms())]))
    bill = next(e for e in receipt["events"] if e["type"] == "metering.bill")["attributes"]
    assert (bill["quantity"], bill["amount"], bill["paid"]) == (40, 120, 100)

    bills = http.get("/api/v1/metering/bills", params={"account": carol.did}).json()
    (statement,) = bills["statements"]
    assert statement == {
        "infra": bob.did,
        "asset": "aut",
        "quantity": 40,
        "billed": 120,
        "paid": 100,
        "debt": 20,
    }
    assert bills["debt"] == {"aut": 20} and bills["deposits"] == [] and bills["more"] is False
    assert [(b["quantity"], b["amount"]) for b in bills["bills"]] == [(40, 120)]
    # bob received the 100 from the deposit, less the fees of his own two readings.
    bob_after = live_node.http.get(f"/api/v1/accounts/{bob.did}/balances").json()["balances"]["aut"]
    assert bob_after == bob_before + 100 - 2
    assert (
        http.get("/api/v1/metering/bills", params={"account": carol.did, "infra": alice.did}).json()[
            "statements"
        ]
        == []
    )
    assert lock  # the deposit was emptied by the bill, its lock closed

    async def through_the_client() -> None:
        async with AutarkyClient(live_node.url) as client:
            assert (await client.metering_params())["interval_ms"] == L
            assert [m["meter"] for m in await client.metering_meters(alice.did)] == [solar.did]
            assert (await client.metering_meter(solar.did))["counted"] == 250
            assert (await client.metering_usage(alice.did, "export", interval, interval))["total"] == 250
            assert (await client.metering_bills(carol.did))["debt"] == {"aut": 20}
            assert (await client.metering_tariff(bob.did)) == tariff
            assert (await client.metering_tariff(alice.did)) is None
            with pytest.raises(NotFound):
                await client.metering_meter(key_for("never-a-meter").did)

    asyncio.run(through_the_client())

    # A deregistered meter keeps its last reading.
    _ok(live_node, alice, metering.deregister(solar.did))
    gone = http.get(f"/api/v1/metering/meters/{solar.did}").json()
    assert gone == {
        "meter": solar.did,
        "registered": False,
        "last_reading": {"time_ms": second, "value": 10_250},
    }

    for path, query, expected in (
        ("/api/v1/metering/meters", {"subject": "bob"}, (400, "api.invalid_did")),
        ("/api/v1/metering/meters", {}, (422, "api.invalid_request")),
        (f"/api/v1/metering/meters/{key_for('never-a-meter').did}", {}, (404, "api.not_found")),
        ("/api/v1/metering/meters/nope", {}, (400, "api.invalid_did")),
        ("/api/v1/metering/usage", {"account": alice.did, "direction": "both"}, (400, "api.invalid_request")),
        (
            "/api/v1/metering/usage",
            {"account": alice.did, "direction": "export", "from": 5, "to": 2},
            (400, "api.invalid_request"),
        ),
        (
            "/api/v1/metering/usage",
            {"account": alice.did, "direction": "export", "from": 0, "to": 1000},
            (400, "api.invalid_request"),
        ),
        (
            "/api/v1/metering/usage",
            {"account": alice.did, "direction": "export", "from": -1},
            (422, "api.invalid_request"),
        ),
        ("/api/v1/metering/bills", {"account": carol.did, "limit": 0}, (422, "api.invalid_request")),
        ("/api/v1/metering/bills", {"account": carol.did, "infra": "x"}, (400, "api.invalid_did")),
        ("/api/v1/metering/tariffs/x", {}, (400, "api.invalid_did")),
    ):
        assert _error(http.get(path, params=query)) == expected, (path, query)


def test_the_guides_python_client_example_runs(live_node: LiveNode, test_keys: TestKeys) -> None:
    text = GUIDE.read_text(encoding="utf-8").split("## Over HTTP", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[:1]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(GUIDE), "exec"), namespace)
    owner, meter = test_keys.alice, test_keys.battery  # the battery is alice's machine
    _ok(live_node, owner, metering.register(meter.did, owner.did, "import", "wh"))
    first = asyncio.run(namespace["report"](live_node.url, meter, 700))
    second = asyncio.run(namespace["report"](live_node.url, meter, 745))
    assert first["value"] == 700 and second["value"] == 745 and second["time_ms"] > first["time_ms"]
    with pytest.raises(AssertionError, match=r"metering\.value_backwards"):
        asyncio.run(namespace["report"](live_node.url, meter, 744))


def test_the_in_process_example_of_the_guide_runs() -> None:
    text = GUIDE.read_text(encoding="utf-8").split("## In-process, with the test chain", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[:1]
    exec(compile(code, str(GUIDE), "exec"), {})


# -- the CLI walkthrough of docs/metering.md --------------------------------------------------------


def _walkthrough() -> list[tuple[list[str], int, str | None]]:
    """The guide's walkthrough: each command's arguments, its announced exit code and refusal code."""
    text = GUIDE.read_text(encoding="utf-8").split("## Walkthrough with the CLI", 1)[1]
    block = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)[0]
    commands = []
    for line in block.splitlines():
        command, _, comment = line.partition("   # ")
        expected = re.match(r"exits (\d+)(?:: (\S+))?", comment.strip())
        if expected:
            commands.append((shlex.split(command), int(expected.group(1)), expected.group(2)))
        else:
            commands.append((shlex.split(command), 0, None))
    return commands


def test_the_guides_cli_walkthrough(tmp_path: Path) -> None:
    node: RunningNode | None = None
    try:
        for args, expected, code in _walkthrough():
            assert args[0] == "autarky", args
            if args[1:3] == ["node", "start"]:
                node = RunningNode(tmp_path)
                continue
            if args[1] == "init":
                autarky(tmp_path, *args[1:])
                continue
            assert node is not None, "the walkthrough starts the node before using it"
            result = autarky(tmp_path, "--node", node.url, *args[1:], expect=expected)
            if code is not None:
                assert code in result.stderr, result.stderr
        assert node is not None
        remote = ("--node", node.url)

        usage = autarky_json(tmp_path, *remote, "meter", "usage", "home", "--direction", "export")
        assert usage["total"] == 450 and usage["unit"] == "wh"
        (meter,) = autarky_json(tmp_path, *remote, "meter", "meters", "home")["meters"]
        assert meter["counted"] == 450 and meter["last_reading"]["value"] == 120_450

        bills = autarky_json(tmp_path, *remote, "meter", "bills", "car")
        (statement,) = bills["statements"]
        assert (statement["quantity"], statement["billed"], statement["paid"], statement["debt"]) == (
            300,
            600,
            600,
            0,
        )
        (deposit,) = bills["deposits"]
        assert deposit["amount"] == 150
        charger = autarky_json(tmp_path, *remote, "wallet", "balance", "charger")
        assert charger["balances"]["aut"] == 1000 - 2 + 600  # two fees (identity register, tariff) + bills

        withdrawn = autarky_json(
            tmp_path,
            *remote,
            "meter",
            "withdraw",
            "--from",
            "car",
            "--lock",
            deposit["lock"],
            "--amount",
            "50",
        )
        assert (withdrawn["amount"], withdrawn["remaining"]) == (50, 100)
        autarky_json(tmp_path, *remote, "meter", "withdraw", "--from", "car", "--lock", deposit["lock"])
        assert autarky_json(tmp_path, *remote, "meter", "bills", "car")["deposits"] == []
        car = autarky_json(tmp_path, *remote, "wallet", "balance", "car")
        fees = 5  # meter register, two deposits, two withdrawals; reads cost nothing
        assert car["balances"]["aut"] == 2000 - 600 - fees

        tariff = autarky_json(tmp_path, *remote, "meter", "tariff", "charger")
        assert tariff["tariff"] == {"asset": "aut", "price_per_unit": 2, "source": "own"}
        human = autarky(tmp_path, *remote, "meter", "bills", "car")
        assert "statements" in human.stdout and "600" in human.stdout

        refused = autarky_json(
            tmp_path, *remote, "meter", "read", "inverter", "1", "--batch", "x.json", expect=2
        )
        assert refused["error"]["code"] == "cli.usage"
        refused = autarky_json(tmp_path, *remote, "meter", "usage", "home", "--direction", "both", expect=2)
        assert refused["error"]["code"] == "cli.usage"
        late = autarky_json(
            tmp_path, *remote, "meter", "read", "inverter", "120500", "--time-ms", "1", expect=1
        )
        assert late["error"]["code"] == "metering.before_registration"
    finally:
        if node is not None:
            node.stop()
