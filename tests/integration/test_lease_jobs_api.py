"""Leases and jobs through a real node: HTTP routes, the typed client and the CLI as a subprocess.

* The leases guide's Python example (``docs/leases.md``, "Over HTTP from Python") runs against a
  node on a virtual clock: a charger is offered, booked, confirmed, paid minute by minute, one
  minute is refunded after the monitor upholds a breach claim; the routes, the client, balances and
  escrow agree at every step.
* A job is posted by a machine, accepted, completed, attested by its owner and paid after the
  dispute window; a second one is disputed and split by its arbiter; the routes and the client
  list them by status and account.
* Routes refuse bad input with typed errors.
* The CLI walkthroughs of ``docs/leases.md`` and ``docs/jobs.md`` run line by line as written
  (``autarky node start`` in the background, each command with ``--node URL``, ``X=$(…)``
  captured), with the exit codes they announce, then their results are checked.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import RunningNode, autarky, autarky_json

from autarky.crypto.hashing import sha256
from autarky.engines.embedded import VirtualClock
from autarky.modules.jobs import keeper as jobs_keeper
from autarky.modules.jobs import messages as jobs
from autarky.web.client import AutarkyClient
from autarky.web.testing import LiveNode, TestKeys, standard_genesis

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"
MINUTE = 60_000
DAY = 86_400_000


@pytest.fixture(scope="module")
def clocked(
    tmp_path_factory: pytest.TempPathFactory, test_keys: TestKeys
) -> Iterator[tuple[LiveNode, VirtualClock]]:
    genesis = standard_genesis(test_keys, chain_id="lease-jobs-test")
    clock = VirtualClock(genesis["genesis_time_ms"] + 1_000)
    with LiveNode(
        tmp_path_factory.mktemp("lease-jobs") / "node", genesis, clock=clock, heartbeat_ms=20
    ) as live:
        yield live, clock


def tick(live: LiveNode, clock: VirtualClock, time_ms: int) -> None:
    """Move the block clock to ``time_ms`` and wait for blocks cut at that time (end_block runs)."""
    clock.set(time_ms)
    live.wait_for_height(live.height() + 2)


def balance(live: LiveNode, did: str) -> int:
    return int(live.http.get(f"/api/v1/accounts/{did}/balances").json()["balances"].get("aut", 0))


def ok(live: LiveNode, key: Any, message: dict[str, Any]) -> dict[str, Any]:
    response = live.submit(live.sign(key, [message]))
    receipt: dict[str, Any] = response.json()["receipt"]
    assert response.status_code == 200 and receipt["code"] == "ok", response.text
    return receipt


def locks_held_by(live: LiveNode, did: str, holder: str) -> list[dict[str, Any]]:
    locks = live.http.get("/api/v1/escrow/locks", params={"account": did}).json()["locks"]
    return [lock for lock in locks if lock["holder"] == holder]


def guide_code(name: str, section: str) -> dict[str, Any]:
    text = (DOCS / name).read_text(encoding="utf-8").split(section, 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[:1]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS / name), "exec"), namespace)
    return namespace


# -- leases over HTTP: the guide's example, then time passes ------------------------------------------


def test_the_leases_guide_example_books_pays_and_refunds_a_breach(
    clocked: tuple[LiveNode, VirtualClock], test_keys: TestKeys
) -> None:
    live, clock = clocked
    station, robot, monitor = test_keys.alice, test_keys.bob, test_keys.carol
    guide = guide_code("leases.md", "## Over HTTP from Python")
    before = {key.did: balance(live, key.did) for key in (station, robot, monitor)}
    start = clock.now_ms + MINUTE

    offer_id, lease_id = asyncio.run(guide["book_a_charger"](live.url, station, robot, monitor, start))

    http = live.http
    rented = http.get("/api/v1/lease/leases", params={"account": robot.did}).json()
    assert [(item["id"], item["role"], item["status"]) for item in rented["leases"]] == [
        (lease_id.hex(), "renter", "active")
    ]
    provided = http.get("/api/v1/lease/leases", params={"account": station.did, "status": "active"}).json()
    assert [item["role"] for item in provided["leases"]] == ["provider"]
    offer = http.get(f"/api/v1/lease/offers/{offer_id.hex()}").json()
    assert offer["reservations"] == [
        {"start_ms": start, "end_ms": start + 5 * MINUTE, "lease": lease_id.hex()}
    ]
    assert balance(live, robot.did) == before[robot.did] - 50 - 1  # escrowed, and the fee
    (lock,) = locks_held_by(live, robot.did, "lease")
    assert lock["amount"] == 50 and lock["beneficiaries"] == [station.did]

    # Minute 0 ends at start + 1 min and is paid a report window (1 min) later.
    tick(live, clock, start + 2 * MINUTE)
    shown = http.get(f"/api/v1/lease/leases/{lease_id.hex()}").json()
    assert (shown["settled"], shown["paid"], shown["remaining"]) == (1, 10, 40)
    # Minute 2 is running; the robot claims minute 1 and the monitor upholds it.
    record = asyncio.run(guide["claim_minute"](live.url, robot, monitor, lease_id, 1))
    assert (record["refunded"], record["breached"], record["claim"]) == (10, 1, None)

    tick(live, clock, start + 6 * MINUTE)  # the last minute ended 1 min ago
    shown = http.get(f"/api/v1/lease/leases/{lease_id.hex()}").json()
    assert (shown["status"], shown["outcome"], shown["paid"], shown["refunded"]) == (
        "closed",
        "completed",
        40,
        10,
    )
    assert shown["remaining"] == 0 and locks_held_by(live, robot.did, "lease") == []
    assert balance(live, station.did) == before[station.did] + 40 - 2  # offer, confirm
    assert balance(live, robot.did) == before[robot.did] - 40 - 2  # reserve, claim
    assert balance(live, monitor.did) == before[monitor.did] - 1  # the judgement's fee
    assert http.get("/api/v1/lease/offers/" + offer_id.hex()).json()["reservations"] == []

    async def read() -> tuple[Any, ...]:
        async with AutarkyClient(live.url) as client:
            return (
                await client.lease(lease_id),
                await client.leases(robot.did),
                await client.lease_offers(provider=station.did),
                await client.lease_params(),
            )

    one, listed, offers, params = asyncio.run(read())
    assert one == shown and listed["leases"][0]["id"] == lease_id.hex()
    assert [item["id"] for item in offers["offers"]] == [offer_id.hex()]
    assert params["report_window_ms"] == 60_000 and params["confirm_grace_ms"] == 300_000


# -- jobs over HTTP ------------------------------------------------------------------------------------


def test_a_machines_job_is_attested_by_its_owner_and_paid_a_second_is_split(
    clocked: tuple[LiveNode, VirtualClock], test_keys: TestKeys
) -> None:
    live, clock = clocked
    battery, owner, mechanic, arbiter = test_keys.battery, test_keys.alice, test_keys.bob, test_keys.carol
    http = live.http
    before = {key.did: balance(live, key.did) for key in (battery, mechanic)}
    report = sha256(b"cells rebalanced, capacity test 98%")

    posted = live.sign(
        battery, [jobs.post("maintenance", "rebalance the cells", 400, "aut", clock.now_ms + DAY, ["owner"])]
    )
    assert live.submit(posted).json()["receipt"]["code"] == "ok"
    job = jobs_keeper.new_job_id(posted.hash, 0)
    assert [item["id"] for item in http.get("/api/v1/jobs", params={"status": "open"}).json()["jobs"]] == [
        job.hex()
    ]
    ok(live, mechanic, jobs.accept(job))
    ok(live, mechanic, jobs.complete(job, report))
    ok(live, owner, jobs.attest(job, report))
    shown = http.get(f"/api/v1/jobs/{job.hex()}").json()
    assert (shown["status"], shown["attested_by"], shown["evidence"]) == ("attested", owner.did, report.hex())
    assert (
        shown["pay_at_ms"] == shown["attested_ms"] + DAY
        and shown["attest_by_ms"] == shown["deadline_ms"] + DAY
    )
    mine = http.get("/api/v1/jobs", params={"account": mechanic.did}).json()["jobs"]
    assert [(item["id"], item["role"]) for item in mine] == [(job.hex(), "provider")]
    assert [lock["amount"] for lock in locks_held_by(live, battery.did, "jobs")] == [400]

    tick(live, clock, shown["pay_at_ms"])
    shown = http.get(f"/api/v1/jobs/{job.hex()}").json()
    assert (shown["status"], shown["outcome"], shown["paid"], shown["pay_at_ms"]) == (
        "closed",
        "paid",
        400,
        None,
    )
    assert balance(live, mechanic.did) == before[mechanic.did] + 400 - 2
    assert balance(live, battery.did) == before[battery.did] - 400 - 1

    # A second job, with an arbiter: the owner disputes, the arbiter splits it.
    posted = live.sign(
        battery,
        [jobs.post("inspection", "thermal scan", 300, "aut", clock.now_ms + DAY, ["poster"], arbiter.did)],
    )
    assert live.submit(posted).json()["receipt"]["code"] == "ok"
    second = jobs_keeper.new_job_id(posted.hash, 0)
    ok(live, mechanic, jobs.accept(second))
    ok(live, mechanic, jobs.complete(second, report))
    ok(live, battery, jobs.attest(second, report))
    ok(live, owner, jobs.dispute(second))
    assert http.get(f"/api/v1/jobs/{second.hex()}").json()["status"] == "disputed"
    ok(live, arbiter, jobs.resolve(second, 100))
    assert locks_held_by(live, battery.did, "jobs") == []

    async def read() -> tuple[Any, ...]:
        async with AutarkyClient(live.url) as client:
            return (
                await client.job(second),
                await client.jobs(status="closed"),
                await client.jobs(account=arbiter.did),
            )

    one, closed, judged = asyncio.run(read())
    assert (one["outcome"], one["paid"], one["refunded"]) == ("arbitrated", 100, 200)
    assert [item["id"] for item in closed["jobs"]] == [second.hex(), job.hex()]  # newest first
    assert [(item["id"], item["role"]) for item in judged["jobs"]] == [(second.hex(), "arbiter")]
    assert balance(live, mechanic.did) == before[mechanic.did] + 500 - 4


# -- routes and their errors -----------------------------------------------------------------------


def test_routes_refuse_bad_input_with_typed_errors(clocked: tuple[LiveNode, VirtualClock]) -> None:
    live, _ = clocked
    http = live.http
    unknown = "ab" * 32
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/api/v1/lease/offers/zz", {}, 400, "api.invalid_hex"),
        ("/api/v1/lease/offers/" + "ab" * 31, {}, 400, "api.invalid_hex"),
        ("/api/v1/lease/offers/" + unknown, {}, 404, "api.not_found"),
        ("/api/v1/lease/leases/" + unknown, {}, 404, "api.not_found"),
        ("/api/v1/lease/leases", {}, 422, "api.invalid_request"),
        ("/api/v1/lease/leases", {"account": "mallory"}, 400, "api.invalid_did"),
        ("/api/v1/lease/leases", {"account": "module:escrow", "status": "late"}, 422, "api.invalid_request"),
        ("/api/v1/lease/offers", {"provider": "mallory"}, 400, "api.invalid_did"),
        ("/api/v1/lease/offers", {"limit": 0}, 422, "api.invalid_request"),
        ("/api/v1/jobs", {"status": "done"}, 422, "api.invalid_request"),
        ("/api/v1/jobs", {"account": "mallory"}, 400, "api.invalid_did"),
        ("/api/v1/jobs/zz", {}, 400, "api.invalid_hex"),
        ("/api/v1/jobs/" + unknown, {}, 404, "api.not_found"),
    ]
    for path, params, status, code in cases:
        response = http.get(path, params=params)
        assert response.status_code == status and response.json()["error"]["code"] == code, (
            path,
            response.text,
        )
    assert http.get("/api/v1/jobs/params").json() == {
        "attest_window_ms": DAY,
        "dispute_window_ms": DAY,
        "resolve_window_ms": 3 * DAY,
        "max_deadline_ms": 365 * DAY,
    }


# -- the CLI walkthroughs of docs/leases.md and docs/jobs.md --------------------------------------------


def walkthrough(name: str) -> list[tuple[str, int, str]]:
    """The guide's walkthrough: each command line, the exit code it announces, and the comment."""
    text = (DOCS / name).read_text(encoding="utf-8").split("## Walkthrough with the CLI", 1)[1]
    block = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)[0]
    commands = []
    for line in block.splitlines():
        command, _, comment = line.partition("   # ")
        expected = re.match(r"exits (\d+)", comment.strip())
        commands.append((command.strip(), int(expected.group(1)) if expected else 0, comment))
    return commands


def run_walkthrough(name: str, workdir: Path) -> tuple[RunningNode, dict[str, str]]:
    """Run every line of the guide's walkthrough; the running node (the caller stops it) and the
    captured variables."""
    node: RunningNode | None = None
    variables: dict[str, str] = {}
    try:
        for command, expected, comment in walkthrough(name):
            capture = re.fullmatch(r"(\w+)=\$\((.*)\)", command)
            text = capture.group(2) if capture else command
            args = shlex.split(re.sub(r"\$(\w+)", lambda match: variables[match.group(1)], text))
            assert args[0] == "autarky", command
            args = args[1:]
            if args[:2] == ["node", "start"]:
                node = RunningNode(workdir)
                continue
            if args[0] == "init":
                autarky(workdir, *args)
                continue
            assert node is not None, "the walkthrough starts the node before using it"
            result = autarky(workdir, "--node", node.url, *args, expect=expected)
            if capture:
                variables[capture.group(1)] = result.stdout.strip()
            code = re.search(r"(lease|jobs|bank)\.[a-z_]+", comment)
            if code is not None:  # a refusal the guide names: the CLI says which
                assert code.group(0) in result.stderr, (command, result.stderr)
    except BaseException:
        if node is not None:
            node.stop()
        raise
    assert node is not None
    return node, variables


def test_the_leases_guides_cli_walkthrough(tmp_path: Path) -> None:
    node, variables = run_walkthrough("leases.md", tmp_path)
    try:
        remote = ("--node", node.url)
        lease_id, offer_id = variables["LEASE"], variables["OFFER"]
        assert re.fullmatch(r"[0-9a-f]{64}", lease_id) and re.fullmatch(r"[0-9a-f]{64}", offer_id)
        shown = autarky_json(tmp_path, *remote, "lease", "show", lease_id)
        assert (shown["status"], shown["outcome"], shown["refunded"], shown["paid"]) == (
            "closed",
            "ended",
            300,
            0,
        )
        assert shown["confirmed_ms"] is not None and shown["periods"] == 0
        offers = autarky_json(tmp_path, *remote, "lease", "offers", "--kind", "charger")
        (offer,) = offers["offers"]
        assert offer["id"] == offer_id and offer["reservations"] == []
        assert offer["service_level"] == {"uptime_bps": 9900} and offer["period_ms"] == MINUTE
        listed = autarky_json(tmp_path, *remote, "lease", "list", "station")
        assert [(item["id"], item["role"]) for item in listed["leases"]] == [(lease_id, "provider")]
        # reserve, slot_taken, confirm (refused), report (refused), end, end (refused): six fees
        assert autarky_json(tmp_path, *remote, "wallet", "balance", "robot")["balances"] == {
            "aut": 10_000 - 6
        }
        human = autarky(tmp_path, *remote, "lease", "show", lease_id).stdout
        assert "closed (ended)" in human and "refunded 300" in human
    finally:
        node.stop()


def test_the_jobs_guides_cli_walkthrough(tmp_path: Path) -> None:
    node, variables = run_walkthrough("jobs.md", tmp_path)
    try:
        remote = ("--node", node.url)
        job_id = variables["JOB"]
        shown = autarky_json(tmp_path, *remote, "jobs", "show", job_id)
        assert (shown["status"], shown["outcome"], shown["refunded"]) == ("closed", "disputed", 300)
        assert shown["evidence"] == sha256(b"bearing replaced, vibration 0.8 mm/s").hex()
        assert shown["attesters"] == ["poster", "owner"] and shown["disputed_by"] is not None
        mine = autarky_json(tmp_path, *remote, "jobs", "list", "--account", "mechanic")
        assert [(item["id"], item["role"]) for item in mine["jobs"]] == [(job_id, "provider")]
        assert autarky_json(tmp_path, *remote, "jobs", "list", "--status", "open")["jobs"] == []
        # post, post (refused), accept (refused), dispute: four fees; the bounty came back
        assert autarky_json(tmp_path, *remote, "wallet", "balance", "lathe")["balances"] == {"aut": 1_000 - 4}
        human = autarky(tmp_path, *remote, "jobs", "list").stdout
        assert "closed: disputed" in human
    finally:
        node.stop()
