"""``autarky data …``: the data market from the command line (module ``data``).

    seller   data encrypt FILE          a content key and the encrypted file (its hash goes in the offer)
    seller   data offer SELLER …        offer a stream or dataset on terms
    anyone   data offers / data show ID list offers; one offer with its attestations checked by the node
    buyer    data buy ID --buyer B …    the buyer's agent checks the attestations from proofs, then buys
    seller   data deliver-key PURCHASE  seal the key to the buyer in a signed envelope (a file)
    buyer    data receive-key FILE      check the envelope against proofs, open it, optionally --ack
    buyer    data decrypt FILE.enc      decrypt with the delivered key
    anyone   data purchases --account A purchases and sales of an account (or of an offer)

Everything the buyer decides on is checked here against state proofs signed by the node key (pin the
node you trust with ``--node-key``), never taken from what the node says.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import OperationFailed, UsageProblem
from autarky.cli.keyring import Secrets
from autarky.cli.options import FeeOpt, JsonOpt, KeyFileOpt, PasswordFileOpt, parse_duration_ms, parse_hex32
from autarky.cli.remote import connect, send_tx, tx_summary
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import DecodeError, canonical_decode
from autarky.messaging import keydelivery
from autarky.messaging.envelope import peek
from autarky.messaging.errors import MessageError
from autarky.modules.data import BuyerTerms, Evidence, OfferRecord, OfferRefused, check_offer
from autarky.modules.data import keeper as data_keeper
from autarky.modules.data import messages as data

if TYPE_CHECKING:
    from autarky.web.client import AutarkyClient

app = typer.Typer(
    help="The data market: offer, list, buy data; deliver and receive the decryption key.",
    no_args_is_help=True,
)

NodeKeyOpt = Annotated[
    str | None,
    typer.Option("--node-key", help="The did:key of the node you trust (default: what the node says)."),
]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read_key(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"cannot read the key file {path}: {exc.strerror}") from None
    if len(raw) != keydelivery.KEY_BYTES:
        raise UsageProblem(f"{path} is not a content key ({keydelivery.KEY_BYTES} raw bytes)")
    return raw


def _write_private(path: Path, content: bytes) -> None:
    """Write a secret (a content key) readable only by its owner."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def _unlock(name: str, secrets: Secrets) -> tuple[str, SigningKey]:
    identity, key = current().keyring.unlock(name, secrets)
    return identity.account, key


# -- content -------------------------------------------------------------------------------------------


@app.command("encrypt")
def encrypt(
    source: Annotated[Path, typer.Argument(help="The file to sell (a dataset, or one stream message).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the encrypted file.")],
    key_out: Annotated[Path, typer.Option("--key-out", help="Where to write a new content key.")] = Path(
        "content.key"
    ),
    key: Annotated[
        Path | None, typer.Option("--key", help="Encrypt with this existing content key instead.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Encrypt SOURCE with a content key (XSalsa20-Poly1305); print the encrypted file's SHA-256.

    Publish the encrypted file anywhere; put its hash in the offer (--content-hash) so buyers can
    check their copy; keep the key: buyers get it only through `data deliver-key`.

    Example:  autarky data encrypt weather-2026.csv --out weather-2026.csv.enc --key-out weather.key
    """
    output.set_json_mode(json_out)
    try:
        plaintext = source.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"cannot read {source}: {exc.strerror}") from None
    content_key = _read_key(key) if key is not None else keydelivery.new_data_key()
    ciphertext = keydelivery.encrypt_content(content_key, plaintext)
    out.write_bytes(ciphertext)
    if key is None:
        _write_private(key_out, content_key)
    document = {
        "encrypted": str(out),
        "key_file": str(key if key is not None else key_out),
        "content_hash": sha256(ciphertext).hex(),
        "bytes": len(ciphertext),
    }
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]encrypted[/] {source} -> {out} ({len(ciphertext):,} bytes)\n"
            f"  key           {document['key_file']} (keep it secret)\n"
            f"  content hash  {document['content_hash']}"
        ),
    )


@app.command("decrypt")
def decrypt(
    source: Annotated[Path, typer.Argument(help="The encrypted file.")],
    key: Annotated[Path, typer.Option("--key", help="The content key (from `data receive-key`).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the plaintext.")],
    json_out: JsonOpt = False,
) -> None:
    """Decrypt SOURCE with a delivered content key.

    Example:  autarky data decrypt weather-2026.csv.enc --key weather.key --out weather-2026.csv
    """
    output.set_json_mode(json_out)
    try:
        ciphertext = source.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"cannot read {source}: {exc.strerror}") from None
    try:
        plaintext = keydelivery.decrypt_content(_read_key(key), ciphertext)
    except ValueError as exc:
        raise OperationFailed(f"{source}: {exc}", code="data.wrong_key") from None
    out.write_bytes(plaintext)
    document = {"decrypted": str(out), "bytes": len(plaintext), "content_hash": sha256(ciphertext).hex()}
    output.emit(
        document,
        lambda: output.stdout.print(f"[bold green]decrypted[/] {source} -> {out} ({len(plaintext):,} bytes)"),
    )


# -- offers --------------------------------------------------------------------------------------------


@app.command("offer")
def offer(
    seller: Annotated[str, typer.Argument(help="Local name of the seller (signs).", metavar="SELLER")],
    name: Annotated[str, typer.Option("--name", help="What is sold, 1-64 characters.")],
    price: Annotated[int, typer.Option("--price", min=1, help="Price per period or per item, base units.")],
    per: Annotated[str, typer.Option("--per", help="period or item.")],
    licence: Annotated[str, typer.Option("--licence", help="The licence, e.g. CC-BY-4.0.")],
    kind: Annotated[str, typer.Option("--kind", help="stream or dataset.")] = "stream",
    asset: Annotated[str, typer.Option("--asset", help="Asset of the price.")] = "aut",
    period: Annotated[
        str | None,
        typer.Option(
            "--period", help="Per period: one period (1h, 1d). Per item: the access window, if any."
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="Up to 1024 characters.")] = "",
    require: Annotated[
        list[str] | None,
        typer.Option(
            "--require", help="An attestation you hold: CLAIM=ISSUER (a name or did:key); repeatable."
        ),
    ] = None,
    content_hash: Annotated[
        str | None, typer.Option("--content-hash", help="SHA-256 of the encrypted content (64 hex).")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Offer a stream or a dataset; prints the offer id.

    Example:  autarky data offer station --name weather/field-12 --price 5 --per period --period 1h
              --licence CC-BY-4.0 --require calibration/v1=lab
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    requirements: list[tuple[str, str]] = []
    for entry in require or []:
        claim, separator, issuer = entry.partition("=")
        if not separator or not claim or not issuer:
            raise UsageProblem(f"--require {entry!r}: write CLAIM=ISSUER, e.g. calibration/v1=lab")
        requirements.append((claim, ring.resolve(issuer)))
    period_ms = None if period is None else parse_duration_ms(period, "--period")
    digest = None if content_hash is None else parse_hex32(content_hash, "a content hash")
    message = data.offer(
        kind=kind,
        name=name,
        price=price,
        asset=asset,
        per=per,
        licence=licence,
        description=description,
        period_ms=period_ms,
        required_attestations=requirements,
        content_hash=digest,
    )
    account, key = _unlock(seller, Secrets(password_file, key_file))
    result = run(send_tx(account, key, [message], fee=fee))
    offer_id = data_keeper.new_offer_id(bytes.fromhex(result["tx_hash"]), 0)
    document = {"offer": offer_id.hex(), "seller": account, "resource": f"data/{offer_id.hex()}", **result}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]offered[/] {name}: offer {offer_id.hex()}\n  {tx_summary(result)}"
        ),
    )


@app.command("withdraw")
def withdraw(
    offer_id: Annotated[str, typer.Argument(help="The offer id (64 hex).", metavar="OFFER")],
    seller: Annotated[str, typer.Option("--seller", help="Local name of the seller (signs).")],
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Take an offer off the market; open purchases go on.

    Example:  autarky data withdraw 5c1e…9a --seller station
    """
    output.set_json_mode(json_out)
    raw = parse_hex32(offer_id, "an offer id")
    account, key = _unlock(seller, Secrets(password_file, key_file))
    result = run(send_tx(account, key, [data.withdraw(raw)], fee=fee))
    output.emit(
        {"offer": raw.hex(), **result},
        lambda: output.stdout.print(f"[bold green]withdrawn[/] offer {raw.hex()}\n  {tx_summary(result)}"),
    )


@app.command("offers")
def offers(
    seller: Annotated[
        str | None, typer.Option("--seller", help="Only this seller (a name or did:key).")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only stream or dataset.")] = None,
    all_offers: Annotated[bool, typer.Option("--all", help="Include withdrawn offers.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List offers (open ones unless --all).

    Example:  autarky data offers --kind stream --json
    """
    output.set_json_mode(json_out)
    did = None if seller is None else current().keyring.resolve(seller)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.data_offers(
                seller=did, kind=kind, withdrawn=None if all_offers else False, limit=500
            )

    page = run(fetch())

    def human() -> None:
        if not page["offers"]:
            output.stdout.print("no offers")
            return
        ring = current().keyring
        table = Table(
            "offer", "kind", "name", "price", "per", "licence", "seller", "sold", title_justify="left"
        )
        for item in page["offers"]:
            per = (
                item["per"] if item["period_ms"] is None else f"{item['per']} ({item['period_ms'] // 1000}s)"
            )
            withdrawn = " (withdrawn)" if item["withdrawn"] is not None else ""
            table.add_row(
                item["id"][:16] + "…",
                item["kind"],
                item["name"] + withdrawn,
                f"{output.fmt_amount(item['price'])} {item['asset']}",
                per,
                item["licence"],
                ring.name_of(item["seller"]) or output.short(item["seller"]),
                str(item["sold"]),
            )
        output.stdout.print(table)

    output.emit(page, human)


@app.command("show")
def show(
    offer_id: Annotated[str, typer.Argument(help="The offer id (64 hex).", metavar="OFFER")],
    json_out: JsonOpt = False,
) -> None:
    """One offer, its required attestations as the node judges them now, and its sales.

    Example:  autarky data show 5c1e…9a
    """
    output.set_json_mode(json_out)
    raw = parse_hex32(offer_id, "an offer id")

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.data_offer(raw)

    document = run(fetch())

    def human() -> None:
        out = output.stdout
        out.print(f"[bold]{document['name']}[/]  {document['kind']}  offer {document['id']}")
        out.print(f"  seller     {document['seller']}")
        period = "" if document["period_ms"] is None else f" ({document['period_ms']} ms)"
        price = f"{output.fmt_amount(document['price'])} {document['asset']}"
        out.print(f"  price      {price} per {document['per']}{period}")
        out.print(f"  licence    {document['licence']}")
        for requirement in document["attestations"]:
            mark = "[green]ok[/]" if requirement["satisfied_by"] else "[red]not satisfied[/]"
            out.print(f"  requires   {requirement['claim']} by {requirement['issuer']}: {mark}")
        agent = document["agent"]
        out.print("  agent      " + ("approves" if agent["approved"] else f"refuses: {agent['code']}"))
        counts = document["purchases"]
        sold = f"{counts['delivered']} delivered, {counts['open']} open, {counts['refunded']} refunded"
        out.print(f"  purchases  {sold}")

    output.emit(document, human)


# -- buying --------------------------------------------------------------------------------------------


async def _proved_offer(client: AutarkyClient, offer_id: bytes, node_key: str, chain_id: str) -> OfferRecord:
    """The offer record from a state proof checked against ``node_key``."""
    from autarky.web.client import verify_proof

    proof = await client.proof(data_keeper.offer_key(offer_id))
    if not verify_proof(proof, node_key, chain_id):
        raise OperationFailed(f"the proof of offer {offer_id.hex()} does not verify", code="client.bad_proof")
    if proof.value is None:
        raise OperationFailed(f"no offer {offer_id.hex()} (proved absent)", code="data.unknown_offer")
    try:
        return OfferRecord.from_cbor(canonical_decode(proof.value))
    except (DecodeError, ValueError) as exc:
        raise OperationFailed(f"the proved offer is malformed: {exc}", code="client.bad_proof") from None


async def _proved_evidence(
    client: AutarkyClient, record: OfferRecord, node_key: str, chain_id: str, now_ms: int
) -> list[Evidence]:
    """Each attestation about the seller that bears on a requirement, its verdict recomputed here."""
    from autarky.web.client import verify_attestation

    evidence: list[Evidence] = []
    for requirement in record.required_attestations:
        page = await client.attestations(subject=record.seller, issuer=requirement.issuer, limit=500)
        for item in page["attestations"]:
            if item["schema"] != requirement.claim:
                continue
            answer = await client.attestation(item["id"], at_ms=now_ms)
            verdict = verify_attestation(answer, node_key, now_ms, chain_id=chain_id)
            evidence.append(Evidence.of(answer.id, answer.record, verdict))
    return evidence


@app.command("buy")
def buy(
    offer_id: Annotated[str, typer.Argument(help="The offer id (64 hex).", metavar="OFFER")],
    buyer: Annotated[str, typer.Option("--buyer", help="Local name of the buyer (signs, pays).")],
    periods: Annotated[
        int | None, typer.Option("--periods", min=1, help="Periods to buy (offers per period).")
    ] = None,
    items: Annotated[
        int | None, typer.Option("--items", min=1, help="Items to buy (offers per item).")
    ] = None,
    licence: Annotated[
        list[str] | None, typer.Option("--licence", help="A licence you accept (repeatable; default any).")
    ] = None,
    max_price: Annotated[
        int | None, typer.Option("--max-price", min=0, help="The most you pay per unit (default any).")
    ] = None,
    node_key: NodeKeyOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Buy PERIODS or ITEMS of an offer, if the buyer's agent approves it.

    The agent reads the offer and every attestation it requires from state proofs, recomputes their
    verdicts here, and refuses (exit 1, e.g. data.attestation_missing) before anything is signed.
    The price is locked in escrow until you acknowledge the key (`data receive-key --ack`); without
    an acknowledgement before the deadline it comes back to you.

    Example:  autarky data buy 5c1e…9a --buyer tractor --periods 2 --licence CC-BY-4.0
    """
    output.set_json_mode(json_out)
    raw = parse_hex32(offer_id, "an offer id")
    if (periods is None) == (items is None):
        raise UsageProblem("give --periods or --items (one of them)")
    account, key = _unlock(buyer, Secrets(password_file, key_file))

    async def check_and_buy() -> dict[str, Any]:
        async with connect() as client:
            status = await client.status()
            chain_id, trusted = str(status["chain_id"]), node_key or str(status["node_key"])
            now_ms = _now_ms()
            record = await _proved_offer(client, raw, trusted, chain_id)
            evidence = await _proved_evidence(client, record, trusted, chain_id, now_ms)
        terms = BuyerTerms(
            licences=None if not licence else tuple(licence),
            max_price=None if max_price is None else {record.asset: max_price},
        )
        try:
            approval = check_offer(record, evidence, terms)
        except OfferRefused as refused:
            raise OperationFailed(
                f"the buyer's agent refuses offer {raw.hex()}: {refused.code}: {refused.detail}",
                code=refused.code,
                details={"detail": refused.detail},
            ) from None
        result = await send_tx(account, key, [data.buy(raw, periods=periods, items=items)], fee=fee)
        purchase_id = data_keeper.new_purchase_id(bytes.fromhex(result["tx_hash"]), 0)
        async with connect() as client:
            purchase = await client.data_purchase(purchase_id)
        return {
            "purchase": purchase,
            "approved_with": [
                {"claim": requirement.claim, "issuer": requirement.issuer, "attestation": attestation.hex()}
                for requirement, attestation in approval.satisfied_by
            ],
            "proved_against": {"node_key": trusted, "pinned": node_key is not None},
            **result,
        }

    document = run(check_and_buy())

    def human() -> None:
        purchase = document["purchase"]
        out = output.stdout
        out.print(f"[bold green]bought[/] purchase {purchase['id']}")
        for item in document["approved_with"]:
            out.print(
                f"  attested   {item['claim']} by {item['issuer']} ({item['attestation'][:16]}…, proved)"
            )
        out.print(f"  paid       {output.fmt_amount(purchase['amount'])} {purchase['asset']} into escrow")
        out.print(f"  grant      {purchase['grant']} (read:data/{purchase['offer']})")
        out.print(f"  deliver by {purchase['deliver_by_ms']} ms; acknowledge the key before then")
        out.print(f"  {tx_summary(document)}")

    output.emit(document, human)


@app.command("purchases")
def purchases(
    account: Annotated[
        str | None, typer.Option("--account", help="Purchases and sales of this name or DID.")
    ] = None,
    offer_id: Annotated[str | None, typer.Option("--offer", help="Purchases of this offer (64 hex).")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open, delivered or refunded.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List purchases an account made or sold, or the purchases of an offer.

    Example:  autarky data purchases --account tractor
    """
    output.set_json_mode(json_out)
    if account is None and offer_id is None:
        raise UsageProblem("give --account, --offer or both")
    did = None if account is None else current().keyring.resolve(account)
    raw = None if offer_id is None else parse_hex32(offer_id, "an offer id")

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.data_purchases(account=did, offer=raw, status=status, limit=500)

    page = run(fetch())

    def human() -> None:
        if not page["purchases"]:
            output.stdout.print("no purchases")
            return
        table = Table("purchase", "role", "offer", "units", "amount", "status", title_justify="left")
        for item in page["purchases"]:
            table.add_row(
                item["id"][:16] + "…",
                item.get("role", "-"),
                item["offer"][:16] + "…",
                str(item["units"]),
                f"{output.fmt_amount(item['amount'])} {item['asset']}",
                item["status"],
            )
        output.stdout.print(table)

    output.emit(page, human)


# -- the key ---------------------------------------------------------------------------------------------


@app.command("deliver-key")
def deliver_key(
    purchase_id: Annotated[str, typer.Argument(help="The purchase id (64 hex).", metavar="PURCHASE")],
    seller: Annotated[str, typer.Option("--seller", help="Local name of the seller (signs the envelope).")],
    key: Annotated[Path, typer.Option("--key", help="The content key to deliver (from `data encrypt`).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the envelope for the buyer.")],
    ttl: Annotated[str, typer.Option("--ttl", help="How long the envelope stays valid (1h, 1d).")] = "1d",
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Seal the content key to the buyer of PURCHASE in a signed envelope (type m2m/data_key).

    Only the buyer's key opens it. Send the file any way you like (or publish its bytes to the
    buyer's NATS subject, see docs/data.md).

    Example:  autarky data deliver-key 9b2d…41 --seller station --key weather.key --out key-for-tractor.cose
    """
    output.set_json_mode(json_out)
    raw = parse_hex32(purchase_id, "a purchase id")
    content_key = _read_key(key)
    ttl_ms = parse_duration_ms(ttl, "--ttl")
    account, signing_key = _unlock(seller, Secrets(password_file, key_file))

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.data_purchase(raw)

    purchase = run(fetch())
    if purchase["seller"] != account:
        raise UsageProblem(
            f"{seller} is not the seller of purchase {raw.hex()} (the seller is {purchase['seller']})"
        )
    if purchase["status"] == "refunded":
        raise OperationFailed(
            f"purchase {raw.hex()} was refunded: its grant is revoked, the buyer would refuse the key",
            code="data.already_settled",
        )
    envelope = keydelivery.seal_key(
        signing_key,
        seller=account,
        buyer=purchase["buyer"],
        offer=bytes.fromhex(purchase["offer"]),
        purchase=raw,
        grant=bytes.fromhex(purchase["grant"]),
        data_key=content_key,
        now_ms=_now_ms(),
        ttl_ms=ttl_ms,
    )
    out.write_bytes(envelope)
    document = {
        "purchase": raw.hex(),
        "buyer": purchase["buyer"],
        "envelope": str(out),
        "bytes": len(envelope),
        "key_hash": keydelivery.key_hash(content_key).hex(),
    }
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]sealed[/] the key for {purchase['buyer']} -> {out} ({len(envelope)} bytes)\n"
            f"  key hash  {document['key_hash']} (the buyer acknowledges this)"
        ),
    )


@app.command("receive-key")
def receive_key(
    envelope_file: Annotated[Path, typer.Argument(help="The envelope the seller sent.", metavar="ENVELOPE")],
    buyer: Annotated[
        str, typer.Option("--buyer", help="Local name of the buyer (its key opens the envelope).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the content key.")],
    ack: Annotated[
        bool, typer.Option("--ack", help="Acknowledge the delivery on the ledger (pays the seller).")
    ] = False,
    node_key: NodeKeyOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a key delivery from the offer's seller and open it with the buyer's key.

    The envelope must be signed by the offer's seller, for this buyer, under a live grant from the
    seller; the seller's key, the grant and the offer are checked against state proofs.

    Refusals exit 1 with their code (msg.not_seller, msg.grant_expired, msg.undecryptable, …). With
    --ack the buyer then acknowledges the key's hash, which releases the escrow to the seller.

    Example:  autarky data receive-key key-for-tractor.cose --buyer tractor --out weather.key --ack
    """
    output.set_json_mode(json_out)
    try:
        envelope = envelope_file.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"cannot read {envelope_file}: {exc.strerror}") from None
    account, buyer_key = _unlock(buyer, Secrets(password_file, key_file))
    try:
        message = peek(envelope)
    except MessageError as exc:
        raise OperationFailed(f"{envelope_file}: {exc}", code=exc.code) from None
    body = message.body
    offer_id = body.get("offer") if isinstance(body, dict) else None
    grant_id = body.get("grant") if isinstance(body, dict) else None
    if (
        type(offer_id) is not bytes
        or type(grant_id) is not bytes
        or len(offer_id) != 32
        or len(grant_id) != 32
    ):
        raise OperationFailed(f"{envelope_file} is not a key delivery", code="msg.bad_key_delivery")

    async def check() -> dict[str, Any]:
        from autarky.modules import build_app
        from autarky.verify import TrustAnchor
        from autarky.verify.directory import ProofCheckedDirectory, account_keys, grant_keys

        async with connect() as client:
            status = await client.status()
            chain_id, trusted = str(status["chain_id"]), node_key or str(status["node_key"])
            record = await _proved_offer(client, offer_id, trusted, chain_id)
            anchor = TrustAnchor.of_node(chain_id, trusted)
            directory = ProofCheckedDirectory(anchor, build_app().authenticator)
            keys = [*account_keys(message.sender), *grant_keys(grant_id)]
            if message.sender != record.seller:
                keys += account_keys(record.seller)
            height = directory.add(await client.proof_bundle(keys))
        try:
            delivered = keydelivery.open_key(
                envelope,
                buyer_key,
                directory,
                buyer=account,
                offer=record.id,
                seller=record.seller,
                now_ms=_now_ms(),
            )
        except MessageError as refused:
            raise OperationFailed(
                f"key delivery refused: {refused.code}: {refused.detail}", code=refused.code
            ) from None
        _write_private(out, delivered.key)
        document: dict[str, Any] = {
            "offer": delivered.offer.hex(),
            "purchase": delivered.purchase.hex(),
            "grant": delivered.grant.hex(),
            "seller": delivered.seller,
            "key_file": str(out),
            "key_hash": delivered.key_hash.hex(),
            "proved_against": {"node_key": trusted, "pinned": node_key is not None, "height": height},
            "acknowledged": None,
        }
        if ack:
            result = await send_tx(
                account, buyer_key, [data.ack_delivery(delivered.purchase, delivered.key_hash)], fee=fee
            )
            document["acknowledged"] = result
        return document

    document = run(check())

    def human() -> None:
        out_ = output.stdout
        out_.print(f"[bold green]key received[/] for offer {document['offer']} -> {document['key_file']}")
        out_.print(f"  from      {document['seller']} (the offer's seller; checked against proofs)")
        out_.print(f"  key hash  {document['key_hash']}")
        if document["acknowledged"]:
            out_.print(f"  acknowledged: the escrow paid the seller; {tx_summary(document['acknowledged'])}")
        else:
            out_.print(
                "  not acknowledged yet: `autarky data ack` (or --ack) before the deadline pays the seller"
            )

    output.emit(document, human)


@app.command("ack")
def acknowledge(
    purchase_id: Annotated[str, typer.Argument(help="The purchase id (64 hex).", metavar="PURCHASE")],
    buyer: Annotated[str, typer.Option("--buyer", help="Local name of the buyer (signs).")],
    key_hash: Annotated[str, typer.Option("--key-hash", help="The received key's hash (from receive-key).")],
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Acknowledge a key delivery: the escrow pays the seller.

    Example:  autarky data ack 9b2d…41 --buyer tractor --key-hash 7bd9…1f
    """
    output.set_json_mode(json_out)
    raw, digest = parse_hex32(purchase_id, "a purchase id"), parse_hex32(key_hash, "a key hash")
    account, key = _unlock(buyer, Secrets(password_file, key_file))
    result = run(send_tx(account, key, [data.ack_delivery(raw, digest)], fee=fee))
    output.emit(
        {"purchase": raw.hex(), "key_hash": digest.hex(), **result},
        lambda: output.stdout.print(
            f"[bold green]acknowledged[/] purchase {raw.hex()}\n  {tx_summary(result)}"
        ),
    )
