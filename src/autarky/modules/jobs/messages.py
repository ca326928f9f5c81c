"""The jobs messages as typed, frozen values: exact fields, parsing, value checks and builders.

Parsing checks the message alone (and the sender), never the state, in two stages whose order is
part of the module's precedence (README.md):

1. shape: every required field is present, no unexpected field is, and every field has its type
   (``core.invalid_message``); ``arbiter`` may be left out (None);
2. values, code by code, for ``jobs/post`` only: ``jobs.invalid_kind``, ``jobs.invalid_description``,
   ``jobs.invalid_bounty``, ``jobs.invalid_asset``, ``jobs.invalid_attesters``,
   ``jobs.invalid_arbiter``. The deadline is checked by the handler against the block time.

Attesters
---------
``attesters`` lists who may attest a completion: 1 to 8 distinct entries, each

* ``"poster"``: the machine that posted the job (the transaction's sender),
* ``"owner"``: the poster's registered owner (``identity``), looked up when it attests,
* a did:key: a named party, e.g. an oracle reporter, an inspector or the site's controller.

The provider never attests its own work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_field, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.jobs.errors import (
    INVALID_ARBITER,
    INVALID_ASSET,
    INVALID_ATTESTERS,
    INVALID_BOUNTY,
    INVALID_DESCRIPTION,
    INVALID_KIND,
)

POST = "jobs/post"
CANCEL = "jobs/cancel"
ACCEPT = "jobs/accept"
COMPLETE = "jobs/complete"
ATTEST = "jobs/attest"
DISPUTE = "jobs/dispute"
RESOLVE = "jobs/resolve"
MESSAGE_TYPES = (POST, CANCEL, ACCEPT, COMPLETE, ATTEST, DISPUTE, RESOLVE)

ID_BYTES = 32
EVIDENCE_BYTES = 32
MAX_DESCRIPTION_CHARS = 280
MAX_ATTESTERS = 8
POSTER = "poster"
OWNER = "owner"

_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ASSET = re.compile(r"[a-z][a-z0-9]{0,15}")  # the bank's asset names


def is_kind(value: object) -> bool:
    return type(value) is str and _KIND.fullmatch(value) is not None


def is_asset(value: object) -> bool:
    return type(value) is str and _ASSET.fullmatch(value) is not None


def is_description(value: object) -> bool:
    """1 to 280 characters, none of them an ASCII control character (a rule that does not depend on
    the Unicode tables of the Python version a replica runs)."""
    return (
        type(value) is str
        and 1 <= len(value) <= MAX_DESCRIPTION_CHARS
        and not any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
    )


@dataclass(frozen=True, slots=True)
class Post:
    kind: str
    description: str
    bounty: int
    asset: str
    deadline_ms: int
    attesters: tuple[str, ...]
    arbiter: str | None


@dataclass(frozen=True, slots=True)
class Cancel:
    job: bytes


@dataclass(frozen=True, slots=True)
class Accept:
    job: bytes


@dataclass(frozen=True, slots=True)
class Complete:
    job: bytes
    evidence: bytes


@dataclass(frozen=True, slots=True)
class Attest:
    job: bytes
    evidence: bytes


@dataclass(frozen=True, slots=True)
class Dispute:
    job: bytes


@dataclass(frozen=True, slots=True)
class Resolve:
    job: bytes
    provider_amount: int


Message = Post | Cancel | Accept | Complete | Attest | Dispute | Resolve


def parse(message: Mapping[str, Any], sender: str) -> Message:
    """The typed message; ``core.invalid_message`` or a ``jobs.*`` code of the message alone."""
    message_type = message["type"]
    if message_type == POST:
        return parse_post(message, sender)
    if message_type in (COMPLETE, ATTEST):
        check_field_names(message, ("job", "evidence"), ())
        job = _id(message, "job")
        evidence = require_field(message, "evidence", bytes)
        if len(evidence) != EVIDENCE_BYTES:
            raise INVALID_MESSAGE(f"field 'evidence' must be a {EVIDENCE_BYTES}-byte hash")
        return Complete(job, evidence) if message_type == COMPLETE else Attest(job, evidence)
    if message_type == RESOLVE:
        check_field_names(message, ("job", "provider_amount"), ())
        return Resolve(_id(message, "job"), require_field(message, "provider_amount", int))
    check_field_names(message, ("job",), ())
    job = _id(message, "job")
    if message_type == CANCEL:
        return Cancel(job)
    if message_type == ACCEPT:
        return Accept(job)
    assert message_type == DISPUTE, message_type
    return Dispute(job)


def parse_post(message: Mapping[str, Any], sender: str) -> Post:
    check_field_names(
        message, ("kind", "description", "bounty", "asset", "deadline_ms", "attesters"), ("arbiter",)
    )
    kind = require_text(message, "kind")
    description = require_text(message, "description")
    bounty = require_field(message, "bounty", int)
    asset = require_text(message, "asset")
    deadline_ms = require_field(message, "deadline_ms", int)
    attesters = require_field(message, "attesters", list)
    if any(type(entry) is not str for entry in attesters):
        raise INVALID_MESSAGE("field 'attesters' must be a list of text")
    arbiter = message.get("arbiter")
    if arbiter is not None and type(arbiter) is not str:
        raise INVALID_MESSAGE("field 'arbiter' must be text or None")

    if not is_kind(kind):
        raise INVALID_KIND(f"kind {kind[:40]!r} is not [a-z][a-z0-9_-]{{0,31}}")
    if not is_description(description):
        raise INVALID_DESCRIPTION(
            f"description must be 1 to {MAX_DESCRIPTION_CHARS} characters without control characters"
        )
    if not 1 <= bounty <= MAX_U64:
        raise INVALID_BOUNTY("bounty must be from 1 to 2**64-1")
    if not is_asset(asset):
        raise INVALID_ASSET(f"asset {asset[:40]!r} is not an asset name ([a-z][a-z0-9]{{0,15}})")
    checked = check_attesters(attesters, sender)
    if arbiter is not None and (not is_did_key(arbiter) or arbiter == sender or arbiter in checked):
        raise INVALID_ARBITER("arbiter must be an Ed25519 did:key other than the poster and its attesters")
    return Post(kind, description, bounty, asset, deadline_ms, checked, arbiter)


def check_attesters(attesters: Sequence[str], sender: str) -> tuple[str, ...]:
    if not 1 <= len(attesters) <= MAX_ATTESTERS:
        raise INVALID_ATTESTERS(f"name 1 to {MAX_ATTESTERS} attesters")
    for index, entry in enumerate(attesters):
        if entry in attesters[:index]:
            raise INVALID_ATTESTERS(f"attester {entry[:80]!r} is named twice")
        if entry in (POSTER, OWNER):
            continue
        if not is_did_key(entry):
            raise INVALID_ATTESTERS(f'attester {entry[:80]!r} is not "poster", "owner" or a did:key')
        if entry == sender:
            raise INVALID_ATTESTERS('the poster attests as "poster", not by its DID')
    return tuple(attesters)


def _id(message: Mapping[str, Any], name: str) -> bytes:
    value = message.get(name)
    if type(value) is not bytes or len(value) != ID_BYTES:
        raise INVALID_MESSAGE(f"field {name!r} must be a {ID_BYTES}-byte id")
    return value


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def post(
    kind: str,
    description: str,
    bounty: int,
    asset: str,
    deadline_ms: int,
    attesters: Sequence[str] = (POSTER,),
    arbiter: str | None = None,
) -> dict[str, Any]:
    """A job with ``bounty`` of ``asset`` in escrow, to be done before ``deadline_ms`` (block time)."""
    return {
        "type": POST,
        "kind": kind,
        "description": description,
        "bounty": bounty,
        "asset": asset,
        "deadline_ms": deadline_ms,
        "attesters": list(attesters),
        "arbiter": arbiter,
    }


def cancel(job_id: bytes) -> dict[str, Any]:
    return {"type": CANCEL, "job": job_id}


def accept(job_id: bytes) -> dict[str, Any]:
    return {"type": ACCEPT, "job": job_id}


def complete(job_id: bytes, evidence: bytes) -> dict[str, Any]:
    return {"type": COMPLETE, "job": job_id, "evidence": evidence}


def attest(job_id: bytes, evidence: bytes) -> dict[str, Any]:
    return {"type": ATTEST, "job": job_id, "evidence": evidence}


def dispute(job_id: bytes) -> dict[str, Any]:
    return {"type": DISPUTE, "job": job_id}


def resolve(job_id: bytes, provider_amount: int) -> dict[str, Any]:
    return {"type": RESOLVE, "job": job_id, "provider_amount": provider_amount}
