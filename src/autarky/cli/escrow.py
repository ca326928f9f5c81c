"""``autarky escrow …``: lock funds for one or more beneficiaries, release, refund, list locks.

The markets (energy, leases, data, jobs, metering deposits) lock funds through the same escrow; their
locks show here too (``holder`` names the module whose rules release them).
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.cli.keyring import Secrets
from autarky.cli.options import FeeOpt, FromOpt, JsonOpt, KeyFileOpt, PasswordFileOpt, parse_hex32
from autarky.cli.remote import connect, send_as, send_tx, tx_summary
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.escrow import messages as escrow

app = typer.Typer(
    help="Escrow: lock funds under conditions, release, refund, list locks.", no_args_is_help=True
)

LockOpt = Annotated[str, typer.Option("--lock", help="The lock id (64 hex characters).")]

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_MS = {"": 1000, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """``90`` or ``90s``, ``30m``, ``2h``, ``7d`` in milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise UsageProblem(f"{text!r} is not a duration such as 90s, 30m, 2h or 7d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


@app.command("lock")
def lock(
    sender: FromOpt,
    to: Annotated[list[str], typer.Option("--to", help="A beneficiary (local name or did:key); repeatable.")],
    amount: Annotated[int, typer.Option("--amount", min=1, help="Amount in integer base units.")],
    asset: Annotated[str, typer.Option("--asset", help="Asset name.")] = "aut",
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="Refund to you automatically after this long (30m, 2h, 7d).")
    ] = "1d",
    arbiter: Annotated[
        str | None, typer.Option("--arbiter", help="Who may also release or refund (a name or did:key).")
    ] = None,
    purpose: Annotated[str, typer.Option("--purpose", help="A short note (at most 64 characters).")] = "",
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Lock AMOUNT of ASSET from --from for the --to beneficiaries; prints the lock id.

    You or the arbiter release it to a beneficiary; the arbiter or a beneficiary can refund it; after
    --expires-in whatever remains comes back to you.

    Example:  autarky escrow lock --from farm --to courier --amount 500 --expires-in 2d --arbiter coop
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    secrets = Secrets(password_file=password_file, key_file=key_file)
    beneficiaries = [ring.resolve(name) for name in to]
    arbiter_did = None if arbiter is None else ring.resolve(arbiter)
    identity, key = ring.unlock(sender, secrets)
    expires_ms = int(time.time() * 1000) + parse_duration_ms(expires_in)
    message = escrow.lock(asset, amount, beneficiaries, expires_ms, arbiter=arbiter_did, purpose=purpose)
    result = run(send_tx(identity.account, key, [message], fee=fee))
    lock_id = escrow_keeper.new_lock_id(bytes.fromhex(result["tx_hash"]), 0).hex()
    document = {
        "lock": lock_id,
        "payer": identity.account,
        "asset": asset,
        "amount": amount,
        "expires_ms": expires_ms,
        **result,
    }
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]locked[/] {output.fmt_amount(amount)} {asset}: lock {lock_id}\n"
            f"  {tx_summary(result)}"
        ),
    )


@app.command("release")
def release(
    sender: FromOpt,
    lock_id: LockOpt,
    to: Annotated[str, typer.Option("--to", help="The beneficiary to pay (a name or did:key).")],
    amount: Annotated[int, typer.Option("--amount", min=1, help="Amount in integer base units.")],
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Pay AMOUNT from a lock to one of its beneficiaries (signed by the payer or the arbiter).

    Example:  autarky escrow release --from farm --lock 5be1…04 --to courier --amount 500
    """
    output.set_json_mode(json_out)
    message = escrow.release(parse_hex32(lock_id, "a lock id"), current().keyring.resolve(to), amount)
    result = send_as(sender, message, fee, password_file, key_file)
    output.emit(
        {"lock": lock_id, "amount": amount, **result},
        lambda: output.stdout.print(
            f"[bold green]released[/] {output.fmt_amount(amount)}\n  {tx_summary(result)}"
        ),
    )


@app.command("refund")
def refund(
    sender: FromOpt,
    lock_id: LockOpt,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Return what remains of a lock to its payer (signed by the arbiter or a beneficiary).

    Example:  autarky escrow refund --from courier --lock 5be1…04
    """
    output.set_json_mode(json_out)
    result = send_as(sender, escrow.refund(parse_hex32(lock_id, "a lock id")), fee, password_file, key_file)
    output.emit(
        {"lock": lock_id, **result},
        lambda: output.stdout.print(f"[bold green]refunded[/]\n  {tx_summary(result)}"),
    )


@app.command("locks")
def locks(
    who: Annotated[
        str, typer.Argument(help="A local name, a did:key or a module account.", metavar="NAME|DID")
    ],
    beneficiary: Annotated[
        bool, typer.Option("--beneficiary", help="Locks that name it, instead of locks it pays.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """List the open locks an account pays (or, with --beneficiary, the locks that name it).

    Example:  autarky escrow locks farm
    """
    output.set_json_mode(json_out)
    account = who if who.startswith("module:") else current().keyring.resolve(who)
    role = "beneficiary" if beneficiary else "payer"

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.escrow_locks(account, role)

    document = run(fetch())

    def human() -> None:
        if not document["locks"]:
            output.stdout.print(f"no open locks ({role})")
        for item in document["locks"]:
            output.stdout.print(
                f"{item['id'][:16]}…  {output.fmt_amount(item['amount'])}"
                f"/{output.fmt_amount(item['locked'])} "
                f"{item['asset']}  holder {item['holder']}  expires {item['expires_ms']}  {item['purpose']}"
            )

    output.emit(document, human)
