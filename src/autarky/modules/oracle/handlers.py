"""One handler per oracle message, and the end of a block.

Each handler is a ladder of guard clauses in the order of precedence of ``errors.py`` (the parser
has already run the message-only checks), then the writes, then its events::

    create_feed:   feed_exists
    set_reporters: unknown_feed, not_owner
    report:        unknown_feed, not_reporter, round_closed, round_ahead, round_stale, already_reported

A round is finalized at the end of the block in which it reached its quorum
(:func:`end_block`), at the lower median of all its reports, including those that arrived after
the quorum in that same block: the reports of one block count the same, whatever their order in it.
Rounds open ``round_ms`` without a final value close as stale at the end of the first block whose
time reaches their deadline. Reward budgets (``rewards.py``) are paid and expired from here too.
"""

from __future__ import annotations

from autarky.ledger.block import Event
from autarky.ledger.router import BlockEnv, TxContext
from autarky.ledger.state import Overlay
from autarky.modules.oracle import keeper, rewards
from autarky.modules.oracle.errors import (
    ALREADY_REPORTED,
    FEED_EXISTS,
    NOT_OWNER,
    NOT_REPORTER,
    ROUND_AHEAD,
    ROUND_CLOSED,
    ROUND_STALE,
    UNKNOWN_FEED,
)
from autarky.modules.oracle.expected import EscrowKeeper
from autarky.modules.oracle.messages import CreateFeed, Report, SetReporters
from autarky.modules.oracle.params import Params
from autarky.modules.oracle.records import ABANDONED, OPEN, STALE, Feed, Round, lower_median


def create_feed(ctx: TxContext, msg: CreateFeed) -> None:
    """``oracle/create_feed``: the sender becomes the feed's owner; round 1 opens with its first report."""
    if keeper.read_feed(ctx.state, msg.feed) is not None:
        raise FEED_EXISTS(f"feed {msg.feed!r} exists")

    feed = Feed(
        name=msg.feed,
        owner=ctx.sender,
        reporters=msg.reporters,
        quorum=msg.quorum,
        heartbeat_ms=msg.heartbeat_ms,
        round_ms=msg.round_ms,
        decimals=msg.decimals,
        description=msg.description,
        created=ctx.height,
        round=1,
    )
    keeper.create_feed(ctx.state, feed)
    ctx.emit(
        "oracle.feed_created",
        feed=feed.name,
        owner=feed.owner,
        reporters=len(feed.reporters),
        quorum=feed.quorum,
        heartbeat_ms=feed.heartbeat_ms,
        round_ms=feed.round_ms,
        decimals=feed.decimals,
    )


def set_reporters(ctx: TxContext, params: Params, msg: SetReporters) -> None:
    """``oracle/set_reporters``: the owner replaces the reporters and the quorum.

    An open round is abandoned (its reports were made under the old set), so every round is decided
    by one set of reporters and one quorum; the next report opens the next round.
    """
    feed = _require_feed(ctx, msg.feed)
    if ctx.sender != feed.owner:
        raise NOT_OWNER(f"feed {feed.name!r} belongs to {feed.owner}")

    current = keeper.open_round(ctx.state, feed)
    if current is not None:
        keeper.close_unfinished(ctx.state, feed, current, ABANDONED, ctx.env.time_ms, params.history_rounds)
        ctx.events.append(_closed_event("oracle.round_abandoned", current))
        feed = _require_feed(ctx, msg.feed)
    changed = keeper.set_reporters(ctx.state, feed, msg.reporters, msg.quorum)
    ctx.emit(
        "oracle.reporters_set",
        feed=changed.name,
        reporters=len(changed.reporters),
        quorum=changed.quorum,
        round=changed.round,
    )


def report(ctx: TxContext, msg: Report) -> None:
    """``oracle/report``: a registered reporter's value for the feed's current round."""
    feed = _require_feed(ctx, msg.feed)
    if ctx.sender not in feed.reporters:
        raise NOT_REPORTER(f"{ctx.sender} is not a reporter of {feed.name!r}")
    if msg.round < feed.round:
        raise ROUND_CLOSED(f"round {msg.round} of {feed.name!r} is closed; the current round is {feed.round}")
    if msg.round > feed.round:
        raise ROUND_AHEAD(
            f"round {msg.round} of {feed.name!r} is not open; the current round is {feed.round}"
        )
    current = keeper.open_round(ctx.state, feed)
    now_ms = ctx.env.time_ms
    if current is not None and current.is_stale(now_ms):
        raise ROUND_STALE(
            f"round {current.round} of {feed.name!r} opened at {current.opened_ms} ms and went stale at "
            f"{current.deadline_ms} ms; report round {current.round + 1} from the next block"
        )
    if current is not None and current.has_reported(ctx.sender):
        raise ALREADY_REPORTED(f"{ctx.sender} has reported in round {current.round} of {feed.name!r}")

    if current is None:
        updated = keeper.open_new_round(ctx.state, feed, ctx.sender, msg.value, now_ms)
    else:
        updated = keeper.add_report(ctx.state, current, ctx.sender, msg.value)
    ctx.emit(
        "oracle.reported",
        feed=feed.name,
        round=updated.round,
        reporter=ctx.sender,
        value=msg.value,
        reports=len(updated.reports),
        quorum=updated.quorum,
    )


def end_block(state: Overlay, env: BlockEnv, params: Params, escrow: EscrowKeeper | None) -> list[Event]:
    """In this order: close the reward budgets whose expiry has come; finalize the rounds that
    reached their quorum in this block (in feed order), paying their reporters from the feed's
    budget; close the rounds due to go stale (deadline at or before the block time; in deadline,
    then feed order)."""
    events: list[Event] = []
    if escrow is not None:
        events.extend(rewards.expire_budgets(state, escrow, env.time_ms))
    for feed_name, round_number in keeper.pending_rounds(state):
        feed, current = _feed_and_open_round(state, feed_name, round_number)
        assert len(current.reports) >= current.quorum, "a pending round has its quorum"
        value = lower_median(current.reporter_values())
        final = keeper.finalize(state, feed, current, env.time_ms, value, params.history_rounds)
        events.append(
            _event(
                "oracle.finalized",
                feed=feed.name,
                round=current.round,
                value=value,
                reports=len(current.reports),
                time_ms=env.time_ms,
            )
        )
        if escrow is not None:
            events.extend(rewards.pay_round(state, escrow, final))
    for feed_name, round_number in keeper.due_rounds(state, env.time_ms):
        feed, current = _feed_and_open_round(state, feed_name, round_number)
        # A round that reached its quorum was finalized above (its report came before its deadline).
        assert len(current.reports) < current.quorum
        keeper.close_unfinished(state, feed, current, STALE, env.time_ms, params.history_rounds)
        events.append(_closed_event("oracle.round_stale", current))
    return events


# ---------------------------------------------------------------------------------------------------
# Guards and helpers


def _require_feed(ctx: TxContext, name: str) -> Feed:
    feed = keeper.read_feed(ctx.state, name)
    if feed is None:
        raise UNKNOWN_FEED(f"no feed {name!r}")
    return feed


def _feed_and_open_round(state: Overlay, feed_name: str, round_number: int) -> tuple[Feed, Round]:
    feed = keeper.read_feed(state, feed_name)
    assert feed is not None and feed.round == round_number, (feed_name, round_number)
    current = keeper.read_round(state, feed_name, round_number)
    assert current is not None and current.status == OPEN, (feed_name, round_number)
    return feed, current


def _closed_event(event_type: str, closed: Round) -> Event:
    return _event(event_type, feed=closed.feed, round=closed.round, reports=len(closed.reports))


def _event(event_type: str, **attributes: str | int) -> Event:
    return Event(event_type, tuple(sorted(attributes.items())))
