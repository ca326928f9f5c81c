"""``autarky market …``: the energy auction: bid, ask, cancel, and read books and clearing prices.

Write commands sign one transaction and wait for its block; they print the order id, which the
client computes from the transaction hash (``market/order-id``). Read commands ask the node's API
(``/api/v1/market/…``). Intervals are indexes: interval ``k`` is the block time
``[k*L, (k+1)*L)``; ``--ahead N`` picks the interval N after the current one (default 1: the next
one, the first that still takes orders), ``--interval K`` an exact one. Prices are integers in base
units of the zone's asset per energy unit; quantities integer energy units (Wh by default).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.cli.keyring import Secrets
from autarky.cli.options import FeeOpt, JsonOpt, KeyFileOpt, PasswordFileOpt, parse_hex32
from autarky.cli.remote import connect, send_as, send_tx, tx_summary
from autarky.modules.market import keeper as market_keeper
from autarky.modules.market import messages as market

app = typer.Typer(
    help="Energy market: bid, ask and cancel in the double auction; books, orders and clearing prices.",
    no_args_is_help=True,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ZoneOpt = Annotated[str, typer.Option("--zone", help="The market zone (see `autarky market zones`).")]
FromOpt = Annotated[str, typer.Option("--from", help="Local name of the trading identity (signs).")]
IntervalOpt = Annotated[
    int | None,
    typer.Option("--interval", min=0, help="The delivery interval index (exclusive with --ahead)."),
]
AheadOpt = Annotated[
    int | None,
    typer.Option(
        "--ahead", min=1, help="The interval this many after the current one (default 1).", show_default=False
    ),
]
QuantityOpt = Annotated[int, typer.Option("--quantity", min=1, help="Energy units (e.g. Wh).")]
PrintIdOpt = Annotated[
    bool, typer.Option("--print-id", help="Print only the order id (for scripts: ORDER=$(autarky market …)).")
]
PriceOpt = Annotated[
    int, typer.Option("--price", min=0, help="Limit price per unit, in base units of the zone's asset.")
]


async def _zones() -> dict[str, Any]:
    async with connect() as client:
        return await client.market_zones()


def _pick_interval(interval: int | None, ahead: int | None) -> int:
    if interval is not None and ahead is not None:
        raise UsageProblem("give --interval or --ahead, not both")
    if interval is not None:
        return interval
    zones = run(_zones())
    return int(zones["current_interval"]) + (1 if ahead is None else ahead)


def _place(
    side: str,
    sender: str,
    zone: str,
    interval: int | None,
    ahead: int | None,
    quantity: int,
    price: int,
    fee: int,
    secrets: Secrets,
) -> dict[str, Any]:
    if side == "bid" and price < 1:
        raise UsageProblem("a bid's --price must be at least 1")
    index = _pick_interval(interval, ahead)
    identity, key = current().keyring.unlock(sender, secrets)
    build = market.bid if side == "bid" else market.ask
    result = run(send_tx(identity.account, key, [build(zone, index, quantity, price)], fee=fee))
    order_id = market_keeper.new_order_id(bytes.fromhex(result["tx_hash"]), 0)
    return {
        "order": order_id.hex(),
        "side": side,
        "owner": identity.account,
        "zone": zone,
        "interval": index,
        "quantity": quantity,
        "limit_price": price,
        **result,
    }


def _show_placed(document: dict[str, Any], print_id: bool) -> None:
    if print_id:
        typer.echo(document["order"])
    else:
        output.emit(document, lambda: _placed(document))


def _placed(document: dict[str, Any]) -> None:
    verb = "bid" if document["side"] == "bid" else "ask"
    output.stdout.print(
        f"[bold green]{verb} placed[/] {document['quantity']} at {document['limit_price']} in "
        f"{document['zone']} for interval {document['interval']}\n"
        f"  order {document['order']}\n  {tx_summary(document)}"
    )


# -- bid, ask, cancel ---------------------------------------------------------------------------------


@app.command("bid")
def bid(
    sender: FromOpt,
    zone: ZoneOpt,
    quantity: QuantityOpt,
    price: PriceOpt,
    interval: IntervalOpt = None,
    ahead: AheadOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    print_id: PrintIdOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Buy up to --quantity units for an interval, paying at most --price each.

    Escrows quantity x price now; at clearing everything above the clearing price
    returns, and after delivery whatever was not delivered.

    Example:  autarky market bid --from house --zone main --quantity 500 --price 30
    """
    output.set_json_mode(json_out)
    secrets = Secrets(password_file=password_file, key_file=key_file)
    document = _place("bid", sender, zone, interval, ahead, quantity, price, fee, secrets)
    _show_placed(document, print_id)


@app.command("ask")
def ask(
    sender: FromOpt,
    zone: ZoneOpt,
    quantity: QuantityOpt,
    price: PriceOpt,
    interval: IntervalOpt = None,
    ahead: AheadOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    print_id: PrintIdOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Sell up to --quantity units for an interval, for at least --price each.

    In a zone with a penalty, escrows quantity x penalty as collateral. You are paid
    for what your export meters deliver in the interval.

    Example:  autarky market ask --from solar --zone main --quantity 800 --price 12
    """
    output.set_json_mode(json_out)
    secrets = Secrets(password_file=password_file, key_file=key_file)
    document = _place("ask", sender, zone, interval, ahead, quantity, price, fee, secrets)
    _show_placed(document, print_id)


@app.command("cancel")
def cancel(
    order: Annotated[str, typer.Argument(help="The order id (64 hex characters).", metavar="ORDER")],
    sender: FromOpt,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw an open order before its interval begins; its escrow returns.

    Example:  autarky market cancel 3f2a…c9 --from house
    """
    output.set_json_mode(json_out)
    order_id = parse_hex32(order, "an order id")
    result = send_as(sender, market.cancel(order_id), fee, password_file, key_file)
    document = {"order": order_id.hex(), **result}
    output.emit(
        document,
        lambda: output.stdout.print(f"[bold green]cancelled[/] {order_id.hex()}\n  {tx_summary(result)}"),
    )


# -- reads ------------------------------------------------------------------------------------------


@app.command("zones")
def zones(json_out: JsonOpt = False) -> None:
    """List the market zones, the interval length and the current interval.

    Example:  autarky market zones --json
    """
    output.set_json_mode(json_out)
    document = run(_zones())

    def human() -> None:
        table = Table("zone", "asset", "unit", "price cap feed", "penalty/unit", title_justify="left")
        for zone in document["zones"]:
            table.add_row(
                zone["name"],
                zone["asset"],
                zone["unit"],
                zone["price_cap_feed"] or "-",
                str(zone["penalty_per_unit"]),
            )
        output.stdout.print(table)
        output.stdout.print(
            f"interval {document['interval_ms'] // 1000} s; current interval {document['current_interval']} "
            f"(orders go to {document['current_interval'] + 1} and later)"
        )

    output.emit(document, human)


@app.command("book")
def book(
    zone: ZoneOpt,
    interval: Annotated[
        int | None, typer.Option("--interval", min=0, help="Interval index (default: the next one).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one order book: bids and asks ranked, and its clearing once cleared.

    Example:  autarky market book --zone main
    """
    output.set_json_mode(json_out)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.market_book(zone, interval)

    document = run(fetch())

    def human() -> None:
        out = output.stdout
        out.print(f"[bold]{zone}[/] interval {document['interval']}, gate {_iso(document['gate_ms'])}")
        ring = current().keyring
        table = Table("side", "price", "quantity", "fill", "status", "owner", "order")
        for record in [*document["bids"], *document["asks"]]:
            table.add_row(
                record["side"],
                str(record["limit_price"]),
                output.fmt_amount(record["quantity"]),
                output.fmt_amount(record["fill"]),
                record["status"],
                ring.name_of(record["owner"]) or output.short(record["owner"]),
                record["id"][:12],
            )
        out.print(table)
        clearing = document["clearing"]
        if clearing is None:
            out.print("not cleared yet" if document["accepting"] else "clearing in the next block")
        else:
            out.print(_clearing_line(clearing))

    output.emit(document, human)


def _iso(time_ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=time_ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clearing_line(clearing: dict[str, Any]) -> str:
    if clearing["price"] is None:
        return f"interval {clearing['interval']}: no trade"
    volume = output.fmt_amount(clearing["volume"])
    line = f"interval {clearing['interval']}: price {clearing['price']}, volume {volume}"
    line += f", {clearing['status']}"
    if clearing["status"] == "settled":
        line += f", delivered {output.fmt_amount(clearing['delivered'])}, penalty {clearing['penalty']}"
    return line


@app.command("prices")
def prices(
    zone: ZoneOpt,
    from_interval: Annotated[
        int | None, typer.Option("--from", min=0, help="First interval (default: 96 before --to).")
    ] = None,
    to_interval: Annotated[
        int | None, typer.Option("--to", min=0, help="Last interval (default: the current one).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 500,
    json_out: JsonOpt = False,
) -> None:
    """The clearing-price history of a zone, oldest first.

    Example:  autarky market prices --zone main --json
    """
    output.set_json_mode(json_out)
    if from_interval is not None and to_interval is not None and from_interval > to_interval:
        raise UsageProblem("--from is after --to")

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.market_prices(zone, from_interval, to_interval, limit)

    document = run(fetch())

    def human() -> None:
        if not document["prices"]:
            output.stdout.print(f"{zone}: no clearing in intervals {document['from']} to {document['to']}")
            return
        table = Table("interval", "price", "volume", "status", "delivered", title=zone, title_justify="left")
        for record in document["prices"]:
            table.add_row(
                str(record["interval"]),
                "-" if record["price"] is None else str(record["price"]),
                output.fmt_amount(record["volume"]),
                record["status"],
                output.fmt_amount(record["delivered"]) if record["status"] == "settled" else "-",
            )
        output.stdout.print(table)

    output.emit(document, human)


@app.command("order")
def order(
    order_id: Annotated[str, typer.Argument(help="The order id (64 hex characters).", metavar="ORDER")],
    json_out: JsonOpt = False,
) -> None:
    """Show one order: status, fill, delivery, payments, and its book's clearing.

    Example:  autarky market order 3f2a…c9 --json
    """
    output.set_json_mode(json_out)
    raw = parse_hex32(order_id, "an order id")

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.market_order(raw)

    document = run(fetch())

    def human() -> None:
        out = output.stdout
        out.print(
            f"[bold]{document['side']}[/] {document['id']}  {document['status']}\n"
            f"  {document['quantity']} at {document['limit_price']} in {document['zone']}, "
            f"interval {document['interval']}, by {document['owner']}\n"
            f"  fill {document['fill']}, delivered {document['delivered']}, paid {document['paid']}, "
            f"penalty {document['penalty']}"
        )
        if document["clearing"] is not None:
            out.print("  " + _clearing_line(document["clearing"]))

    output.emit(document, human)
