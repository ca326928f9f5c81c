"""What must hold in the policy state after every block. Run by tests; each broken rule is one line.

1. Every grant record is well formed (``GrantRecord.from_cbor``), stored under its own id, and
   not given by an account to itself; a revocation height is not before the creation height.
2. A root grant (no parent) has depth 0 and is its own root grantor; every other grant's parent
   exists and the grant is a valid delegation of it (``check.link_problem``: linked, same action,
   resource covered, expiry, uses, spend and depth no wider than the parent's).
3. Uses and spend stay within the limits at every link: ``uses <= max_uses``; a grant with a spend
   limit has spent only assets the limit names, each at most its amount.
4. Uses and spend are counted at every link: a grant's uses are at least the sum of its direct
   delegations' uses, and the same for the amount spent of each asset.
5. The indexes (``by_grantee``, ``by_grantor``, ``child``) and the records agree both ways, and
   each index entry holds the grant's ``action:resource``.

The checks report what they find rather than assert, so a corrupted state gives a readable list.
"""

from __future__ import annotations

from autarky.ledger.state import StateReader
from autarky.modules.policy.check import GrantRecord, link_problem
from autarky.modules.policy.keeper import (
    BY_GRANTEE_PREFIX,
    BY_GRANTOR_PREFIX,
    CHILD_PREFIX,
    iter_index,
    iter_raw_grants,
)


def check_invariants(state: StateReader) -> list[str]:
    problems: list[str] = []
    records: dict[bytes, GrantRecord] = {}
    for id_hex, raw in iter_raw_grants(state):
        try:
            record = GrantRecord.from_cbor(raw)
        except ValueError as exc:
            problems.append(f"grant {id_hex}: malformed record: {exc}")
            continue
        if record.id.hex() != id_hex:
            problems.append(f"grant {id_hex}: the record holds id {record.id.hex()}")
            continue
        records[record.id] = record
    for record in records.values():
        problems.extend(_record_problems(record, records))
    problems.extend(_counting_problems(records))
    problems.extend(_index_problems(state, records))
    return problems


def _record_problems(record: GrantRecord, records: dict[bytes, GrantRecord]) -> list[str]:
    problems: list[str] = []
    name = f"grant {record.id.hex()}"
    if record.grantor == record.grantee:
        problems.append(f"{name}: {record.grantor} granted to itself")
    if record.revoked is not None and record.revoked < record.created:
        problems.append(f"{name}: revoked at {record.revoked}, before its creation at {record.created}")
    if record.parent is None:
        if record.depth != 0 or record.root_grantor != record.grantor:
            problems.append(f"{name}: a root grant with depth {record.depth} or another root grantor")
    else:
        parent = records.get(record.parent)
        if parent is None:
            problems.append(f"{name}: its parent {record.parent.hex()} does not exist")
        else:
            problem = link_problem(parent, record)
            if problem is not None:
                problems.append(f"{name}: not a valid delegation of {parent.id.hex()}: {problem}")
    if record.max_uses is not None and record.uses > record.max_uses:
        problems.append(f"{name}: {record.uses} uses of at most {record.max_uses}")
    if record.spend_limit is not None:
        limits = dict(record.spend_limit)
        for asset, amount in record.spent:
            if asset not in limits or amount > limits[asset]:
                problems.append(f"{name}: spent {amount} {asset}, its limit allows {limits.get(asset, 0)}")
    return problems


def _counting_problems(records: dict[bytes, GrantRecord]) -> list[str]:
    problems: list[str] = []
    child_uses: dict[bytes, int] = {}
    child_spent: dict[bytes, dict[str, int]] = {}
    for record in records.values():
        if record.parent is None or record.parent not in records:
            continue
        child_uses[record.parent] = child_uses.get(record.parent, 0) + record.uses
        totals = child_spent.setdefault(record.parent, {})
        for asset, amount in record.spent:
            totals[asset] = totals.get(asset, 0) + amount
    for grant_id, uses in child_uses.items():
        parent = records[grant_id]
        if parent.uses < uses:
            problems.append(f"grant {grant_id.hex()}: {parent.uses} uses, its delegations {uses}")
        for asset, amount in child_spent[grant_id].items():
            if parent.spent_of(asset) < amount:
                spent = parent.spent_of(asset)
                problems.append(f"grant {grant_id.hex()}: spent {spent} {asset}, its delegations {amount}")
    return problems


def _index_problems(state: StateReader, records: dict[bytes, GrantRecord]) -> list[str]:
    problems: list[str] = []
    expected: dict[str, str] = {}
    for record in records.values():
        expected[f"{BY_GRANTEE_PREFIX}{record.grantee}/{record.id.hex()}"] = record.capability
        expected[f"{BY_GRANTOR_PREFIX}{record.grantor}/{record.id.hex()}"] = record.capability
        if record.parent is not None:
            expected[f"{CHILD_PREFIX}{record.parent.hex()}/{record.id.hex()}"] = record.capability
    found: dict[str, object] = {}
    for prefix in (BY_GRANTEE_PREFIX, BY_GRANTOR_PREFIX, CHILD_PREFIX):
        for rest, value in iter_index(state, prefix):
            found[prefix + rest] = value
    for key, value in found.items():
        if key not in expected:
            problems.append(f"index entry {key} names no grant")
        elif value != expected[key]:
            problems.append(f"index entry {key} holds {value!r}, the grant is {expected[key]!r}")
    for key in expected:
        if key not in found:
            problems.append(f"index entry {key} is missing")
    return problems
