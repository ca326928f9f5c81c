"""What must hold in the oracle state after every block. Run by tests; each broken rule is one line.

1. Every feed, round and latest-value record is well formed (the strict ``from_cbor``) and stored
   under its own key; a feed has at most ``max_reporters`` reporters.
2. Rounds: each belongs to an existing feed; the feed's current round is the only one that may be
   open, and every earlier stored round is closed. An open round holds fewer reports than its quorum
   (a round that reaches it is final by the end of its block); a final round holds at least its
   quorum and its value is the lower median of its reports (so within their min and max), closed
   before its deadline; a stale round holds fewer reports than its quorum, closed at or after its
   deadline. A round never has more reports than ``max_reporters``.
3. History: a feed's stored rounds are exactly the last ``history_rounds`` closed ones and its open
   round, numbered without gaps.
4. The latest value of a feed belongs to an earlier round than the current one; when that round is
   still stored it is final with the same value and time, and no later stored round is final; a
   feed without a latest value has no final round.
5. The due index holds exactly one entry per open round, at its deadline; the pending index is
   empty between blocks.
6. Every reward budget is well formed, belongs to an existing feed, has exactly one entry in the
   budget due index (at its expiry) and none other exists; with the escrow wired, its lock is open,
   held by ``oracle``, paid by the budget's payer in its asset, and holds exactly ``remaining``.
   (That no ``oracle`` lock lacks a budget is checked by the property tests, which see all locks.)

The checks report what they find rather than assert, so a corrupted state gives a readable list.
"""

from __future__ import annotations

from autarky.ledger.state import StateReader
from autarky.modules.oracle import keeper
from autarky.modules.oracle.expected import EscrowKeeper
from autarky.modules.oracle.params import Params
from autarky.modules.oracle.records import FINAL, OPEN, STALE, Budget, Feed, FinalValue, Round, lower_median


def check_invariants(state: StateReader, escrow: EscrowKeeper | None = None) -> list[str]:
    problems: list[str] = []
    params = keeper.read_params(state)
    feeds = _feeds(state, params, problems)
    rounds = _rounds(state, feeds, params, problems)
    for feed in feeds.values():
        problems.extend(_history_problems(feed, rounds.get(feed.name, {}), params))
    problems.extend(_latest_problems(state, feeds, rounds))
    problems.extend(_index_problems(state, rounds))
    problems.extend(_budget_problems(state, feeds, escrow))
    return problems


def _feeds(state: StateReader, params: Params, problems: list[str]) -> dict[str, Feed]:
    feeds: dict[str, Feed] = {}
    for name, raw in keeper.iter_raw(state, keeper.FEED_PREFIX):
        try:
            feed = Feed.from_cbor(raw)
        except ValueError as exc:
            problems.append(f"feed {name}: malformed record: {exc}")
            continue
        if feed.name != name:
            problems.append(f"feed {name}: the record names feed {feed.name}")
            continue
        if len(feed.reporters) > params.max_reporters:
            problems.append(f"feed {name}: {len(feed.reporters)} reporters, at most {params.max_reporters}")
        feeds[name] = feed
    return feeds


def _rounds(
    state: StateReader, feeds: dict[str, Feed], params: Params, problems: list[str]
) -> dict[str, dict[int, Round]]:
    rounds: dict[str, dict[int, Round]] = {}
    for rest, raw in keeper.iter_raw(state, keeper.ROUND_PREFIX):
        name = f"round {rest}"
        try:
            record = Round.from_cbor(raw)
        except ValueError as exc:
            problems.append(f"{name}: malformed record: {exc}")
            continue
        if keeper.round_key(record.feed, record.round) != keeper.ROUND_PREFIX + rest:
            problems.append(f"{name}: the record is round {record.round} of {record.feed}")
            continue
        feed = feeds.get(record.feed)
        if feed is None:
            problems.append(f"{name}: its feed does not exist")
            continue
        rounds.setdefault(feed.name, {})[record.round] = record
        problems.extend(f"{name}: {problem}" for problem in _round_problems(record, feed, params))
    return rounds


def _round_problems(record: Round, feed: Feed, params: Params) -> list[str]:
    problems: list[str] = []
    count = len(record.reports)
    if record.round > feed.round:
        problems.append(f"after the feed's current round {feed.round}")
    if (record.status == OPEN) != (record.round == feed.round):
        problems.append(f"{record.status}, the feed's current round is {feed.round}")
    if count > params.max_reporters:
        problems.append(f"{count} reports, at most {params.max_reporters}")
    if record.status == OPEN and count >= record.quorum:
        problems.append(f"open with {count} reports, its quorum is {record.quorum}")
    if record.status == FINAL:
        assert record.closed_ms is not None
        if count < record.quorum:
            problems.append(f"final with {count} reports, below its quorum {record.quorum}")
        if record.value != lower_median(record.reporter_values()):
            problems.append(f"final at {record.value}, the lower median of its reports is different")
        if not record.opened_ms <= record.closed_ms < record.deadline_ms:
            problems.append(
                f"final at {record.closed_ms} ms, outside [{record.opened_ms}, {record.deadline_ms})"
            )
    if record.status == STALE:
        assert record.closed_ms is not None
        if count >= record.quorum:
            problems.append(f"stale with {count} reports, its quorum is {record.quorum}")
        if record.closed_ms < record.deadline_ms:
            problems.append(f"stale at {record.closed_ms} ms, before its deadline {record.deadline_ms}")
    if record.closed_ms is not None and record.closed_ms < record.opened_ms:
        problems.append(f"closed at {record.closed_ms} ms, before it opened at {record.opened_ms}")
    return problems


def _history_problems(feed: Feed, stored: dict[int, Round], params: Params) -> list[str]:
    expected = set(range(max(1, feed.round - params.history_rounds), feed.round))
    if feed.round in stored:
        expected.add(feed.round)
    if set(stored) == expected:
        return []
    missing = sorted(expected - set(stored))[:5]
    extra = sorted(set(stored) - expected)[:5]
    return [f"feed {feed.name}: stored rounds do not match its history (missing {missing}, extra {extra})"]


def _latest_problems(
    state: StateReader, feeds: dict[str, Feed], rounds: dict[str, dict[int, Round]]
) -> list[str]:
    problems: list[str] = []
    latest: dict[str, FinalValue] = {}
    for name, raw in keeper.iter_raw(state, keeper.LATEST_PREFIX):
        try:
            value = FinalValue.from_cbor(raw)
        except ValueError as exc:
            problems.append(f"latest {name}: malformed record: {exc}")
            continue
        if value.feed != name or name not in feeds:
            problems.append(f"latest {name}: names feed {value.feed}, or its feed does not exist")
            continue
        latest[name] = value
    for name, feed in feeds.items():
        finals = [number for number, record in rounds.get(name, {}).items() if record.status == FINAL]
        final = latest.get(name)
        if final is None:
            if finals:
                problems.append(f"latest {name}: missing, rounds {sorted(finals)[:5]} are final")
            continue
        if final.round >= feed.round:
            problems.append(f"latest {name}: round {final.round}, the current round is {feed.round}")
        record = rounds.get(name, {}).get(final.round)
        if record is not None and (record.status, record.value, record.closed_ms) != (
            FINAL,
            final.value,
            final.time_ms,
        ):
            problems.append(
                f"latest {name}: round {final.round} is not final at {final.value}, {final.time_ms} ms"
            )
        if any(number > final.round for number in finals):
            problems.append(f"latest {name}: round {final.round}, a later round is final")
    return problems


def _index_problems(state: StateReader, rounds: dict[str, dict[int, Round]]) -> list[str]:
    problems: list[str] = []
    expected = {
        keeper.due_key(record.deadline_ms, record.feed): record.round
        for by_number in rounds.values()
        for record in by_number.values()
        if record.status == OPEN
    }
    found = {keeper.DUE_PREFIX + rest: value for rest, value in keeper.iter_raw(state, keeper.DUE_PREFIX)}
    for key, value in found.items():
        if expected.get(key) != value:
            problems.append(f"due entry {key} ({value!r}) names no open round with that deadline")
    for key in expected:
        if key not in found:
            problems.append(f"due entry {key} is missing")
    for rest, value in keeper.iter_raw(state, keeper.PENDING_PREFIX):
        problems.append(f"pending entry {rest} ({value!r}) left after the end of a block")
    return problems


def _budget_problems(state: StateReader, feeds: dict[str, Feed], escrow: EscrowKeeper | None) -> list[str]:
    problems: list[str] = []
    expected_due: set[str] = set()
    for name, raw in keeper.iter_raw(state, keeper.BUDGET_PREFIX):
        try:
            budget = Budget.from_cbor(raw)
        except ValueError as exc:
            problems.append(f"budget {name}: malformed record: {exc}")
            continue
        if budget.feed != name or name not in feeds:
            problems.append(f"budget {name}: names feed {budget.feed}, or its feed does not exist")
        expected_due.add(keeper.budget_due_key(budget.expires_ms, budget.feed))
        if escrow is None:
            continue
        lock = escrow.get(state, budget.lock)
        if lock is None:
            problems.append(f"budget {name}: its escrow lock {budget.lock.hex()} is closed")
        elif (lock.holder, lock.payer, lock.asset, lock.amount) != (
            "oracle",
            budget.payer,
            budget.asset,
            budget.remaining,
        ):
            problems.append(
                f"budget {name}: lock {budget.lock.hex()} is held by {lock.holder}, paid by {lock.payer}, "
                f"holds {lock.amount} {lock.asset}; the budget expects oracle, {budget.payer}, "
                f"{budget.remaining} {budget.asset}"
            )
    found = {keeper.BUDGET_DUE_PREFIX + rest for rest, _ in keeper.iter_raw(state, keeper.BUDGET_DUE_PREFIX)}
    for key in sorted(found - expected_due):
        problems.append(f"budget due entry {key} names no budget with that expiry")
    for key in sorted(expected_due - found):
        problems.append(f"budget due entry {key} is missing")
    return problems
