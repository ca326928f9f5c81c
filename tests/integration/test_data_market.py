"""The data market through a real node: the guide's CLI walkthrough, the HTTP API, forged and
misdirected key deliveries, withdrawal, and the key sent over a real nats-server.

* ``docs/data.md``'s walkthrough runs command by command (each ``autarky`` line as a subprocess,
  ``VAR=$(… --json | jq -r .field)`` lines keep the field, refused lines must exit with their code);
  then the results are checked: the tractor decrypted the station's dataset, the station was paid, the
  purchase is delivered with the acknowledged key hash.
* The API answers ``/api/v1/data/offers``, ``/offers/{id}`` (the node's check of the attestations),
  ``/purchases?account=`` and ``/purchases/{id}``, and refuses bad requests with its error codes.
* A key delivery signed by someone who is not the seller is refused (``msg.not_seller``); a
  withdrawn offer is neither listed by default nor bought.
* Over NATS: the seller's agent publishes the envelope on the buyer's subject; the buyer's agent
  receives only the verified message and opens the key.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_cli import RunningNode, autarky, autarky_json

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.engines.nats_server import LocalCluster
from autarky.messaging import Message, StaticDirectory, StaticGrant, keydelivery
from autarky.messaging.transport import Agent, subject_for, wall_clock_ms

pytestmark = pytest.mark.slow

GUIDE = Path(__file__).resolve().parents[2] / "docs/data.md"
_CAPTURE = re.compile(r"^(\w+)=\$\((autarky .*) --json \| jq -r (\S+)\)$")


def _walkthrough() -> list[tuple[str, int, str | None]]:
    """The guide's walkthrough: each line, the exit code it announces, and the code it names."""
    text = GUIDE.read_text(encoding="utf-8").split("## Walkthrough with the CLI", 1)[1]
    block = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)[0]
    lines = []
    for line in block.splitlines():
        command, _, comment = line.partition("   # ")
        announced = re.match(r"exits (\d+): (\S+)", comment.strip())
        if announced:
            lines.append((command, int(announced.group(1)), announced.group(2)))
        else:
            lines.append((command, 0, None))
    return lines


def _jq(document: Any, path: str) -> str:
    """``jq -r`` for the simple paths the guide uses: ``.a``, ``.a.b``."""
    assert re.fullmatch(r"(\.\w+)+", path), path
    for name in path[1:].split("."):
        document = document[name]
    return str(document)


def _substitute(line: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], line)


class Walkthrough:
    """Runs the guide's lines in ``workdir``; keeps the node and the captured variables."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.node: RunningNode | None = None
        self.variables: dict[str, str] = {}

    def run(self) -> None:
        for line, expected, code in _walkthrough():
            line = _substitute(line, self.variables)
            captured = _CAPTURE.match(line)
            if captured:
                name, command, path = captured.groups()
                document = autarky_json(self.workdir, *self.remote, *shlex.split(command)[1:])
                self.variables[name] = _jq(document, path)
                continue
            if not line.startswith("autarky "):
                subprocess.run(["bash", "-c", line], cwd=self.workdir, check=True, timeout=30)
                continue
            args = shlex.split(line)[1:]
            if args[:2] == ["node", "start"]:
                self.node = RunningNode(self.workdir)
                continue
            result = autarky(self.workdir, *self.remote, *args, expect=expected)
            if code is not None:
                assert code in result.stderr, (line, result.stderr)

    @property
    def remote(self) -> tuple[str, ...]:
        return () if self.node is None else ("--node", self.node.url)

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()


@pytest.fixture
def walkthrough(tmp_path: Path) -> Iterator[Walkthrough]:
    run = Walkthrough(tmp_path)
    try:
        yield run
    finally:
        run.stop()


def test_the_guides_walkthrough_then_the_api(walkthrough: Walkthrough) -> None:
    walkthrough.run()
    workdir, remote = walkthrough.workdir, walkthrough.remote
    offer, purchase = walkthrough.variables["OFFER"], walkthrough.variables["PURCHASE"]

    # -- what the walkthrough did ------------------------------------------------------------------------
    assert (workdir / "tractor-weather.csv").read_bytes() == (workdir / "weather.csv").read_bytes()
    assert (workdir / "tractor.key").read_bytes() == (workdir / "weather.key").read_bytes()
    assert (workdir / "tractor.key").stat().st_mode & 0o077 == 0  # a secret: the owner's alone
    assert not (workdir / "stolen.key").exists()
    balance = autarky_json(workdir, *remote, "wallet", "balance", "station")
    assert balance["balances"]["aut"] == 100 - 1 + 40  # one fee (the offer), one sale
    tractor = autarky_json(workdir, *remote, "wallet", "balance", "tractor")
    assert tractor["balances"]["aut"] == 1000 - 40 - 2  # the purchase, two fees (buy, ack)
    sales = autarky_json(workdir, *remote, "data", "purchases", "--account", "station")
    (sale,) = sales["purchases"]
    key_hash = keydelivery.key_hash((workdir / "weather.key").read_bytes()).hex()
    assert (sale["id"], sale["role"], sale["status"], sale["key_hash"]) == (
        purchase,
        "seller",
        "delivered",
        key_hash,
    )
    content_hash = sha256((workdir / "weather.csv.enc").read_bytes()).hex()

    # -- the HTTP API ------------------------------------------------------------------------------------
    assert walkthrough.node is not None
    with httpx.Client(base_url=walkthrough.node.url, timeout=30) as http:
        listed = http.get("/api/v1/data/offers").json()
        assert listed["total"] == 1 and listed["offers"][0]["id"] == offer
        assert listed["offers"][0]["content_hash"] == content_hash
        assert listed["offers"][0]["resource"] == f"data/{offer}"
        assert http.get("/api/v1/data/offers", params={"kind": "stream"}).json()["total"] == 0
        station = listed["offers"][0]["seller"]
        assert http.get("/api/v1/data/offers", params={"seller": station}).json()["total"] == 1

        detail = http.get(f"/api/v1/data/offers/{offer}").json()
        assert detail["agent"] == {"approved": True, "code": None, "detail": None}
        (requirement,) = detail["attestations"]
        assert requirement["claim"] == "calibration/v1" and requirement["satisfied_by"] is not None
        assert requirement["verdict"]["valid"] is True
        assert detail["purchases"] == {"open": 0, "delivered": 1, "refunded": 0}
        assert detail["proof_key"] == f"data/offer/{offer}"
        later = http.get(f"/api/v1/data/offers/{offer}", params={"at_ms": 4_102_444_800_000}).json()
        assert later["agent"]["approved"] is False and later["agent"]["code"] == "data.attestation_expired"

        bought = http.get("/api/v1/data/purchases", params={"account": detail["seller"]}).json()
        assert [p["id"] for p in bought["purchases"]] == [purchase]
        one = http.get(f"/api/v1/data/purchases/{purchase}").json()
        assert one["status"] == "delivered" and one["key_hash"] == key_hash and one["amount"] == 40
        by_offer = http.get("/api/v1/data/purchases", params={"offer": offer, "status": "delivered"}).json()
        assert by_offer["total"] == 1 and "role" not in by_offer["purchases"][0]
        proof = http.get("/api/v1/proof", params={"key": f"data/purchase/{purchase}"})
        assert proof.status_code == 200 and proof.json()["value"] is not None

        assert http.get(f"/api/v1/data/offers/{'0' * 64}").json()["error"]["code"] == "api.not_found"
        assert http.get(f"/api/v1/data/purchases/{'0' * 64}").status_code == 404
        assert http.get("/api/v1/data/offers/xyz").json()["error"]["code"] == "api.invalid_hex"
        assert http.get("/api/v1/data/purchases").json()["error"]["code"] == "api.invalid_request"
        assert http.get("/api/v1/data/purchases", params={"account": "bob"}).json()["error"]["code"] == (
            "api.invalid_did"
        )
        assert http.get("/api/v1/data/offers", params={"kind": "video"}).status_code == 422

    # -- a key delivery signed by someone who is not the seller ------------------------------------------
    mallory = SigningKey.from_seed(sha256(b"data-market-test/mallory"))
    forged = keydelivery.seal_key(
        mallory,
        seller=mallory.did,
        buyer=one["buyer"],
        offer=bytes.fromhex(offer),
        purchase=bytes.fromhex(purchase),
        grant=bytes.fromhex(one["grant"]),
        data_key=keydelivery.new_data_key(),
        now_ms=wall_clock_ms(),
    )
    (workdir / "forged.cose").write_bytes(forged)
    refused = autarky_json(
        workdir,
        *remote,
        "data",
        "receive-key",
        "forged.cose",
        "--buyer",
        "tractor",
        "--out",
        "x.key",
        expect=1,
    )
    assert refused["error"]["code"] == "msg.not_seller" and not (workdir / "x.key").exists()
    (workdir / "junk.cose").write_bytes(b"\x00junk")
    junk = autarky_json(
        workdir, *remote, "data", "receive-key", "junk.cose", "--buyer", "tractor", "--out", "x.key", expect=1
    )
    assert junk["error"]["code"] == "msg.malformed"

    # -- withdrawal -------------------------------------------------------------------------------------
    autarky_json(workdir, *remote, "data", "withdraw", offer, "--seller", "station")
    assert autarky_json(workdir, *remote, "data", "offers")["total"] == 0
    assert autarky_json(workdir, *remote, "data", "offers", "--all")["total"] == 1
    again = autarky_json(
        workdir, *remote, "data", "buy", offer, "--buyer", "tractor", "--items", "1", expect=1
    )
    assert again["error"]["code"] == "data.offer_withdrawn"
    usage = autarky_json(workdir, *remote, "data", "buy", offer, "--buyer", "tractor", expect=2)
    assert usage["error"]["code"] == "cli.usage"
    human = autarky(workdir, *remote, "data", "show", offer)
    assert "calibration/v1" in human.stdout and "refuses: data.offer_withdrawn" in human.stdout
    assert "1 delivered, 0 open, 0 refunded" in human.stdout


# -- the key over NATS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = LocalCluster.create(tmp_path_factory.mktemp("data-nats"), 1, name_prefix="data")
    asyncio.run(cluster.start())
    try:
        yield cluster.urls[0]
    finally:
        cluster.stop()
        assert all(server.process is None or server.process.poll() is not None for server in cluster.servers)


def test_the_key_over_nats_reaches_only_the_buyer_and_opens(nats_url: str) -> None:
    station, tractor = (
        SigningKey.from_seed(sha256(b"data-nats/" + name)) for name in (b"station", b"tractor")
    )
    offer, purchase = sha256(b"offer"), sha256(b"purchase")
    book = StaticDirectory(grants=[StaticGrant("g", station.did, tractor.did, "read", f"data/{offer.hex()}")])
    for signer in (station, tractor):
        book.add_key(signer.did, signer.public_key.raw)
    content_key = keydelivery.new_data_key()

    async def scenario() -> keydelivery.DeliveredKey:
        seller, buyer = Agent(station, book), Agent(tractor, book)
        await seller.connect(nats_url, timeout_s=10)
        await buyer.connect(nats_url, timeout_s=10)
        received: asyncio.Queue[Message] = asyncio.Queue()
        try:
            await buyer.subscribe(subject_for(tractor.did, "msg"), received.put)
            await buyer.flush()
            envelope = keydelivery.seal_key(
                station,
                seller=station.did,
                buyer=tractor.did,
                offer=offer,
                purchase=purchase,
                grant=sha256(b"g"),
                data_key=content_key,
                now_ms=wall_clock_ms(),
                ttl_ms=60_000,
            )
            await seller.publish(subject_for(tractor.did, "msg"), envelope)
            message = await asyncio.wait_for(received.get(), timeout=10)
            return keydelivery.open_key(
                message.raw,
                tractor,
                book,
                buyer=tractor.did,
                offer=offer,
                seller=station.did,
                now_ms=wall_clock_ms(),
            )
        finally:
            await seller.close()
            await buyer.close()

    delivered = asyncio.run(scenario())
    assert delivered.key == content_key and delivered.purchase == purchase
