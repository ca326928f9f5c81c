"""``autarky audit``: which key did what, under which grant, when (SPEC C3)."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

import typer

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.cli.remote import connect


def audit(
    machine: Annotated[
        str | None,
        typer.Option(
            "--machine", "-m", help="Only actions by or about this machine (a local name or a DID)."
        ),
    ] = None,
    grant: Annotated[
        str | None, typer.Option("--grant", "-g", help="Only actions allowed by this grant id.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", "-a", help="A message type (bank/send) or a module with a slash (policy/)."),
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Only actions signed by this public key (hex).")
    ] = None,
    from_height: Annotated[int | None, typer.Option("--from", min=0, help="From this block height.")] = None,
    to_height: Annotated[int | None, typer.Option("--to", min=0, help="Up to this block height.")] = None,
    refused: Annotated[bool, typer.Option("--refused", help="Only actions the ledger refused.")] = False,
    accepted: Annotated[bool, typer.Option("--accepted", help="Only actions the ledger accepted.")] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many entries.")
    ] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the audit trail, newest first: block, time, sender and signing key, action, result, grant.

    Every message of every committed transaction is in it, accepted or refused.

    Example:  autarky audit --machine valve-7

    Example:  autarky audit --grant 5be1…04 --json

    Example:  autarky audit --action bank/ --from 100 --to 200 --refused
    """
    output.set_json_mode(json_out)
    if refused and accepted:
        raise UsageProblem("--refused and --accepted exclude each other")
    did = None if machine is None else current().keyring.resolve(machine)
    ok = True if accepted else False if refused else None

    async def fetch() -> list[dict[str, Any]]:
        async with connect() as client:
            return await client.audit(
                machine=did,
                grant=grant,
                action=action,
                key=key,
                from_height=from_height,
                to_height=to_height,
                ok=ok,
                limit=limit,
            )

    entries = run(fetch())
    output.emit({"entries": entries, "limit": limit}, lambda: _print(entries))


def _print(entries: list[dict[str, Any]]) -> None:
    out = output.stdout
    if not entries:
        out.print("no matching actions")
        return
    ring = current().keyring
    for entry in entries:
        when = datetime.datetime.fromtimestamp(entry["time_ms"] / 1000, datetime.UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        sender = ring.name_of(entry["sender"]) or output.short(entry["sender"])
        result = "[green]ok[/]" if entry["ok"] else f"[red]{entry['code']}[/]"
        signer = entry["signers"][0][:12] + "…" if entry["signers"] else "-"
        grants = f"  grant {', '.join(g[:12] + '…' for g in entry['grants'])}" if entry["grants"] else ""
        out.print(
            f"#{entry['height']}.{entry['tx_index']}.{entry['msg_index']}  {when}  {sender} (key {signer})  "
            f"[bold]{entry['action']}[/]  {result}{grants}"
        )
