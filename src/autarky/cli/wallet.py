"""``autarky wallet …``: balances, payments, and the guardrails an owner sets on a machine's wallet."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.cli.keyring import Secrets
from autarky.cli.options import FeeOpt, JsonOpt, KeyFileOpt, PasswordFileOpt
from autarky.cli.remote import account_json, connect, send_tx, tx_summary
from autarky.crypto.keys import SigningKey
from autarky.modules.bank import messages as bank

app = typer.Typer(
    help="Wallets: balances, payments, guardrails, freeze, unfreeze and sweep.", no_args_is_help=True
)


class _ShowByDefault(TyperGroup):
    """``wallet guardrails NAME`` means ``wallet guardrails show NAME``; ``set`` is the other subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


guardrails_app = typer.Typer(
    cls=_ShowByDefault,
    help="Show a machine's guardrails (`wallet guardrails NAME`) or set them (`wallet guardrails set …`).",
    no_args_is_help=True,
)
app.add_typer(guardrails_app, name="guardrails")

OwnerOpt = Annotated[
    str, typer.Option("--owner", help="Local name of the machine's registered owner (signs).")
]
MachineArg = Annotated[str, typer.Argument(help="The machine: a local name or a did:key.", metavar="MACHINE")]


def _unlock(name: str, secrets: Secrets) -> tuple[str, SigningKey]:
    identity, key = current().keyring.unlock(name, secrets)
    return identity.account, key


# -- balance --------------------------------------------------------------------------------------------


@app.command("balance")
def balance(
    who: Annotated[str, typer.Argument(help="A local name or a did:key.", metavar="NAME|DID")],
    json_out: JsonOpt = False,
) -> None:
    """Show every balance of an account, in integer base units.

    Example:  autarky wallet balance pump-7 --json
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(who)

    async def fetch() -> dict[str, int]:
        async with connect() as client:
            return await client.balances(did)

    balances = run(fetch())
    result = {"did": did, "balances": balances}

    def human() -> None:
        if not balances:
            output.stdout.print(f"{who}: no balance")
            return
        table = Table("asset", "balance", title=f"{who}  {output.short(did)}", title_justify="left")
        for asset, amount in balances.items():
            table.add_row(asset, output.fmt_amount(amount))
        output.stdout.print(table)

    output.emit(result, human)


# -- send -----------------------------------------------------------------------------------------------


@app.command("send")
def send(
    sender: Annotated[str, typer.Option("--from", help="Local name of the paying identity (signs).")],
    to: Annotated[str, typer.Option("--to", help="Recipient: a local name or a did:key.")],
    amount: Annotated[int, typer.Option("--amount", min=1, help="Amount in integer base units.")],
    asset: Annotated[str, typer.Option("--asset", help="Asset name.")] = "aut",
    fee: FeeOpt = 1,
    cosign: Annotated[
        str | None,
        typer.Option("--cosign", help="Owner who co-signs (needed above a machine's cosign threshold)."),
    ] = None,
    memo: Annotated[str, typer.Option("--memo", help="A note stored with the transaction.")] = "",
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Pay AMOUNT of ASSET to another account and wait until the block is committed.

    A machine's guardrails may refuse it (exit 1, with the code, e.g. bank.window_limit).

    Example:  autarky wallet send --from car --to charger --amount 40
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    secrets = Secrets(password_file=password_file, key_file=key_file)
    recipient = ring.resolve(to)
    account, key = _unlock(sender, secrets)
    cosigners = [] if cosign is None else [_unlock(cosign, secrets)[1]]
    result = run(
        send_tx(account, key, [bank.send(recipient, asset, amount)], fee=fee, cosigners=cosigners, memo=memo)
    )
    document = {"from": account, "to": recipient, "asset": asset, "amount": amount, **result}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]sent[/] {output.fmt_amount(amount)} {asset} from {sender} to {to}\n"
            f"  {tx_summary(result)}"
        ),
    )


# -- guardrails -----------------------------------------------------------------------------------------


@guardrails_app.command("show")
def guardrails_show(
    who: Annotated[str, typer.Argument(help="A local name or a did:key.", metavar="NAME|DID")],
    json_out: JsonOpt = False,
) -> None:
    """Show a machine's guardrails, what it spent in the current window, and whether it is frozen.

    Example:  autarky wallet guardrails car --json
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(who)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await account_json(client, did)

    account = run(fetch())
    guard = account.get("guardrails")
    document = {
        "did": did,
        "guardrails": guard,
        "window_spent": account.get("window_spent", {}),
        "frozen": account.get("frozen", False),
        "owner": (account.get("identity") or {}).get("owner"),
    }

    def human() -> None:
        out = output.stdout
        out.print(f"[bold]{who}[/]  {did}" + ("  [red]FROZEN[/]" if document["frozen"] else ""))
        if guard is None:
            out.print("  no guardrails: its own key may spend freely")
            return
        out.print(f"  window     {guard['window_blocks']} blocks")
        allow = guard.get("allowlist")
        if allow is None:
            out.print("  allowlist  any counterparty")
        else:
            ring = current().keyring
            named = [f"{ring.name_of(did) or '?'} ({did})" for did in allow]
            out.print("  allowlist  " + ("\n             ".join(named) or "nobody (only fees)"))
        table = Table("asset", "per tx", "per window", "cosign above", "spent in window")
        for asset, limit in guard["limits"].items():

            def cell(value: int | None) -> str:
                return "-" if value is None else output.fmt_amount(value)

            table.add_row(
                asset,
                cell(limit["per_tx"]),
                cell(limit["per_window"]),
                cell(limit["cosign_above"]),
                output.fmt_amount(document["window_spent"].get(asset, 0)),
            )
        out.print(table)

    output.emit(document, human)


@guardrails_app.command("set")
def guardrails_set(
    machine: MachineArg,
    owner: OwnerOpt,
    asset: Annotated[str, typer.Option("--asset", help="The asset the limits apply to.")] = "aut",
    per_tx: Annotated[
        int | None, typer.Option("--per-tx", min=0, help="Most one transaction may spend.")
    ] = None,
    per_window: Annotated[
        int | None, typer.Option("--per-window", min=0, help="Most that may be spent in any window.")
    ] = None,
    window_blocks: Annotated[
        int | None,
        typer.Option("--window-blocks", min=1, help="Window length in blocks (default: kept, or 100)."),
    ] = None,
    cosign_above: Annotated[
        int | None, typer.Option("--cosign-above", min=0, help="Above this, the owner must co-sign.")
    ] = None,
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="Allowed counterparty (name or DID; repeatable).")
    ] = None,
    allow_any: Annotated[
        bool, typer.Option("--allow-any", help="Remove the counterparty allowlist.")
    ] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove all guardrails from the machine.")] = False,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Set the limits the ledger enforces on MACHINE's own key (signed by its owner).

    The limits given replace those of --asset (an omitted limit means none of that kind); other
    assets' limits, the window and the allowlist are kept unless given.

    Example:  autarky wallet guardrails set car --owner owner --per-tx 60 --per-window 150
              --window-blocks 50 --cosign-above 50 --allow charger
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    secrets = Secrets(password_file=password_file, key_file=key_file)
    did = ring.resolve(machine)
    if allow and allow_any:
        raise UsageProblem("choose --allow or --allow-any, not both")
    owner_account, owner_key = _unlock(owner, secrets)

    async def apply() -> dict[str, Any]:
        async with connect() as client:
            current_guard = (await client.account(did)).guardrails
        if clear:
            value: dict[str, Any] | None = None
        else:
            value = _merge_guardrails(
                current_guard,
                asset,
                per_tx,
                per_window,
                window_blocks,
                cosign_above,
                None if allow is None else [ring.resolve(a) for a in allow],
                allow_any,
            )
        result = await send_tx(owner_account, owner_key, [bank.set_guardrails(did, value)], fee=fee)
        return {"did": did, "guardrails": value, **result}

    document = run(apply())
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]guardrails {'cleared' if clear else 'set'}[/] on {machine}\n"
            f"  {tx_summary(document)}"
        ),
    )


def _merge_guardrails(
    existing: dict[str, Any] | None,
    asset: str,
    per_tx: int | None,
    per_window: int | None,
    window_blocks: int | None,
    cosign_above: int | None,
    allow: list[str] | None,
    allow_any: bool,
) -> dict[str, Any]:
    guard: dict[str, Any] = {
        "window_blocks": 100,
        "limits": {},
        "allowlist": None,
    }
    if existing:
        guard = {
            "window_blocks": existing["window_blocks"],
            "limits": {name: dict(limit) for name, limit in existing["limits"].items()},
            "allowlist": existing.get("allowlist"),
        }
    if window_blocks is not None:
        guard["window_blocks"] = window_blocks
    guard["limits"][asset] = {"per_tx": per_tx, "per_window": per_window, "cosign_above": cosign_above}
    if allow is not None:
        guard["allowlist"] = sorted(set(allow))
    if allow_any:
        guard["allowlist"] = None
    return guard


# -- owner actions --------------------------------------------------------------------------------------


def _owner_action(
    machine: str, owner: str, message: dict[str, Any], fee: int, secrets: Secrets
) -> dict[str, Any]:
    owner_account, owner_key = _unlock(owner, secrets)
    return run(send_tx(owner_account, owner_key, [message], fee=fee))


@app.command("freeze")
def freeze(
    machine: MachineArg,
    owner: OwnerOpt,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Freeze MACHINE's wallet: every transaction it sends is refused until unfrozen (owner's kill-switch).

    Example:  autarky wallet freeze car --owner owner
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(machine)
    result = _owner_action(machine, owner, bank.freeze(did), fee, Secrets(password_file, key_file))
    output.emit(
        {"did": did, **result},
        lambda: output.stdout.print(f"[bold red]frozen[/] {machine}\n  {tx_summary(result)}"),
    )


@app.command("unfreeze")
def unfreeze(
    machine: MachineArg,
    owner: OwnerOpt,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Unfreeze MACHINE's wallet.

    Example:  autarky wallet unfreeze car --owner owner
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(machine)
    result = _owner_action(machine, owner, bank.unfreeze(did), fee, Secrets(password_file, key_file))
    output.emit(
        {"did": did, **result},
        lambda: output.stdout.print(f"[bold green]unfrozen[/] {machine}\n  {tx_summary(result)}"),
    )


@app.command("sweep")
def sweep(
    machine: MachineArg,
    owner: OwnerOpt,
    to: Annotated[
        str | None, typer.Option("--to", help="Recipient (name or DID) (default: the owner).")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Move every balance of MACHINE to its owner (or --to). Signed by the owner; guardrails do not apply.

    Example:  autarky wallet sweep car --owner owner
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    did = ring.resolve(machine)
    recipient = None if to is None else ring.resolve(to)
    result = _owner_action(machine, owner, bank.sweep(did, recipient), fee, Secrets(password_file, key_file))
    output.emit(
        {"did": did, "to": recipient, **result},
        lambda: output.stdout.print(f"[bold green]swept[/] {machine}\n  {tx_summary(result)}"),
    )
