"""The oracle module's state: the only functions that read or write keys under ``oracle/``.

State keys (values are canonical CBOR)::

    oracle/params                                   the parameters (only if genesis set them)
    oracle/feed/<feed>                              records.Feed: configuration, current round
    oracle/latest/<feed>                            records.FinalValue: the latest final value
    oracle/round/<feed>:<round, 20 digits>          records.Round: one round's reports and outcome
    oracle/due/<deadline ms, 16 digits>/<feed>      the open round's number, due to go stale then
    oracle/pending/<feed>                           the open round's number, once it has its quorum
    oracle/budget/<feed>                            records.Budget: the feed's reward budget
    oracle/budget_due/<expires ms, 16 digits>/<feed>   the budget's expiry (null value)

A feed name never contains ``:``, so ``oracle/round/<feed>:`` lists exactly one feed's rounds, in
round order (the number is zero-padded). ``end_block`` reads ``oracle/pending/`` (only rounds that
reached their quorum in this block: it is empty after every block) and ``oracle/due/`` up to the
block time (stopping at the first later key), so its work is proportional to what is due; the
same for ``oracle/budget_due/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from autarky.encoding import decode_trusted
from autarky.ledger.state import Overlay, StateReader, get_obj
from autarky.modules.oracle.params import DEFAULT_PARAMS, Params, params_from_cbor
from autarky.modules.oracle.records import ABANDONED, FINAL, OPEN, STALE, Budget, Feed, FinalValue, Round

PARAMS_KEY = "oracle/params"
FEED_PREFIX = "oracle/feed/"
LATEST_PREFIX = "oracle/latest/"
ROUND_PREFIX = "oracle/round/"
DUE_PREFIX = "oracle/due/"
PENDING_PREFIX = "oracle/pending/"
BUDGET_PREFIX = "oracle/budget/"
BUDGET_DUE_PREFIX = "oracle/budget_due/"

ROUND_DIGITS = 20
"""Enough for 2**64-1."""
DUE_DIGITS = 16
"""Block times below 10**16 ms (about 317,000 years)."""


def feed_key(feed: str) -> str:
    return FEED_PREFIX + feed


def latest_key(feed: str) -> str:
    return LATEST_PREFIX + feed


def rounds_prefix(feed: str) -> str:
    return f"{ROUND_PREFIX}{feed}:"


def round_key(feed: str, round_number: int) -> str:
    return f"{rounds_prefix(feed)}{round_number:0{ROUND_DIGITS}d}"


def due_key(deadline_ms: int, feed: str) -> str:
    assert 0 <= deadline_ms < 10**DUE_DIGITS, deadline_ms
    return f"{DUE_PREFIX}{deadline_ms:0{DUE_DIGITS}d}/{feed}"


def pending_key(feed: str) -> str:
    return PENDING_PREFIX + feed


def budget_key(feed: str) -> str:
    return BUDGET_PREFIX + feed


def budget_due_key(expires_ms: int, feed: str) -> str:
    assert 0 <= expires_ms < 10**DUE_DIGITS, expires_ms
    return f"{BUDGET_DUE_PREFIX}{expires_ms:0{DUE_DIGITS}d}/{feed}"


# ---------------------------------------------------------------------------------------------------
# Reads


def read_params(state: StateReader) -> Params:
    stored = get_obj(state, PARAMS_KEY)
    return DEFAULT_PARAMS if stored is None else params_from_cbor(stored)


def read_feed(state: StateReader, feed: str) -> Feed | None:
    value = get_obj(state, feed_key(feed))
    return None if value is None else Feed.from_cbor(value)


def read_latest(state: StateReader, feed: str) -> FinalValue | None:
    value = get_obj(state, latest_key(feed))
    return None if value is None else FinalValue.from_cbor(value)


def read_round(state: StateReader, feed: str, round_number: int) -> Round | None:
    value = get_obj(state, round_key(feed, round_number))
    return None if value is None else Round.from_cbor(value)


def open_round(state: StateReader, feed: Feed) -> Round | None:
    """The feed's open round, or None when its current round has no report yet."""
    current = read_round(state, feed.name, feed.round)
    assert current is None or current.status == OPEN, f"{feed.name} round {feed.round} is {current.status}"
    return current


def iter_feeds(state: StateReader, prefix: str = "") -> Iterator[Feed]:
    """Every feed whose name starts with ``prefix``, in name order."""
    for _, raw in state.iter_prefix(FEED_PREFIX + prefix):
        yield Feed.from_cbor(decode_trusted(raw))


def iter_rounds(state: StateReader, feed: str, first: int = 1) -> Iterator[Round]:
    """The feed's stored rounds from number ``first`` on, in round order."""
    start = round_key(feed, first)
    for key, raw in state.iter_prefix(rounds_prefix(feed)):
        if key >= start:
            yield Round.from_cbor(decode_trusted(raw))


def due_rounds(state: StateReader, now_ms: int) -> list[tuple[str, int]]:
    """``(feed, round)`` of every open round whose deadline is at or before ``now_ms``, in deadline
    then feed order. Reads only the due entries and the first later one."""
    return [(feed, value) for feed, value in _due(state, DUE_PREFIX, now_ms)]


def due_budgets(state: StateReader, now_ms: int) -> list[str]:
    """The feeds whose budget expires at or before ``now_ms``, in expiry then feed order."""
    return [feed for feed, _ in _due(state, BUDGET_DUE_PREFIX, now_ms)]


def _due(state: StateReader, prefix: str, now_ms: int) -> list[tuple[str, Any]]:
    due: list[tuple[str, Any]] = []
    for key, raw in state.iter_prefix(prefix):
        rest = key[len(prefix) :]
        if int(rest[:DUE_DIGITS]) > now_ms:
            break
        due.append((rest[DUE_DIGITS + 1 :], decode_trusted(raw)))
    return due


def read_budget(state: StateReader, feed: str) -> Budget | None:
    value = get_obj(state, budget_key(feed))
    return None if value is None else Budget.from_cbor(value)


def iter_budgets(state: StateReader) -> Iterator[Budget]:
    for _, raw in state.iter_prefix(BUDGET_PREFIX):
        yield Budget.from_cbor(decode_trusted(raw))


def pending_rounds(state: StateReader) -> list[tuple[str, int]]:
    """``(feed, round)`` of every open round that reached its quorum in this block, in feed order."""
    return [
        (key[len(PENDING_PREFIX) :], decode_trusted(raw)) for key, raw in state.iter_prefix(PENDING_PREFIX)
    ]


def iter_raw(state: StateReader, prefix: str) -> Iterator[tuple[str, object]]:
    """(the key after ``prefix``, stored value) under one prefix, undecoded beyond CBOR (invariants)."""
    for key, raw in state.iter_prefix(prefix):
        yield key[len(prefix) :], decode_trusted(raw)


# ---------------------------------------------------------------------------------------------------
# Writes


def write_params(state: Overlay, params: Params) -> None:
    state.set_obj(PARAMS_KEY, params.to_cbor())


def create_feed(state: Overlay, feed: Feed) -> None:
    assert state.get(feed_key(feed.name)) is None, f"feed {feed.name} exists"
    assert feed.round == 1
    state.set_obj(feed_key(feed.name), feed.to_cbor())


def set_reporters(state: Overlay, feed: Feed, reporters: tuple[str, ...], quorum: int) -> Feed:
    """New reporters and quorum. The caller has closed the open round first, if there was one."""
    assert state.get(round_key(feed.name, feed.round)) is None, "the open round must be closed first"
    changed = replace(feed, reporters=reporters, quorum=quorum)
    state.set_obj(feed_key(feed.name), changed.to_cbor())
    return changed


def open_new_round(state: Overlay, feed: Feed, reporter: str, value: int, now_ms: int) -> Round:
    """Open the feed's current round with its first report; it is due to go stale at now + round_ms."""
    assert state.get(round_key(feed.name, feed.round)) is None
    opened = Round(
        feed=feed.name,
        round=feed.round,
        status=OPEN,
        quorum=feed.quorum,
        opened_ms=now_ms,
        deadline_ms=now_ms + feed.round_ms,
        closed_ms=None,
        reports=((reporter, value),),
        value=None,
    )
    state.set_obj(round_key(feed.name, feed.round), opened.to_cbor())
    state.set_obj(due_key(opened.deadline_ms, feed.name), feed.round)
    _mark_if_quorate(state, opened)
    return opened


def add_report(state: Overlay, current: Round, reporter: str, value: int) -> Round:
    """Add one report to an open round (the caller checked the reporter has not reported)."""
    assert current.status == OPEN and not current.has_reported(reporter)
    reports = tuple(sorted((*current.reports, (reporter, value))))
    updated = replace(current, reports=reports)
    state.set_obj(round_key(current.feed, current.round), updated.to_cbor())
    _mark_if_quorate(state, updated)
    return updated


def _mark_if_quorate(state: Overlay, current: Round) -> None:
    if len(current.reports) >= current.quorum:
        state.set_obj(pending_key(current.feed), current.round)


def finalize(
    state: Overlay, feed: Feed, current: Round, now_ms: int, value: int, history_rounds: int
) -> Round:
    """Close ``current`` as final at ``value``; it becomes the feed's latest final value."""
    final = _close(state, feed, current, FINAL, now_ms, value, history_rounds)
    state.set_obj(latest_key(feed.name), FinalValue(feed.name, value, current.round, now_ms).to_cbor())
    return final


def close_unfinished(
    state: Overlay, feed: Feed, current: Round, status: str, now_ms: int, history_rounds: int
) -> Round:
    """Close ``current`` without a value: ``stale`` (open too long) or ``abandoned`` (reporters changed)."""
    assert status in (STALE, ABANDONED)
    return _close(state, feed, current, status, now_ms, None, history_rounds)


def _close(
    state: Overlay,
    feed: Feed,
    current: Round,
    status: str,
    now_ms: int,
    value: int | None,
    history_rounds: int,
) -> Round:
    """Close the feed's open round, move the feed to the next round, and forget the round
    ``history_rounds`` before this one."""
    assert current.status == OPEN and current.feed == feed.name and current.round == feed.round
    closed = replace(current, status=status, closed_ms=now_ms, value=value)
    state.set_obj(round_key(feed.name, current.round), closed.to_cbor())
    state.delete(due_key(current.deadline_ms, feed.name))
    if state.get(pending_key(feed.name)) is not None:
        state.delete(pending_key(feed.name))
    state.set_obj(feed_key(feed.name), replace(feed, round=feed.round + 1).to_cbor())
    forgotten = current.round - history_rounds
    if forgotten >= 1:
        # Every round before the current one was opened and closed, and each close forgets a
        # different one, so the round to forget is there.
        assert state.get(round_key(feed.name, forgotten)) is not None, (feed.name, forgotten)
        state.delete(round_key(feed.name, forgotten))
    return closed


def create_budget(state: Overlay, budget: Budget) -> None:
    assert state.get(budget_key(budget.feed)) is None and budget.paid_rounds == 0
    state.set_obj(budget_key(budget.feed), budget.to_cbor())
    state.set_obj(budget_due_key(budget.expires_ms, budget.feed), None)


def record_payment(state: Overlay, budget: Budget, paid: int) -> Budget:
    """``paid`` left the budget's lock for one final round; the budget stays open with what remains."""
    assert 1 <= paid < budget.remaining, (paid, budget.remaining)
    updated = replace(budget, remaining=budget.remaining - paid, paid_rounds=budget.paid_rounds + 1)
    state.set_obj(budget_key(budget.feed), updated.to_cbor())
    return updated


def delete_budget(state: Overlay, budget: Budget) -> None:
    """Forget a budget whose lock the caller has emptied (released and refunded to 0)."""
    state.delete(budget_key(budget.feed))
    state.delete(budget_due_key(budget.expires_ms, budget.feed))
