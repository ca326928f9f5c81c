"""Reward budgets: reporters paid per final round, through the shared escrow (optional per feed).

``oracle/fund`` locks ``amount`` of ``asset`` from the sender in escrow (holder ``oracle``) as the
feed's budget, paying ``reward`` to each reporter of every round that becomes final. The budget
closes, and whatever is left goes back to its payer, when

* a final round cannot be paid in full (``remaining < reward * reports``): that round is not paid,
  the rest is refunded (``spent``); a budget that pays out exactly to 0 closes too;
* its ``expires_ms`` comes: at the end of the first block whose time reaches it, before the
  escrow's own backstop (``expired``);
* its payer sends ``oracle/defund`` (``withdrawn``).

The oracle never moves money itself: every unit goes through ``EscrowKeeper.lock``, ``release`` and
``refund``, and a lock held by ``oracle`` exists exactly while its budget does, holding exactly the
budget's ``remaining``.
"""

from __future__ import annotations

from autarky.ledger.block import Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay
from autarky.modules.oracle import keeper
from autarky.modules.oracle.errors import BUDGET_EXISTS, NO_BUDGET, NOT_FUNDER, UNKNOWN_FEED
from autarky.modules.oracle.expected import EscrowKeeper
from autarky.modules.oracle.messages import Defund, Fund
from autarky.modules.oracle.records import Budget, Round

HOLDER = "oracle"
"""The escrow holder of every budget lock: only this module releases or refunds them."""
SPENT = "spent"
EXPIRED = "expired"
WITHDRAWN = "withdrawn"


def fund(ctx: TxContext, escrow: EscrowKeeper, msg: Fund) -> None:
    """``oracle/fund``: lock a reward budget for the feed (unknown_feed, budget_exists, then escrow's)."""
    if keeper.read_feed(ctx.state, msg.feed) is None:
        raise UNKNOWN_FEED(f"no feed {msg.feed!r}")
    if keeper.read_budget(ctx.state, msg.feed) is not None:
        raise BUDGET_EXISTS(f"feed {msg.feed!r} has a budget; withdraw it (oracle/defund) to fund anew")
    lock_id = escrow.lock(
        ctx,
        asset=msg.asset,
        amount=msg.amount,
        holder=HOLDER,
        expires_ms=msg.expires_ms,
        purpose=f"oracle rewards {msg.feed}"[:64],
    )
    budget = Budget(
        feed=msg.feed,
        lock=lock_id,
        payer=ctx.sender,
        asset=msg.asset,
        reward=msg.reward,
        remaining=msg.amount,
        expires_ms=msg.expires_ms,
        paid_rounds=0,
    )
    keeper.create_budget(ctx.state, budget)
    ctx.emit(
        "oracle.funded",
        feed=msg.feed,
        payer=ctx.sender,
        asset=msg.asset,
        amount=msg.amount,
        reward=msg.reward,
        lock=lock_id,
        expires_ms=msg.expires_ms,
    )


def defund(ctx: TxContext, escrow: EscrowKeeper, msg: Defund) -> None:
    """``oracle/defund``: the budget's payer takes back what remains (unknown_feed, no_budget, not_funder)."""
    if keeper.read_feed(ctx.state, msg.feed) is None:
        raise UNKNOWN_FEED(f"no feed {msg.feed!r}")
    budget = keeper.read_budget(ctx.state, msg.feed)
    if budget is None:
        raise NO_BUDGET(f"feed {msg.feed!r} has no budget")
    if ctx.sender != budget.payer:
        raise NOT_FUNDER(f"the budget of {msg.feed!r} was funded by {budget.payer}")
    ctx.events.extend(close(ctx.state, escrow, budget, WITHDRAWN))


def pay_round(state: Overlay, escrow: EscrowKeeper, final: Round) -> list[Event]:
    """Pay ``reward`` to every reporter of a round that just became final, if its budget can pay
    them all; otherwise close the budget (``spent``) and pay nobody."""
    budget = keeper.read_budget(state, final.feed)
    if budget is None:
        return []
    reporters = [reporter for reporter, _ in final.reports]
    total = budget.reward * len(reporters)
    if total > budget.remaining:
        return close(state, escrow, budget, SPENT)
    events: list[Event] = []
    for reporter in reporters:  # sorted by DID: the order of the escrow events
        events.extend(escrow.release(state, budget.lock, reporter, budget.reward, holder=HOLDER))
    events.append(
        _event(
            "oracle.rewarded",
            feed=final.feed,
            round=final.round,
            asset=budget.asset,
            reward=budget.reward,
            reporters=len(reporters),
        )
    )
    if total == budget.remaining:  # the escrow closed the emptied lock
        keeper.delete_budget(state, budget)
        events.append(_closed_event(budget, SPENT, refunded=0, paid_rounds=budget.paid_rounds + 1))
    else:
        keeper.record_payment(state, budget, total)
    return events


def expire_budgets(state: Overlay, escrow: EscrowKeeper, now_ms: int) -> list[Event]:
    """Close every budget whose expiry has come (in expiry, then feed order)."""
    events: list[Event] = []
    for feed in keeper.due_budgets(state, now_ms):
        budget = keeper.read_budget(state, feed)
        assert budget is not None, f"the budget due index names feed {feed!r}, which has no budget"
        events.extend(close(state, escrow, budget, EXPIRED))
    return events


def close(state: Overlay, escrow: EscrowKeeper, budget: Budget, reason: str) -> list[Event]:
    """Refund what remains of the budget to its payer and forget it."""
    events = escrow.refund(state, budget.lock, budget.remaining, holder=HOLDER)
    keeper.delete_budget(state, budget)
    events.append(_closed_event(budget, reason, refunded=budget.remaining, paid_rounds=budget.paid_rounds))
    return events


def _closed_event(budget: Budget, reason: str, *, refunded: int, paid_rounds: int) -> Event:
    return _event(
        "oracle.budget_closed",
        feed=budget.feed,
        lock=budget.lock,
        payer=budget.payer,
        reason=reason,
        refunded=refunded,
        paid_rounds=paid_rounds,
    )


def _event(event_type: str, **attributes: str | int | bytes) -> Event:
    return Event(event_type, tuple(sorted(attributes.items())))
