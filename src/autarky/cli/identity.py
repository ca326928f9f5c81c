"""``autarky identity …``: create keys, register machines on the ledger, rotate keys, resolve DIDs,
attest claims about machines (and revoke them), and set the service endpoints of a DID document."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import NodeUnreachable, TxRefused, UsageProblem
from autarky.cli.keyring import Identity, Secrets, protection_from_options
from autarky.cli.options import FeeOpt, JsonOpt, KeyFileOpt
from autarky.cli.remote import account_json, connect, send_tx, tx_summary
from autarky.crypto.did import public_key_from_did
from autarky.crypto.keys import SigningKey
from autarky.crypto.keystore import read_public
from autarky.modules.identity import attestations as attestation_checks
from autarky.modules.identity import messages as identity_messages
from autarky.modules.identity.claims import InvalidClaim, make_claim, sign_claim

app = typer.Typer(
    help="Identities: keys on this computer, and machines registered on the ledger.", no_args_is_help=True
)

PasswordFileOpt = Annotated[
    Path | None, typer.Option("--password-file", help="Read the keystore password from this file.")
]
ByOwnerOpt = Annotated[
    str | None,
    typer.Option("--by-owner", help="Sign as this owner (a local name) instead of as the account."),
]

service_app = typer.Typer(
    help="Service endpoints listed in an account's DID document (`service set`, `service remove`).",
    no_args_is_help=True,
)
app.add_typer(service_app, name="service")


# -- new ------------------------------------------------------------------------------------------------


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Local name, e.g. pump-7.")],
    insecure_demo: Annotated[
        bool, typer.Option("--insecure-demo", help="Store the key UNENCRYPTED (throw-away demos only).")
    ] = False,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="Encrypt with the password in this file.")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="Encrypt with this key file (created if absent).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a new Ed25519 identity (a did:key) and its encrypted keystore. Nothing goes on the ledger yet.

    The password comes from --password-file, $AUTARKY_PASSWORD or a prompt; --key-file suits
    unattended machines; only --insecure-demo stores the key in clear.

    Example:  autarky identity new pump-7 --key-file /etc/autarky/pump-7.secret
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    ring.check_name(name)
    if ring.exists(name):
        raise UsageProblem(f"an identity named {name!r} exists ({ring.path(name)}); choose another name")
    secrets = Secrets(password_file=password_file, key_file=key_file)
    protection = protection_from_options(
        secrets,
        f"the new identity {name!r}",
        insecure_demo=insecure_demo,
        password_file=password_file,
        key_file=key_file,
    )
    identity = ring.create(name, SigningKey.generate(), protection)

    def human() -> None:
        output.stdout.print(f"[bold green]created[/] {name}  {identity.account}")
        output.stdout.print(f"  keystore {identity.path} ({identity.protection})")
        output.stdout.print(
            f"Register it as a machine:  autarky identity register {name} --owner owner --kind sensor"
        )

    output.emit(identity.to_json(), human)


# -- list -----------------------------------------------------------------------------------------------


@app.command("list")
def list_identities(json_out: JsonOpt = False) -> None:
    """List the identities in the keys folder (names, DIDs, how each key is protected).

    Example:  autarky identity list
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    identities = [ring.identity(name) for name in ring.names()]

    def human() -> None:
        table = Table("name", "did", "protection")
        for identity in identities:
            table.add_row(identity.name, identity.account, identity.protection)
        output.stdout.print(table)

    output.emit({"keys_dir": str(ring.directory), "identities": [i.to_json() for i in identities]}, human)


# -- show -----------------------------------------------------------------------------------------------


@app.command("show")
def show(
    who: Annotated[str, typer.Argument(help="A local name or a did:key.", metavar="NAME|DID")],
    json_out: JsonOpt = False,
) -> None:
    """Show an identity: its DID, its local keystore, and what the ledger holds about it.

    Example:  autarky identity show pump-7 --json
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    local: Identity | None = None if who.startswith("did:") else ring.identity(who)
    did = local.account if local is not None else ring.resolve(who)
    ledger: dict[str, Any] | None
    settled: str | None = None
    try:
        ledger = run(_account(did))
        if local is not None:
            keys = [
                bytes.fromhex(entry["key"]) for entry in ((ledger.get("identity") or {}).get("keys") or [])
            ]
            if not keys:
                keys = [public_key_from_did(did)]
            settled = ring.settle_pending(local.name, lambda _: keys)
            local = ring.identity(local.name)
    except NodeUnreachable as exc:
        ledger = None
        output.warn(f"{exc.message}; showing the local keystore only")
    document: dict[str, Any] = {
        "did": did,
        "local": None if local is None else local.to_json(),
        "ledger": ledger,
        "pending_rotation": settled,
    }

    def human() -> None:
        out = output.stdout
        out.print(f"[bold]{who}[/]  {did}")
        if local is not None:
            out.print(f"  keystore   {local.path} ({local.protection})")
            if local.rotated:
                out.print(f"  key        {local.key_did} (rotated)")
        if settled:
            out.print(f"  an interrupted rotation was {settled}")
        if ledger is None:
            return
        record = ledger.get("identity")
        if record is None:
            out.print("  ledger     not registered (an implicit account: only its own key signs for it)")
        else:
            owner = record.get("owner")
            out.print(f"  ledger     registered, {record.get('status')}, kind {record.get('kind')!r}")
            out.print(f"  owner      {owner or '- (self-owned)'}")
            for field in ("maker", "model"):
                if record.get(field):
                    out.print(f"  {field:<10} {record[field]}")
            if record.get("capabilities"):
                out.print(f"  capabilities {', '.join(record['capabilities'])}")
            out.print(f"  keys       {len(record.get('keys') or [])}")
        balances = ledger.get("balances") or {}
        text = ", ".join(f"{output.fmt_amount(v)} {k}" for k, v in balances.items()) or "empty"
        out.print(f"  balances   {text}")
        if ledger.get("guardrails"):
            out.print("  guardrails yes (see `autarky wallet guardrails " + who + "`)")
        if ledger.get("frozen"):
            out.print("  [red]wallet frozen by its owner[/]")
        out.print(f"  sequence   {ledger.get('sequence')}")

    output.emit(document, human)


async def _account(did: str) -> dict[str, Any]:
    async with connect() as client:
        return await account_json(client, did)


# -- register -------------------------------------------------------------------------------------------


def _parse_meta(items: list[str]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageProblem(f"--meta {item!r} is not KEY=VALUE")
        metadata[key] = value
    return metadata


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="Local name of the machine's identity (it co-signs).")],
    owner: Annotated[
        str, typer.Option("--owner", help="Local name of the owner, who signs and pays the fee.")
    ],
    kind: Annotated[
        str, typer.Option("--kind", help="Machine kind, e.g. solar-inverter, ev-charger, sensor.")
    ],
    maker: Annotated[str, typer.Option("--maker", help="Manufacturer.")] = "",
    model: Annotated[str, typer.Option("--model", help="Model.")] = "",
    serial: Annotated[
        str | None,
        typer.Option("--serial", help="Serial number; only its SHA-256 digest goes on the ledger."),
    ] = None,
    capability: Annotated[
        list[str] | None, typer.Option("--capability", help="A capability (repeat the option for several).")
    ] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="Metadata KEY=VALUE (repeatable).")] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register NAME on the ledger as a machine owned by OWNER; the machine's key co-signs.

    Example:  autarky identity register pump-7 --owner owner --kind water-pump --maker Grundfos
              --capability pump --meta site=field-3
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    secrets = Secrets(password_file=password_file, key_file=key_file)
    owner_identity, owner_key = ring.unlock(owner, secrets)
    machine, machine_key = ring.unlock(name, secrets)
    message: dict[str, Any] = {
        "type": "identity/register",
        "did": machine.account,
        "kind": kind,
        "maker": maker,
        "model": model,
        "capabilities": list(capability or []),
        "metadata": _parse_meta(list(meta or [])),
    }
    if serial is not None:
        message["serial_digest"] = hashlib.sha256(serial.encode("utf-8")).digest()
    result = run(send_tx(owner_identity.account, owner_key, [message], fee=fee, cosigners=[machine_key]))
    document = {"did": machine.account, "owner": owner_identity.account, "kind": kind, **result}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]registered[/] {name} ({machine.account}) as {kind!r}, owned by {owner}\n"
            f"  {tx_summary(result)}"
        ),
    )


# -- rotate ---------------------------------------------------------------------------------------------


@app.command("rotate")
def rotate(
    name: Annotated[str, typer.Argument(help="Local name of the identity whose key is replaced.")],
    by_owner: Annotated[
        str | None, typer.Option("--by-owner", help="Sign as this owner instead of with the current key.")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replace NAME's key with a new one on the ledger; the DID stays the same.

    The new key is saved (protected like the old one) before the rotation is submitted and takes the
    old one's place only after it commits; the old keystore is kept as NAME.json.bak-h<height>.
    With --by-owner the current key is not needed (e.g. it is lost).

    Example:  autarky identity rotate pump-7 --by-owner owner
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    secrets = Secrets(password_file=password_file, key_file=key_file)
    identity = ring.identity(name)
    old_public = read_public(identity.path).public_key.raw
    if by_owner is not None:
        owner_identity, signer = ring.unlock(by_owner, secrets)
        sender = owner_identity.account
    else:
        identity, signer = ring.unlock(name, secrets)
        sender = identity.account
    new_key = SigningKey.generate()
    message = {
        "type": "identity/rotate",
        "did": identity.account,
        "old_key": old_public,
        "new_key": new_key.public_key.raw,
    }
    ring.stage_rotation(identity, new_key, secrets)
    try:
        result = run(send_tx(sender, signer, [message], fee=fee, cosigners=[new_key]))
    except TxRefused:
        ring.abort_rotation(identity)
        raise
    except NodeUnreachable:
        ring.abort_rotation(identity)
        raise
    backup = ring.finish_rotation(identity, result.get("height"))
    document = {"did": identity.account, "new_key_did": new_key.did, "backup": str(backup), **result}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]rotated[/] {name}: the ledger now lists key {new_key.public_key.hex()[:16]}…\n"
            f"  old keystore kept as {backup}\n  {tx_summary(result)}"
        ),
    )


# -- resolve --------------------------------------------------------------------------------------------


@app.command("resolve")
def resolve(
    who: Annotated[str, typer.Argument(help="A did:key (or a local name).", metavar="DID")],
    json_out: JsonOpt = False,
) -> None:
    """Show the W3C DID document of a DID, resolved from ledger state by the node: its keys, its
    services and the attestations about it (checked now). --json prints the whole document.

    Example:  autarky identity resolve "$BATTERY_DID" --json   (any did, e.g. a did:key)
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(who)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return dict(await client.did_document(did))

    document = run(fetch())
    output.emit(document, lambda: _print_document(document))


def _print_document(document: dict[str, Any]) -> None:
    out = output.stdout
    extension = document.get("autarky") or {}
    if extension.get("registered"):
        owner = document.get("controller") or "- (self-owned)"
        out.print(f"[bold]{document['id']}[/]  {extension.get('status')}, kind {extension.get('kind')!r}")
        out.print(f"  owner      {owner}")
    else:
        out.print(f"[bold]{document['id']}[/]  not registered (implicit document: its own key only)")
    methods = document.get("verificationMethod") or []
    out.print(f"  keys       {len(methods)} ({len(document.get('authentication') or [])} authenticate)")
    services = document.get("service") or []
    if services:
        table = Table("service", "type", "endpoint", title="services", title_justify="left")
        for service in services:
            table.add_row(str(service["id"]).rpartition("#")[2], service["type"], service["serviceEndpoint"])
        out.print(table)
    else:
        out.print("  services   none")
    listed = extension.get("attestations") or []
    total = extension.get("attestations_total", len(listed))
    if not listed:
        out.print("  attestations none")
        return
    table = Table(
        "id", "schema", "issuer", "valid until", "status",
        title=f"attestations about it ({len(listed)} of {total}, newest first)", title_justify="left",
    )  # fmt: skip
    for entry in listed:
        table.add_row(
            entry["id"][:16] + "…",
            entry["schema"],
            output.short(entry["issuer"]),
            _iso(entry["valid_until_ms"]),
            str(entry.get("verdict", "revoked" if entry.get("revoked") is not None else "")),
        )
    out.print(table)


# -- attestations ---------------------------------------------------------------------------------------

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _parse_time_ms(text: str, option: str) -> int:
    """``now``, milliseconds since the Unix epoch, or an ISO 8601 date or date-time (UTC unless it
    names an offset; a date alone is its midnight UTC)."""
    if text == "now":
        return _now_ms()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageProblem(
            f"{option} {text!r} is not a date: use ISO 8601 (2027-06-30 or 2027-06-30T12:00:00Z), "
            "milliseconds since the epoch, or 'now'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _iso(time_ms: int) -> str:
    try:
        moment = _EPOCH + timedelta(milliseconds=time_ms)
    except OverflowError:
        return f"{time_ms} ms"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_fields(items: list[str]) -> dict[str, str | int]:
    """``KEY=TEXT`` gives a text value, ``KEY:=INTEGER`` an integer one."""
    fields: dict[str, str | int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or name == ":":
            raise UsageProblem(f"--field {item!r} is not KEY=TEXT or KEY:=INTEGER")
        parsed: str | int = value
        if name.endswith(":"):
            name = name[:-1]
            if not _INTEGER.fullmatch(value):
                raise UsageProblem(f"--field {item!r}: {value!r} is not an integer (KEY:=INTEGER)")
            parsed = int(value)
        if name in fields:
            raise UsageProblem(f"--field {name!r} is given twice")
        fields[name] = parsed
    return fields


@app.command("attest")
def attest(
    issuer: Annotated[
        str, typer.Argument(help="Local name of the issuer: it signs the claim and the transaction.")
    ],
    subject: Annotated[
        str, typer.Argument(help="The subject: a local name or a did:key.", metavar="SUBJECT")
    ],
    schema: Annotated[str, typer.Option("--schema", help="What the claim says, e.g. calibration/v1.")],
    valid_until: Annotated[
        str,
        typer.Option("--valid-until", help="End of validity (exclusive): ISO date/time, epoch ms, or 'now'."),
    ],
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="A claim field: KEY=TEXT, or KEY:=INTEGER (repeatable)."),
    ] = None,
    valid_from: Annotated[
        str, typer.Option("--valid-from", help="Start of validity: ISO date/time, epoch ms, or 'now'.")
    ] = "now",
    save: Annotated[
        Path | None,
        typer.Option("--save", help="Also write the signed claim (canonical CBOR) to this file."),
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """ISSUER signs a claim about SUBJECT and anchors it on the ledger; prints its id.

    Dates without an offset are UTC; a date alone is its midnight. A text field that is a number
    stays text: write KEY:=INTEGER for an integer. --save writes the signed claim so it can travel
    to a device and be checked offline.

    Example:  autarky identity attest lab sensor-12 --schema calibration/v1 --field standard=ISO-17025
              --field error_ppm:=120 --valid-from 2027-01-15 --valid-until 2028-01-15
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    secrets = Secrets(password_file=password_file, key_file=key_file)
    subject_did = ring.resolve(subject)
    issuer_identity = ring.identity(issuer)
    try:
        claim = make_claim(
            issuer_identity.account,
            subject_did,
            schema,
            _parse_fields(list(field or [])),
            _parse_time_ms(valid_from, "--valid-from"),
            _parse_time_ms(valid_until, "--valid-until"),
        )
    except InvalidClaim as exc:
        raise UsageProblem(f"the claim is not valid: {exc.detail}", code=exc.code) from None
    issuer_identity, issuer_key = ring.unlock(issuer, secrets)
    signed = sign_claim(issuer_key, claim)
    if save is not None:
        save.write_bytes(signed.to_bytes())
    result = run(send_tx(issuer_identity.account, issuer_key, [identity_messages.attest(signed)], fee=fee))
    document = {
        "id": claim.id.hex(),
        **claim.to_json(),
        "signed_claim": signed.to_bytes().hex(),
        "saved": None if save is None else str(save),
        **result,
    }
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]attested[/] {claim.schema} about {subject} by {issuer}, valid "
            f"{_iso(claim.valid_from_ms)} to {_iso(claim.valid_until_ms)}\n"
            f"  id {claim.id.hex()}\n  {tx_summary(result)}"
        ),
    )


def _attestation_id(text: str) -> bytes:
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(text) != 64 or len(digest) != 32:
        raise UsageProblem(f"{text[:80]!r} is not an attestation id (64 hex characters)")
    return digest


@app.command("revoke-attestation")
def revoke_attestation(
    issuer: Annotated[str, typer.Argument(help="Local name of the issuer that anchored it.")],
    attestation_id: Annotated[str, typer.Argument(help="The attestation id (64 hex).", metavar="ID")],
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """ISSUER revokes one of its attestations; it stays listed, marked revoked at this block.

    Example:  autarky identity revoke-attestation lab 3f0c…e1
    """
    output.set_json_mode(json_out)
    digest = _attestation_id(attestation_id)
    secrets = Secrets(password_file=password_file, key_file=key_file)
    issuer_identity, issuer_key = current().keyring.unlock(issuer, secrets)
    message = identity_messages.revoke_attestation(digest)
    result = run(send_tx(issuer_identity.account, issuer_key, [message], fee=fee))
    document = {"id": digest.hex(), "issuer": issuer_identity.account, **result}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]revoked[/] attestation {digest.hex()}\n  {tx_summary(result)}"
        ),
    )


@app.command("attestation")
def show_attestation(
    attestation_id: Annotated[str, typer.Argument(help="The attestation id (64 hex).", metavar="ID")],
    at: Annotated[
        str, typer.Option("--at", help="Check validity at this time: ISO date/time, epoch ms, or 'now'.")
    ] = "now",
    node_key: Annotated[
        str | None,
        typer.Option("--node-key", help="The did:key of the node you trust (default: what the node says)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show an attestation and whether it is valid, checked here from state proofs.

    The verdict is recomputed locally from two proofs (the record and the issuer's account) against
    a header signed by the node key; pin the node you trust with --node-key.

    Example:  autarky identity attestation 3f0c…e1 --at 2027-06-30 --json
    """
    output.set_json_mode(json_out)
    digest = _attestation_id(attestation_id)
    at_ms = _parse_time_ms(at, "--at")

    async def fetch() -> dict[str, Any]:
        from autarky.web.client import verify_attestation

        async with connect() as client:  # inside, so a failed check is reported like the client's errors
            status = await client.status()
            answer = await client.attestation(digest, at_ms=at_ms)
            trusted = node_key or str(status["node_key"])
            verdict = verify_attestation(answer, trusted, at_ms, chain_id=str(status["chain_id"]))
        return {
            "id": digest.hex(),
            "attestation": attestation_checks.record_json(digest, answer.record),
            "verdict": verdict.to_json(),
            "checked_at_ms": at_ms,
            "node_verdict": answer.verdict.to_json(),
            "proved_against": {
                "node_key": trusted,
                "pinned": node_key is not None,
                "height": answer.proof.header.height,
            },
        }

    document = run(fetch())

    def human() -> None:
        out = output.stdout
        record = document["attestation"]
        verdict = document["verdict"]
        colour = "green" if verdict["valid"] else "red"
        out.print(f"[bold]{record['schema']}[/] about {record['subject']}")
        out.print(f"  issuer     {record['issuer']}")
        out.print(f"  fields     {json.dumps(record['fields'], sort_keys=True)}")
        out.print(f"  validity   {_iso(record['valid_from_ms'])} to {_iso(record['valid_until_ms'])}")
        revoked = "" if record["revoked"] is None else f", revoked at block {record['revoked']}"
        out.print(f"  anchored   block {record['anchored']}{revoked}")
        out.print(f"  verdict    [{colour}]{verdict['reason']}[/] at {_iso(at_ms)} ({verdict['detail']})")
        proved = document["proved_against"]
        pinned = "pinned" if proved["pinned"] else "as the node reports it; pin it with --node-key"
        out.print(f"  proofs     checked at block {proved['height']} against node key {proved['node_key']}")
        out.print(f"             ({pinned})")

    output.emit(document, human)


# -- services -------------------------------------------------------------------------------------------


def _signer_for(account: str, by_owner: str | None, secrets: Secrets) -> tuple[str, str, SigningKey]:
    """(the account's DID, the sender, its key): the account itself (a local name), or its owner."""
    ring = current().keyring
    if by_owner is not None:
        owner_identity, owner_key = ring.unlock(by_owner, secrets)
        return ring.resolve(account), owner_identity.account, owner_key
    identity, key = ring.unlock(account, secrets)
    return identity.account, identity.account, key


@service_app.command("set")
def service_set(
    account: Annotated[
        str, typer.Argument(help="The account: a local name (or a did:key with --by-owner).", metavar="NAME")
    ],
    service_id: Annotated[str, typer.Argument(help="The service id, the fragment of DID#ID.", metavar="ID")],
    service_type: Annotated[
        str, typer.Option("--type", help="The service type, e.g. MQTTBroker or LinkedDomains.")
    ],
    endpoint: Annotated[str, typer.Option("--endpoint", help="The endpoint URI, e.g. mqtts://host:8883.")],
    by_owner: ByOwnerOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add (or replace) the service ID of a registered account's DID document (at most 8).

    Example:  autarky identity service set pump-7 telemetry --type MQTTBroker
              --endpoint mqtts://broker.site-3.example:8883 --by-owner owner
    """
    output.set_json_mode(json_out)
    secrets = Secrets(password_file=password_file, key_file=key_file)
    did, sender, key = _signer_for(account, by_owner, secrets)
    message = identity_messages.set_service(did, service_id, service_type, endpoint)
    result = run(send_tx(sender, key, [message], fee=fee))
    document = {"did": did, "service_id": service_id, "type": service_type, "endpoint": endpoint, **result}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]service set[/] {did}#{service_id} ({service_type}) -> {endpoint}\n"
            f"  {tx_summary(result)}"
        ),
    )


@service_app.command("remove")
def service_remove(
    account: Annotated[
        str, typer.Argument(help="The account: a local name (or a did:key with --by-owner).", metavar="NAME")
    ],
    service_id: Annotated[str, typer.Argument(help="The service id.", metavar="ID")],
    by_owner: ByOwnerOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove the service ID from a registered account's DID document.

    Example:  autarky identity service remove pump-7 telemetry --by-owner owner
    """
    output.set_json_mode(json_out)
    secrets = Secrets(password_file=password_file, key_file=key_file)
    did, sender, key = _signer_for(account, by_owner, secrets)
    result = run(send_tx(sender, key, [identity_messages.remove_service(did, service_id)], fee=fee))
    document = {"did": did, "service_id": service_id, **result}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]service removed[/] {did}#{service_id}\n  {tx_summary(result)}"
        ),
    )
