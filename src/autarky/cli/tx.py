"""``autarky tx …``: look up transactions."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from autarky.cli import output
from autarky.cli.context import run
from autarky.cli.errors import UsageProblem
from autarky.cli.remote import connect

app = typer.Typer(help="Transactions: look one up by its hash.", no_args_is_help=True)

_HASH = re.compile(r"^[0-9a-f]{64}$")


@app.command("show")
def show(
    tx_hash: Annotated[str, typer.Argument(help="The transaction hash: 64 hex characters.", metavar="HASH")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a transaction: its block, sender, messages, result code and events.

    Example:  autarky tx show 3f1c…e9 --json
    """
    output.set_json_mode(json_out)
    tx_hash = tx_hash.strip().lower()
    if not _HASH.fullmatch(tx_hash):
        raise UsageProblem(f"{tx_hash[:80]!r} is not a transaction hash (64 hex characters)")

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return dict(await client.tx(tx_hash))

    document = run(fetch())
    output.emit(document, lambda: _print_tx(document))


def _print_tx(document: dict[str, Any]) -> None:
    out = output.stdout
    out.print(f"[bold]tx[/] {document['tx_hash']}")
    if document.get("status") != "committed":
        out.print(f"  status   {document.get('status')} (not in a block yet)")
        return
    receipt = document.get("receipt") or {}
    code = receipt.get("code")
    verdict = "[green]ok[/]" if receipt.get("ok") else f"[red]failed: {code}[/] {receipt.get('detail', '')}"
    out.print(f"  block    {document.get('height')} (index {document.get('index')})")
    out.print(f"  result   {verdict}")
    body = document.get("tx") or {}
    if body:
        out.print(f"  sender   {body.get('sender')}")
        out.print(f"  sequence {body.get('sequence')}   fee {body.get('fee')}")
        if body.get("memo"):
            out.print(f"  memo     {body['memo']}")
        for message in body.get("messages", []):
            fields = ", ".join(f"{k}={v}" for k, v in message.items() if k != "type")
            out.print(f"  message  {message.get('type')}  {fields}", markup=False)
        out.print(f"  signers  {len(body.get('signatures', []))}")
    for event in receipt.get("events", []):
        attributes = ", ".join(f"{k}={v}" for k, v in event.get("attributes", {}).items())
        out.print(f"  event    {event.get('type')}  {attributes}", markup=False)
