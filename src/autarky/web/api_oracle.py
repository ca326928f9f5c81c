"""Oracle routes: feeds, their latest value with a fresh flag, and their rounds (module ``oracle``).

    GET /api/v1/oracle/feeds?prefix=&offset=&limit=&at_ms=    feeds in name order
    GET /api/v1/oracle/feeds/{feed}?at_ms=                      one feed: latest value, fresh, open round
    GET /api/v1/oracle/feeds/{feed}/rounds?from=&to=&at_ms=     stored rounds in a range, oldest first

Feed names contain ``/`` (``grid-price/zone-a``) and are taken as a path: ``/feeds/grid-price/zone-a``
and ``/feeds/grid-price/zone-a/rounds``. No feed name ends in ``/rounds`` (the module refuses it),
so the two never meet. ``fresh`` and an open round's ``stale`` are judged at ``at_ms``, by default
the last block's time. Writes (create, report, set reporters, fund, defund) are signed
transactions through ``POST /api/v1/tx``. Prove a value with
``/api/v1/proofs?key=oracle/latest/<feed>&key=oracle/feed/<feed>``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from autarky.ledger.state import StateReader
from autarky.ledger.tx import MAX_U64
from autarky.modules.oracle import keeper as oracle_keeper
from autarky.modules.oracle.records import Budget, Feed, FinalValue, Round, is_feed_name, is_fresh
from autarky.node.node import Node
from autarky.web.api import NodeDep
from autarky.web.errors import ERROR_RESPONSES, INVALID_REQUEST, NOT_FOUND, ApiError

router = APIRouter(prefix="/api/v1/oracle", tags=["oracle"], responses=ERROR_RESPONSES)

MAX_FEEDS_PER_PAGE = 500
MAX_ROUNDS_PER_PAGE = 100
DEFAULT_ROUNDS = 20

AtMs = Annotated[
    int | None,
    Query(ge=0, le=MAX_U64, description="judge freshness at this time (default: the last block's)"),
]
FeedPath = Annotated[str, Path(description="the feed name, slashes and all: grid-price/zone-a")]


@router.get("/feeds", summary="Oracle feeds, in name order")
async def feeds(
    node: NodeDep,
    prefix: Annotated[str, Query(max_length=128, description="only feeds whose name starts with this")] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_FEEDS_PER_PAGE)] = 100,
    at_ms: AtMs = None,
) -> dict[str, Any]:
    """`feeds`: each feed as in `/feeds/{feed}`; `more` is true when further feeds follow."""
    now_ms = _time(node, at_ms)
    state = node.state
    found: list[dict[str, Any]] = []
    more = False
    for index, feed in enumerate(oracle_keeper.iter_feeds(state, prefix)):
        if index < offset:
            continue
        if len(found) == limit:
            more = True
            break
        found.append(feed_json(state, feed, now_ms))
    return {"feeds": found, "offset": offset, "more": more, "time_ms": now_ms}


@router.get("/feeds/{feed:path}/rounds", summary="Rounds of a feed")
async def rounds(
    node: NodeDep,
    feed: FeedPath,
    first: Annotated[int | None, Query(alias="from", ge=1, le=MAX_U64, description="first round")] = None,
    last: Annotated[int | None, Query(alias="to", ge=1, le=MAX_U64, description="last round")] = None,
    at_ms: AtMs = None,
) -> dict[str, Any]:
    """The rounds `from`..`to` still in state (a feed keeps its last `history_rounds` closed rounds and
    its open round), oldest first. Defaults: `to` the current round, `from` 19 rounds before it. At
    most 100 rounds per request."""
    now_ms = _time(node, at_ms)
    state = node.state
    record = _feed(state, feed)
    last = record.round if last is None else last
    first = max(1, last - DEFAULT_ROUNDS + 1) if first is None else first
    if first > last:
        raise ApiError(400, INVALID_REQUEST, f"from ({first}) is after to ({last})")
    if last - first >= MAX_ROUNDS_PER_PAGE:
        raise ApiError(400, INVALID_REQUEST, f"ask at most {MAX_ROUNDS_PER_PAGE} rounds at once")
    found = []
    for stored in oracle_keeper.iter_rounds(state, record.name, first):
        if stored.round > last:
            break
        found.append(round_json(stored, record.decimals, now_ms))
    return {"feed": record.name, "from": first, "to": last, "rounds": found, "time_ms": now_ms}


@router.get("/feeds/{feed:path}", summary="A feed: its latest value, whether it is fresh, its open round")
async def feed(node: NodeDep, feed: FeedPath, at_ms: AtMs = None) -> dict[str, Any]:
    """The feed's configuration; `round` (the current round: the one to report); `latest` (value,
    round, `time_ms` of finalization, `age_ms`, `display` with the decimals applied) or null;
    `fresh` (age below `heartbeat_ms` at `time_ms`); `open_round` or null; `budget` or null."""
    now_ms = _time(node, at_ms)
    return feed_json(node.state, _feed(node.state, feed), now_ms)


# -- JSON ----------------------------------------------------------------------------------------


def feed_json(state: StateReader, feed: Feed, now_ms: int) -> dict[str, Any]:
    latest = oracle_keeper.read_latest(state, feed.name)
    current = oracle_keeper.read_round(state, feed.name, feed.round)
    budget = oracle_keeper.read_budget(state, feed.name)
    return {
        "feed": feed.name,
        "owner": feed.owner,
        "reporters": list(feed.reporters),
        "quorum": feed.quorum,
        "heartbeat_ms": feed.heartbeat_ms,
        "round_ms": feed.round_ms,
        "decimals": feed.decimals,
        "description": feed.description,
        "created": feed.created,
        "round": feed.round,
        "latest": None if latest is None else latest_json(latest, feed.decimals, now_ms),
        "fresh": latest is not None and is_fresh(latest, feed.heartbeat_ms, now_ms),
        "open_round": None if current is None else round_json(current, feed.decimals, now_ms),
        "budget": None if budget is None else budget_json(budget),
        "time_ms": now_ms,
    }


def latest_json(latest: FinalValue, decimals: int, now_ms: int) -> dict[str, Any]:
    return {
        "value": latest.value,
        "display": display(latest.value, decimals),
        "round": latest.round,
        "time_ms": latest.time_ms,
        "age_ms": now_ms - latest.time_ms,
    }


def round_json(record: Round, decimals: int, now_ms: int) -> dict[str, Any]:
    return {
        "round": record.round,
        "status": record.status,
        "stale": record.is_stale(now_ms),
        "quorum": record.quorum,
        "opened_ms": record.opened_ms,
        "deadline_ms": record.deadline_ms,
        "closed_ms": record.closed_ms,
        "reports": [{"reporter": reporter, "value": value} for reporter, value in record.reports],
        "value": record.value,
        "display": None if record.value is None else display(record.value, decimals),
    }


def budget_json(budget: Budget) -> dict[str, Any]:
    return {
        "lock": budget.lock.hex(),
        "payer": budget.payer,
        "asset": budget.asset,
        "reward": budget.reward,
        "remaining": budget.remaining,
        "expires_ms": budget.expires_ms,
        "paid_rounds": budget.paid_rounds,
    }


def display(value: int, decimals: int) -> str:
    """``2150`` with 4 decimals is ``"0.2150"``; integers only, no rounding."""
    if decimals == 0:
        return str(value)
    digits = str(abs(value)).rjust(decimals + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


# -- helpers -------------------------------------------------------------------------------------


def _time(node: Node, at_ms: int | None) -> int:
    return node.header.time_ms if at_ms is None else at_ms


def _feed(state: StateReader, name: str) -> Feed:
    if not is_feed_name(name):
        raise ApiError(400, INVALID_REQUEST, f"{name[:140]!r} is not a feed name (e.g. grid-price/zone-a)")
    record = oracle_keeper.read_feed(state, name)
    if record is None:
        raise ApiError(404, NOT_FOUND, f"no feed {name}")
    return record
