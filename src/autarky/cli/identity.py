"""``autarky identity …``: create keys, register machines on the ledger, rotate keys, resolve DIDs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import NodeUnreachable, TxRefused, UsageProblem
from autarky.cli.keyring import Identity, Secrets, protection_from_options
from autarky.cli.remote import account_json, connect, send_tx, tx_summary
from autarky.crypto.did import public_key_from_did
from autarky.crypto.keys import SigningKey
from autarky.crypto.keystore import read_public

app = typer.Typer(
    help="Identities: keys on this computer, and machines registered on the ledger.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
PasswordFileOpt = Annotated[
    Path | None, typer.Option("--password-file", help="Read the keystore password from this file.")
]
KeyFileOpt = Annotated[Path | None, typer.Option("--key-file", help="Key file that unlocks the keystore.")]
FeeOpt = Annotated[int, typer.Option("--fee", min=0, help="Transaction fee in base units of the fee asset.")]


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
    """Print the W3C DID document of a DID, resolved from ledger state by the node.

    Example:  autarky identity resolve did:key:z6Mk… --json
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(who)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return dict(await client.did_document(did))

    document = run(fetch())

    def human() -> None:
        import json

        output.stdout.print_json(json.dumps(document))

    output.emit(document, human)
