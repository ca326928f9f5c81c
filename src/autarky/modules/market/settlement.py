"""Settlement of one cleared book against metered delivery: pure integer arithmetic, no state.

Inputs: the clearing price, the filled bids ``(id, fill)`` in bid ranking and the filled asks
``(id, fill, delivered, penalty_per_unit)`` in ask ranking, where ``delivered <= fill`` is what the
seller's meters credited to that ask. Outputs: what each order delivered, pays, receives and gets
back, and the list of escrow transfers that carry it out. README.md, "Settlement", is the spec:

* the delivered total ``D`` is shared among the buyers **pro rata to their fills**, rounded with
  the **largest remainder** method (:func:`largest_remainder`): each buyer pays ``price * share``
  from its escrow, the rest of its escrow returns;
* each seller receives ``price * delivered``; buyers' payments go to sellers by walking both
  rankings (:func:`transport`), so money moves in at most ``buyers + sellers`` transfers;
* each undelivered unit of an ask costs its ``penalty_per_unit`` from the ask's collateral; the
  penalties form one pool shared among the buyers pro rata to their **undelivered** units (fill
  minus share), largest remainder again; the rest of the collateral returns to the seller.

Value is conserved exactly: what buyers pay equals what sellers receive, and what sellers forfeit
equals what buyers receive as penalties (both are checked by assertions and property tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BidOutcome:
    id: bytes
    fill: int
    delivered: int
    """The buyer's share of the delivered total."""
    paid: int
    """``price * delivered``, paid from its escrow to sellers."""
    refund: int
    """``price * (fill - delivered)``: what returns from its escrow."""
    penalty_received: int


@dataclass(frozen=True, slots=True)
class AskOutcome:
    id: bytes
    fill: int
    delivered: int
    received: int
    """``price * delivered``, paid by buyers."""
    penalty: int
    """``(fill - delivered) * penalty_per_unit``, taken from its collateral to buyers."""
    collateral_refund: int
    """``delivered * penalty_per_unit``: what returns of its collateral."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """``amount`` from the escrow of order ``source`` to the owner of order ``target``."""

    source: bytes
    target: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class Settlement:
    bids: tuple[BidOutcome, ...]
    asks: tuple[AskOutcome, ...]
    payments: tuple[Transfer, ...]
    """Buyers' escrow to sellers."""
    penalties: tuple[Transfer, ...]
    """Sellers' collateral to buyers."""

    @property
    def delivered(self) -> int:
        return sum(ask.delivered for ask in self.asks)

    @property
    def penalty(self) -> int:
        return sum(ask.penalty for ask in self.asks)


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` pro rata to ``weights`` in integers that sum to ``total``.

    Each part is ``total * w // W`` (``W`` the sum of weights); the units left over go one each to
    the parts with the largest remainders ``total * w % W``, ties to the earlier part. Needs
    ``W > 0`` unless ``total == 0``.
    """
    weight_sum = sum(weights)
    assert all(weight >= 0 for weight in weights) and total >= 0
    if total == 0:
        return [0] * len(weights)
    assert weight_sum > 0, "nothing to share a positive total among"
    parts = [total * weight // weight_sum for weight in weights]
    left = total - sum(parts)
    by_remainder = sorted(
        range(len(weights)), key=lambda index: (-(total * weights[index] % weight_sum), index)
    )
    for index in by_remainder[:left]:
        parts[index] += 1
    assert sum(parts) == total
    return parts


def transport(
    sources: Sequence[tuple[bytes, int]], targets: Sequence[tuple[bytes, int]]
) -> tuple[Transfer, ...]:
    """Move the sources' amounts to the targets' amounts (equal sums) by walking both lists in order.

    The "north-west corner" rule: the first source pays the first target until one of them is done,
    and so on. Zero amounts are skipped; every transfer is positive.
    """
    assert sum(amount for _, amount in sources) == sum(amount for _, amount in targets)
    transfers: list[Transfer] = []
    target_index = 0
    target_left = targets[0][1] if targets else 0
    for source_id, amount in sources:
        while amount > 0:
            while target_left == 0:
                target_index += 1
                target_left = targets[target_index][1]
            moved = min(amount, target_left)
            transfers.append(Transfer(source_id, targets[target_index][0], moved))
            amount -= moved
            target_left -= moved
    return tuple(transfers)


def settle(
    price: int,
    bids: Sequence[tuple[bytes, int]],
    asks: Sequence[tuple[bytes, int, int, int]],
) -> Settlement:
    """Settle a cleared book (module docstring). ``bids``: ``(id, fill)`` in bid ranking; ``asks``:
    ``(id, fill, delivered, penalty_per_unit)`` in ask ranking; fills on both sides sum equal."""
    assert price >= 0
    volume = sum(fill for _, fill in bids)
    assert volume == sum(fill for _, fill, _, _ in asks) and volume > 0
    assert all(0 <= delivered <= fill and rate >= 0 for _, fill, delivered, rate in asks)
    delivered_total = sum(delivered for _, _, delivered, _ in asks)

    shares = largest_remainder(delivered_total, [fill for _, fill in bids])
    short = [fill - share for (_, fill), share in zip(bids, shares, strict=True)]
    penalties = [(fill - delivered) * rate for _, fill, delivered, rate in asks]
    pool = sum(penalties)
    received = largest_remainder(pool, short)

    bid_outcomes = tuple(
        BidOutcome(order_id, fill, share, price * share, price * (fill - share), penalty)
        for (order_id, fill), share, penalty in zip(bids, shares, received, strict=True)
    )
    ask_outcomes = tuple(
        AskOutcome(order_id, fill, delivered, price * delivered, penalty, delivered * rate)
        for (order_id, fill, delivered, rate), penalty in zip(asks, penalties, strict=True)
    )
    payments = transport(
        [(bid.id, bid.paid) for bid in bid_outcomes], [(ask.id, ask.received) for ask in ask_outcomes]
    )
    penalty_transfers = transport(
        [(ask.id, ask.penalty) for ask in ask_outcomes],
        [(bid.id, bid.penalty_received) for bid in bid_outcomes],
    )
    return Settlement(bid_outcomes, ask_outcomes, payments, penalty_transfers)
