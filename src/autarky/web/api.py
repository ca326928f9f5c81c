"""The node's HTTP API (SPEC C16): ``create_app(node)`` returns the FastAPI application.

Routes (every error answers ``{"error": {"code", "message"}}``, see :mod:`autarky.web.errors`)::

    POST /api/v1/tx                    submit a transaction (CBOR body, or JSON {"tx": hex}); ?wait=
    POST /api/v1/tx/check              pre-check an unsigned body: the receipt it would get (JSON)
    GET  /api/v1/tx/{hash}             a committed (or pending) transaction, decoded, with its receipt
    GET  /api/v1/status                chain id, height, state root, mempool, node key
    GET  /api/v1/blocks?from=&limit=   recent headers, newest first
    GET  /api/v1/blocks/latest         the latest block: header, node signature, tx hashes, receipts
    GET  /api/v1/blocks/{height}       one block
    GET  /api/v1/accounts/{did}        sequence, identity record, balances, guardrails, frozen
    GET  /api/v1/accounts/{did}/balances
    GET  /api/v1/machines?offset=&limit=   registered accounts with wallets and guardrails
    GET  /api/v1/machines/{did}        one registered account
    GET  /api/v1/proof?key=            value + state proof + signed header, checkable by a light client
    GET  /api/v1/proofs?key=&key=&final=   several keys against one final header (a light client's bundle)
    GET  /api/v1/grants/{id}           a grant (module policy) and its standing: valid, or why not
    GET  /api/v1/grants?grantee=&grantor=&limit=   grants given to / by a DID, newest first
    GET  /api/v1/audit?machine=&grant=&action=&key=&from=&to=&ok=&limit=   who did what, under which grant
    GET  /api/v1/did/{did}             the W3C DID document (keys, services, attestations)
    GET  /api/v1/attestations/{id}     an attestation, its verdict now, proofs of it and of its issuer
    GET  /api/v1/attestations?subject=&issuer=&offset=&limit=   attestations about / by a DID
    GET  /api/v1/escrow/locks?account=&role=   open escrow locks (module routes: web/api_<module>.py)
    GET  /api/v1/oracle/feeds[/{feed}[/rounds]]   oracle feeds, latest value and fresh flag, rounds
    GET  /api/v1/data/offers[/{id}], /data/purchases[/{id}]?account=   data market offers and sales
    GET  /api/v1/metering/meters, /usage, /bills, /tariffs/{infra}, /params   meters, energy, bills
    GET  /api/v1/lease/offers[/{id}], /lease/leases[/{id}]?account=, /params   leases and their slots
    GET  /api/v1/jobs[/{id}]?status=&account=, /jobs/params   maintenance and other jobs
    GET  /api/v1/events                Server-Sent Events (blocks, transactions)
    POST /api/v1/admin/checkpoint      fold the state log into the base table (X-API-Key)
    GET  /healthz  /readyz  /metrics   liveness, readiness, Prometheus text
    GET  /openapi.json                 this API as OpenAPI;  /docs: its offline reference page
    GET  /                             the dashboard (see autarky.web.dashboard)

Handlers are ``async def`` on purpose: they read the node's in-memory state on the event loop
thread, where the node also swaps it between blocks (see :mod:`autarky.web.views`). SQLite reads run
in worker threads, so a block being committed never stalls the loop.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import CONTENT_TYPE_LATEST

from autarky.crypto.did import is_did_key
from autarky.encoding import DecodeError, canonical_decode
from autarky.ledger.block import BlockHeader
from autarky.ledger.smt import Proof
from autarky.ledger.tx import MAX_U64
from autarky.modules.bank import keeper as bank
from autarky.modules.identity import IdentityModule
from autarky.modules.identity import attestations as attestation_checks
from autarky.modules.identity import keeper as identity_keeper
from autarky.modules.policy import keeper as policy_keeper
from autarky.node.errors import ProofUnavailable
from autarky.node.node import Node, SubmitResult
from autarky.web import views
from autarky.web.errors import (
    BODY_TOO_LARGE,
    ERROR_RESPONSES,
    INVALID_DID,
    INVALID_HASH,
    INVALID_HEX,
    INVALID_JSON,
    INVALID_REQUEST,
    NODE_FAULT,
    NODE_NOT_READY,
    NOT_FOUND,
    PROOF_UNAVAILABLE,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
    error_body,
    error_response,
    install_error_handlers,
)
from autarky.web.events import event_stream
from autarky.web.schemas import (
    AccountResponse,
    AttestationListResponse,
    AttestationResponse,
    AuditResponse,
    BalancesResponse,
    BatchSubmitResponse,
    BlockListResponse,
    BlockResponse,
    CheckpointResponse,
    HealthResponse,
    MachineJson,
    MachineListResponse,
    ProofBundleResponse,
    ProofResponse,
    StatusResponse,
    SubmitResponse,
    TxResponse,
)

API_VERSION = "1"
DEFAULT_MAX_BODY_BYTES = 128 * 1024
"""The default of config ``api.max_body_bytes``."""
MAX_HEIGHT = 2**63 - 1
"""The largest height SQLite stores; larger path values are refused as invalid, not looked up."""
MAX_BLOCKS_PER_PAGE = 100
MAX_MACHINES_PER_PAGE = 500
MAX_ATTESTATIONS_PER_PAGE = 500
MAX_STATE_KEY_CHARS = 1024
MAX_PROOF_KEYS = 64
MAX_AUDIT_ENTRIES = 1000
MAX_GRANTS_PER_PAGE = 500
RETRY_AFTER_S = "1"

CBOR = "application/cbor"
DID_JSON = "application/did+json"


# -- dependencies --------------------------------------------------------------------------------


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(_node)]
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The node's admin API key")


def _require_api_key(request: Request, given: Annotated[str | None, Depends(_api_key_header)]) -> None:
    expected: str | None = request.app.state.api_key
    if expected is None:
        return
    if given is None or not secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise ApiError(
            401,
            UNAUTHORIZED,
            "this route needs the node's API key in X-API-Key",
            {"WWW-Authenticate": "ApiKey"},
        )


def _require_ready(node: Node) -> None:
    if node.fault is not None:
        raise ApiError(503, NODE_FAULT, node.fault, {"Retry-After": "5"})
    if not node.started:
        raise ApiError(503, NODE_NOT_READY, "the node is not started", {"Retry-After": RETRY_AFTER_S})


def _ready(node: NodeDep) -> None:
    """A dependency, so a stream route can refuse before its response starts."""
    _require_ready(node)


def _account_name(did: str) -> str:
    if not views.is_account_name(did):
        raise ApiError(400, INVALID_DID, f"not an Ed25519 did:key or module account: {did[:80]!r}")
    return did


def _did_key(did: str) -> str:
    if not is_did_key(did):
        raise ApiError(400, INVALID_DID, f"not an Ed25519 did:key: {did[:80]!r}")
    return did


def _identity(node: Node) -> IdentityModule:
    identity = node.app.module("identity")
    assert isinstance(identity, IdentityModule)
    return identity


def _now_ms(at_ms: int | None) -> int:
    """The time attestations are checked at: ``at_ms`` when the client names one, else the clock."""
    return time.time_ns() // 1_000_000 if at_ms is None else at_ms


AtMs = Annotated[
    int | None,
    Query(ge=0, le=MAX_U64, description="check validity at this time (ms since the Unix epoch); default now"),
]


def _attestation_id(value: str) -> bytes:
    problem = "an attestation id is 64 hex characters (SHA-256 of the claim)"
    if len(value) != 64:
        raise ApiError(400, INVALID_HASH, problem)
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        raise ApiError(400, INVALID_HASH, problem) from None
    if len(digest) != 32:  # fromhex skips spaces between bytes
        raise ApiError(400, INVALID_HASH, problem)
    return digest


def _tx_hash(value: str) -> bytes:
    if len(value) != 64:
        raise ApiError(400, INVALID_HASH, "a transaction hash is 64 hex characters")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ApiError(400, INVALID_HASH, "a transaction hash is 64 hex characters") from None


# -- the body of POST /api/v1/tx -----------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, BODY_TOO_LARGE, f"body of {declared} bytes exceeds the limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, BODY_TOO_LARGE, f"body exceeds the limit of {limit} bytes")
    return bytes(body)


def _raw_transaction(content_type: str, body: bytes) -> bytes:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == CBOR:
        return body
    if media_type == "application/json":
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ApiError(400, INVALID_JSON, f"body is not JSON: {str(exc)[:200]}") from None
        if type(document) is not dict or type(document.get("tx")) is not str:
            raise ApiError(400, INVALID_REQUEST, 'a JSON body is {"tx": "<transaction as hex>"}')
        try:
            return binascii.unhexlify(document["tx"])
        except (ValueError, binascii.Error):
            raise ApiError(400, INVALID_HEX, "tx is not an even-length hex string") from None
    raise _unsupported_media_type(media_type)


def _unsupported_media_type(media_type: str) -> ApiError:
    shown = media_type or "none"
    return ApiError(415, UNSUPPORTED_MEDIA_TYPE, f"body type {shown[:80]!r}: send {CBOR} or application/json")


def _submit_response(result: SubmitResult, final: bool | None = None) -> JSONResponse:
    body = result.to_json()
    if final is not None:
        body["final"] = final
    if result.status == "committed" or (result.status == "exists" and result.receipt is not None):
        return JSONResponse(body, status_code=200)
    if result.status in ("accepted", "exists"):
        # "exists" without a receipt: the original is pending, not yet durable.
        return JSONResponse(body, status_code=202)
    code = result.code or "core.malformed"
    body.update(error_body(code, result.detail))
    if code == "mempool.tx_too_large":
        return JSONResponse(body, status_code=413)
    if code.startswith("mempool.") or code == "engine.unavailable":
        return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_S})
    return JSONResponse(body, status_code=400)


_TX_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The signed transaction: its canonical CBOR bytes, or JSON with those bytes as hex.",
        "content": {
            CBOR: {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["tx"],
                    "properties": {"tx": {"type": "string", "description": "the transaction as hex"}},
                }
            },
        },
    }
}


# -- routes --------------------------------------------------------------------------------------

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


@router.post(
    "/tx",
    tags=["transactions"],
    summary="Submit a signed transaction",
    response_model=SubmitResponse,
    responses={
        202: {
            "model": SubmitResponse,
            "description": "Admitted to the mempool (wait=false, or not yet committed)",
        },
        400: {"model": SubmitResponse, "description": "Rejected; `code` and `error.code` say why"},
        413: {"description": "Body or transaction too large"},
        415: {"description": "Unsupported body type"},
        503: {"description": "Mempool full (`mempool.*`, with Retry-After) or node not ready (`node.*`)"},
    },
    openapi_extra=_TX_REQUEST_BODY,
)
async def submit_tx(
    request: Request,
    node: NodeDep,
    wait: Annotated[bool, Query(description="answer after the block is durably committed")] = True,
    final: Annotated[
        bool,
        Query(
            description="answer after the block is final: certified by a quorum of validators on the "
            "nats engine (implies wait; on the embedded engine a committed block is final)"
        ),
    ] = False,
) -> JSONResponse:
    """`200` committed or exists (R3: a resubmission answers `exists` with the same receipt), `202`
    accepted, `400` rejected with a `core.*`/`bank.*`/`identity.*` code, `503` mempool full or the
    ordering service unavailable (`engine.unavailable`, retry). With `final`, the answer has
    `final: true` once the block holding the transaction is certified (`false` on timeout)."""
    raw = _raw_transaction(
        request.headers.get("content-type", ""), await _read_body(request, request.app.state.max_body_bytes)
    )
    _require_ready(node)
    result = await node.submit(raw, wait=wait or final)
    if final and result.height is not None:
        return _submit_response(result, await node.wait_final(result.height, 30.0))
    return _submit_response(result)


@router.post(
    "/tx/check",
    tags=["transactions"],
    summary="Pre-check an unsigned transaction body",
    responses={400: {"description": "The request is malformed (not the transaction: see `code`)"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["body", "key"],
                        "properties": {
                            "body": {"type": "string", "description": "canonical CBOR of the body, hex"},
                            "key": {"type": "string", "description": "the signing public key, hex"},
                            "cosigners": {"type": "array", "items": {"type": "string"}},
                        },
                    }
                }
            },
        }
    },
)
async def check_tx(request: Request, node: NodeDep) -> dict[str, Any]:
    """The receipt the body would get if signed by `key` (and `cosigners`) and put in the next
    block (`ledger.executor.check_tx`): `{code, ok, detail, events, height, time_ms}`. Nothing is
    signed, verified or written. The sender's transactions pending in the mempool are taken to
    commit first (their sequence numbers count as used); their other effects are not seen."""
    from autarky.ledger.errors import TxError
    from autarky.ledger.executor import SEQUENCE_PREFIX, check_tx, sequence_of
    from autarky.ledger.router import BlockEnv
    from autarky.ledger.state import Overlay
    from autarky.ledger.tx import decode_tx, encode_signed

    try:
        document = json.loads(await _read_body(request, request.app.state.max_body_bytes))
        body_bytes = binascii.unhexlify(document["body"])
        key = binascii.unhexlify(document["key"])
        cosigners = [binascii.unhexlify(item) for item in document.get("cosigners", [])]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise ApiError(400, INVALID_REQUEST, 'send {"body": hex, "key": hex, "cosigners": [hex]}') from None
    if len(key) != 32 or any(len(item) != 32 for item in cosigners):
        raise ApiError(400, INVALID_REQUEST, "keys are 32 bytes")
    env = BlockEnv(
        node.chain_id, node.height + 1, max(int(time.time() * 1000), node.header.time_ms), node.header.hash
    )
    try:
        tx = decode_tx(encode_signed(body_bytes, [(k, bytes(64)) for k in (key, *cosigners)]))
    except TxError as exc:
        return {"code": exc.code, "ok": False, "detail": exc.detail, "events": [], **_env_json(env)}
    state = Overlay(node.state)
    sender = tx.body.sender
    if sequence_of(state, sender) < tx.body.sequence < node.sequence(sender) + 1:
        state.set_obj(SEQUENCE_PREFIX + sender, tx.body.sequence)
    receipt = check_tx(state, env, tx.body, key, node.app, cosigners)
    answer = receipt.to_json()
    del answer["tx_hash"], answer["index"]
    return {**answer, **_env_json(env)}


def _env_json(env: Any) -> dict[str, int]:
    return {"height": env.height, "time_ms": env.time_ms}


MAX_BATCH_TXS = 2000


@router.post(
    "/txs",
    tags=["transactions"],
    summary="Submit many signed transactions at once",
    response_model=BatchSubmitResponse,
    responses={
        413: {"description": "Body too large"},
        415: {"description": "Unsupported body type"},
        503: {"description": "Node not ready (`node.*`)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"A CBOR array of up to {MAX_BATCH_TXS} signed transactions (each as a byte "
            'string), or JSON {"txs": ["<hex>", ...]}.',
            "content": {
                CBOR: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["txs"],
                        "properties": {"txs": {"type": "array", "items": {"type": "string"}}},
                    }
                },
            },
        }
    },
)
async def submit_txs(request: Request, node: NodeDep) -> dict[str, Any]:
    """Admit transactions in order without waiting for their block; one result per transaction, in
    order, each with the status and code `POST /tx` would give (`accepted`, `exists`, `rejected`).
    Decoding and signature checks run in the node's worker processes."""
    limit = request.app.state.max_body_bytes * 64
    raws = _raw_transactions(request.headers.get("content-type", ""), await _read_body(request, limit))
    _require_ready(node)
    results = await node.submit_many(raws)
    return {"results": [result.to_json() for result in results]}


def _raw_transactions(content_type: str, body: bytes) -> list[bytes]:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == CBOR:
        try:
            items = canonical_decode(body)
        except DecodeError as exc:
            raise ApiError(400, INVALID_REQUEST, f"body is not canonical CBOR: {exc}") from None
        if type(items) is not list or not all(type(item) is bytes for item in items):
            raise ApiError(400, INVALID_REQUEST, "a CBOR body is an array of byte strings")
    elif media_type == "application/json":
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, INVALID_JSON, f"body is not JSON: {str(exc)[:200]}") from None
        if type(document) is not dict or type(document.get("txs")) is not list:
            raise ApiError(400, INVALID_REQUEST, 'a JSON body is {"txs": ["<transaction as hex>", ...]}')
        try:
            items = [binascii.unhexlify(item) for item in document["txs"] if type(item) is str]
        except (ValueError, binascii.Error):
            raise ApiError(400, INVALID_HEX, "every tx is an even-length hex string") from None
        if len(items) != len(document["txs"]):
            raise ApiError(400, INVALID_REQUEST, "every tx is a hex string")
    else:
        raise _unsupported_media_type(media_type)
    if not 1 <= len(items) <= MAX_BATCH_TXS:
        raise ApiError(400, INVALID_REQUEST, f"send 1 to {MAX_BATCH_TXS} transactions")
    return items


@router.get(
    "/tx/{tx_hash}", tags=["transactions"], summary="A transaction by hash", response_model=TxResponse
)
async def get_tx(
    node: NodeDep, tx_hash: Annotated[str, Path(description="64 hex characters")]
) -> dict[str, Any]:
    digest = _tx_hash(tx_hash)
    record = await asyncio.to_thread(node.tx, digest)
    if record is not None:
        return views.committed_tx_json(digest, record)
    if digest in node.mempool:
        return views.pending_tx_json(digest)
    raise ApiError(404, NOT_FOUND, f"no transaction {tx_hash}")


@router.get("/status", tags=["chain"], summary="Node and chain status", response_model=StatusResponse)
async def status(node: NodeDep) -> dict[str, Any]:
    return node.status()


@router.get(
    "/blocks", tags=["chain"], summary="Recent block headers, newest first", response_model=BlockListResponse
)
async def list_blocks(
    node: NodeDep,
    from_: Annotated[
        int | None, Query(alias="from", ge=0, le=MAX_HEIGHT, description="highest height")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BLOCKS_PER_PAGE)] = 20,
) -> dict[str, Any]:
    top = node.height if from_ is None else min(from_, node.height)
    start = max(0, top - limit + 1)
    headers = await asyncio.to_thread(node.storage.headers, start, top + 1)
    return {
        "blocks": [header.to_json() for header in reversed(headers)],
        "next_from": start - 1 if start > 0 else None,
    }


async def _block(node: Node, height: int) -> dict[str, Any]:
    block = await asyncio.to_thread(node.block, height)
    if block is None:
        raise ApiError(404, NOT_FOUND, f"no block at height {height} (latest is {node.height})")
    answer = views.block_json(block)
    certificate = await asyncio.to_thread(node.certificate, height)
    answer["certificate"] = None if certificate is None else certificate.to_json()
    answer["final"] = node.final_height >= height
    return answer


@router.get("/blocks/latest", tags=["chain"], summary="The latest block", response_model=BlockResponse)
async def latest_block(node: NodeDep) -> dict[str, Any]:
    return await _block(node, node.height)


@router.get("/blocks/{height}", tags=["chain"], summary="A block by height", response_model=BlockResponse)
async def block_at(node: NodeDep, height: Annotated[int, Path(ge=0, le=MAX_HEIGHT)]) -> dict[str, Any]:
    return await _block(node, height)


@router.get("/accounts/{did}", tags=["accounts"], summary="An account", response_model=AccountResponse)
async def account(node: NodeDep, did: str) -> dict[str, Any]:
    """`sequence` is what the account's next transaction must carry (it counts pending ones);
    an account that never appeared on the ledger answers with sequence 0 and no balances."""
    return views.account_json(node, _account_name(did))


@router.get(
    "/accounts/{did}/balances",
    tags=["accounts"],
    summary="An account's balances",
    response_model=BalancesResponse,
)
async def balances(node: NodeDep, did: str) -> dict[str, Any]:
    did = _account_name(did)
    return {"did": did, "balances": bank.balances(node.state, did)}


@router.get("/machines", tags=["accounts"], summary="Registered accounts", response_model=MachineListResponse)
async def machines(
    node: NodeDep,
    offset: Annotated[int, Query(ge=0, le=MAX_HEIGHT)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_MACHINES_PER_PAGE)] = 100,
) -> dict[str, Any]:
    return views.machines_json(node, offset, limit)


@router.get("/machines/{did}", tags=["accounts"], summary="A registered account", response_model=MachineJson)
async def machine(node: NodeDep, did: str) -> dict[str, Any]:
    found = views.machine_json(node, _did_key(did))
    if found is None:
        raise ApiError(404, NOT_FOUND, f"{did} is not a registered account")
    return found


@router.get(
    "/proof", tags=["state"], summary="A state proof against a signed header", response_model=ProofResponse
)
async def proof(
    node: NodeDep,
    key: Annotated[str, Query(min_length=1, max_length=MAX_STATE_KEY_CHARS, description="a state key")],
) -> dict[str, Any]:
    """Inclusion proof when `value` is set, exclusion proof when it is null. Check with
    `autarky.ledger.smt.verify(header.state_root, key, value, proof)` and the node's signature over
    the header (`AutarkyClient.verify_proof` does both)."""
    return _proof_answer(node, key, *node.prove(key))


def _proof_answer(
    node: Node, key: str, value: bytes | None, state_proof: Proof, header: BlockHeader
) -> dict[str, Any]:
    return {
        "key": key,
        "value": None if value is None else value.hex(),
        "proof": state_proof.to_json(),
        "header": header.to_json(),
        "signature": node.header_signature(header).hex(),
        "node_key": node.node_key.did,
    }


@router.get(
    "/proofs",
    tags=["state"],
    summary="Proofs of several keys against one final header",
    response_model=ProofBundleResponse,
    responses={503: {"description": "No final block to prove against yet (`node.proof_unavailable`)"}},
)
async def proofs(
    node: NodeDep,
    key: Annotated[
        list[str],
        Query(min_length=1, max_length=MAX_PROOF_KEYS, description="state keys (repeat the parameter)"),
    ],
    final: Annotated[
        bool, Query(description="prove against the latest final block (else the latest)")
    ] = True,
) -> dict[str, Any]:
    """What a light client carries offline: with `final` (the default) the header is the latest
    one that is final, signed by the node and, on the `nats` engine, with its quorum certificate.
    Check it with `autarky.verify.ProofBundle.from_json(answer).verify(anchor)`."""
    for item in key:
        if not 1 <= len(item) <= MAX_STATE_KEY_CHARS:
            raise ApiError(400, INVALID_REQUEST, f"a state key is 1 to {MAX_STATE_KEY_CHARS} characters")
    try:
        height = node.final_proof_height() if final else node.height
        proven = node.prove_many(key, height)
    except ProofUnavailable as exc:
        raise ApiError(503, PROOF_UNAVAILABLE, str(exc), {"Retry-After": RETRY_AFTER_S}) from None
    header = proven.header
    certificate = None if node.engine.name == "embedded" else node.certificate(header.height)
    return {
        "header": header.to_json(),
        "final": header.height <= node.final_height,
        "signature": node.header_signature(header).hex(),
        "node_key": node.node_key.did,
        "certificate": None if certificate is None else certificate.to_json(),
        "entries": [
            {"key": k, "value": None if v is None else v.hex(), "proof": proof.encode().hex()}
            for k, v, proof in proven.entries
        ],
    }


def _standing_time(at_ms: int | None, node: Node) -> int:
    return node.header.time_ms if at_ms is None else at_ms


@router.get("/grants/{grant_id}", tags=["policy"], summary="A grant and its standing")
async def grant(
    node: NodeDep,
    grant_id: Annotated[str, Path(description="the grant id (64 hex characters)")],
    at_ms: Annotated[
        int | None, Query(ge=0, le=MAX_U64, description="judge it at this time (default: the last block's)")
    ] = None,
) -> dict[str, Any]:
    """The record as stored (`policy/grant/<id>`; prove it with `/proofs`) plus `standing`: `valid`,
    or the `policy.*` code its check gives at `at_ms` (revoked, expired, uses exhausted, anywhere up
    its chain), and `chain`, the ids from it to its root grant."""
    raw_id = _hex_filter(grant_id, "grant id")
    if len(raw_id) != 64:
        raise ApiError(400, INVALID_HEX, "a grant id is 64 hex characters")
    record = policy_keeper.read_grant(node.state, bytes.fromhex(raw_id))
    if record is None:
        raise ApiError(404, NOT_FOUND, f"no grant {raw_id}")
    return views.grant_json(node, record, _standing_time(at_ms, node))


@router.get("/grants", tags=["policy"], summary="Grants given to or by a DID")
async def grants(
    node: NodeDep,
    grantee: Annotated[str | None, Query(description="grants given to this DID")] = None,
    grantor: Annotated[str | None, Query(description="grants this DID gave")] = None,
    at_ms: Annotated[int | None, Query(ge=0, le=MAX_U64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_GRANTS_PER_PAGE)] = 100,
) -> dict[str, Any]:
    """Newest first, each with its standing (see `/grants/{id}`); name `grantee`, `grantor` or both."""
    if grantee is None and grantor is None:
        raise ApiError(400, INVALID_REQUEST, "name a grantee, a grantor or both")
    return views.grants_json(
        node,
        None if grantee is None else _did_key(grantee),
        None if grantor is None else _did_key(grantor),
        _standing_time(at_ms, node),
        limit,
    )


@router.get(
    "/audit", tags=["audit"], summary="Who did what, under which grant, when", response_model=AuditResponse
)
async def audit(
    node: NodeDep,
    machine: Annotated[
        str | None, Query(description="a party: the sender or a DID the message names")
    ] = None,
    grant: Annotated[str | None, Query(description="a grant id (hex) the transaction used")] = None,
    action: Annotated[
        str | None,
        Query(max_length=80, description="a message type (`bank/send`) or module prefix (`bank/`)"),
    ] = None,
    key: Annotated[str | None, Query(description="a signing key (64 hex characters)")] = None,
    from_height: Annotated[int | None, Query(alias="from", ge=0, le=MAX_HEIGHT)] = None,
    to_height: Annotated[int | None, Query(alias="to", ge=0, le=MAX_HEIGHT)] = None,
    ok: Annotated[
        bool | None, Query(description="only accepted (true) or only refused (false) actions")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_ENTRIES)] = 100,
) -> dict[str, Any]:
    """Every message of every committed transaction, newest first: the block (height, time), the
    sender and the keys that signed, the action, its result code and the grants it used."""
    if machine is not None:
        machine = _account_name(machine)
    if grant is not None:
        grant = _hex_filter(grant, "grant id")
    if key is not None:
        key = _hex_filter(key, "key")
        if len(key) != 64:
            raise ApiError(400, INVALID_HEX, "a key is 64 hex characters")
    entries = await asyncio.to_thread(
        node.audit,
        machine=machine,
        grant=grant,
        action=action,
        key=key,
        from_height=from_height,
        to_height=to_height,
        ok=ok,
        limit=limit,
    )
    return {"entries": [entry.to_json() for entry in entries], "limit": limit}


def lock_id_from_hex(value: str, what: str) -> bytes:
    """A 32-byte id given as 64 hex characters (``api.invalid_hex`` otherwise). For module routes."""
    raw = _hex_filter(value, what)
    if len(raw) != 64:
        raise ApiError(400, INVALID_HEX, f"a {what} is 64 hex characters")
    return bytes.fromhex(raw)


def account_name(value: str) -> str:
    """A did:key or module account (``api.invalid_did`` otherwise). For module routes."""
    return _account_name(value)


def _hex_filter(value: str, what: str) -> str:
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ApiError(400, INVALID_HEX, f"a {what} is hex") from None
    if not value or len(value) > 128:
        raise ApiError(400, INVALID_HEX, f"a {what} is 1 to 128 hex characters")
    return value.lower()


@router.get(
    "/did/{did}",
    tags=["identity"],
    summary="The W3C DID document of a did:key",
    responses={200: {"content": {DID_JSON: {}, "application/json": {}}}},
)
async def did_document(request: Request, node: NodeDep, did: str, at_ms: AtMs = None) -> JSONResponse:
    """Resolved from ledger state; an unregistered did:key resolves to its implicit document.
    Lists the account's `service` entries and, under `autarky.attestations`, the attestations
    about the DID (newest first, at most 64, `attestations_total` in all), each with `valid` and
    `verdict` at `at_ms` (default: now). Answers `application/did+json` when the client accepts
    it, else `application/json`."""
    document = _identity(node).did_document(node.state, _did_key(did), _now_ms(at_ms))
    accepted = request.headers.get("accept", "")
    media_type = DID_JSON if DID_JSON in accepted else "application/json"
    return JSONResponse(document, media_type=media_type)


@router.get(
    "/attestations/{attestation_id}",
    tags=["identity"],
    summary="An attestation, whether it is valid now, and state proofs of it and of its issuer",
    response_model=AttestationResponse,
)
async def attestation(
    node: NodeDep,
    attestation_id: Annotated[str, Path(description="64 hex characters: SHA-256 of the claim's bytes")],
    at_ms: AtMs = None,
) -> dict[str, Any]:
    """`proof` proves the record under `identity/att/<id>` and `issuer_proof` the issuer's account
    record under `identity/acct/<issuer>` (an exclusion proof for an unregistered issuer), both
    against the same node-signed header, so a client can recompute `verdict` itself
    (`AutarkyClient.verify_attestation`). 404 `api.not_found` when no such attestation is anchored."""
    digest = _attestation_id(attestation_id)
    key = identity_keeper.attestation_key(digest)
    value, record_proof, header = node.prove(key)
    if value is None:
        raise ApiError(404, NOT_FOUND, f"no attestation {attestation_id} is anchored")
    record = attestation_checks.decode_record(value)
    issuer_key = identity_keeper.account_key(record.claim.issuer)
    issuer_value, issuer_proof, issuer_header = node.prove(issuer_key)
    assert issuer_header == header, "both proofs are read in one step of the loop, against one block"
    now_ms = _now_ms(at_ms)
    verdict = attestation_checks.verdict_in_state(node.state, record, now_ms)
    return {
        "id": digest.hex(),
        "attestation": attestation_checks.record_json(digest, record),
        "verdict": verdict.to_json(),
        "checked_at_ms": now_ms,
        "proof": _proof_answer(node, key, value, record_proof, header),
        "issuer_proof": _proof_answer(node, issuer_key, issuer_value, issuer_proof, header),
    }


@router.get(
    "/attestations",
    tags=["identity"],
    summary="Attestations about a subject and/or by an issuer, newest first",
    response_model=AttestationListResponse,
)
async def attestations(
    node: NodeDep,
    subject: Annotated[str | None, Query(description="the subject's did:key")] = None,
    issuer: Annotated[str | None, Query(description="the issuer's did:key")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_HEIGHT)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ATTESTATIONS_PER_PAGE)] = 100,
    at_ms: AtMs = None,
) -> dict[str, Any]:
    """Give `subject`, `issuer` or both (400 `api.invalid_request` for neither). Each entry is the
    attestation's summary with `valid` and `verdict` at `at_ms` (default: now); `total` counts every
    match, `offset`/`limit` page through them."""
    if subject is None and issuer is None:
        raise ApiError(400, INVALID_REQUEST, "give subject, issuer or both (did:key values)")
    identity = _identity(node)
    state = node.state
    # The indexes name the other party, so filtering needs no record; only the page's are read.
    if subject is not None:
        subject_did = _did_key(subject)
        issuer_did = None if issuer is None else _did_key(issuer)
        indexed = identity_keeper.attestations_about_with_issuers(state, subject_did)
        ids = [found for found, by in indexed if issuer_did is None or by == issuer_did]
    else:
        assert issuer is not None
        ids = identity_keeper.attestation_ids_by(state, _did_key(issuer))
    records = []
    for attestation_id in list(reversed(ids))[offset : offset + limit]:
        record = identity.attestation(state, attestation_id)
        assert record is not None, "an index names only anchored attestations"
        records.append((attestation_id, record))
    now_ms = _now_ms(at_ms)
    page = []
    for attestation_id, record in records:
        verdict = attestation_checks.verdict_in_state(state, record, now_ms)
        page.append(
            {
                **attestation_checks.summary(attestation_id, record),
                "valid": verdict.valid,
                "verdict": verdict.reason,
            }
        )
    return {
        "attestations": page,
        "total": len(ids),
        "offset": offset,
        "limit": limit,
        "checked_at_ms": now_ms,
    }


@router.get(
    "/events",
    tags=["events"],
    summary="Live events (Server-Sent Events)",
    response_class=EventSourceResponse,
    dependencies=[Depends(_ready)],
)
async def events(request: Request, node: NodeDep) -> AsyncIterator[ServerSentEvent]:
    """`hello` once subscribed, then `block` and `tx` events; a `: ping` comment every 15 s."""
    async for event in event_stream(node, request.app.state.closing):
        yield event


@router.post(
    "/admin/checkpoint",
    tags=["admin"],
    summary="Checkpoint the state store",
    response_model=CheckpointResponse,
    dependencies=[Depends(_require_api_key)],
    responses={401: {"description": "Missing or wrong X-API-Key (`api.unauthorized`)"}},
)
async def checkpoint(node: NodeDep) -> dict[str, Any]:
    """Folds the per-block state log into the base table in one SQLite transaction, so the next
    start loads faster. Safe while the node runs. Needs `X-API-Key` when the node has a key."""
    _require_ready(node)
    await asyncio.to_thread(node.storage.checkpoint)
    return {"status": "ok", "height": node.height}


operations = APIRouter(tags=["operations"])


@operations.get("/healthz", summary="Liveness: the process answers", response_model=HealthResponse)
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@operations.get(
    "/readyz",
    summary="Readiness: the node is started and has no fault",
    response_model=HealthResponse,
    responses={503: ERROR_RESPONSES[503]},
)
async def readyz(node: NodeDep) -> Any:
    if node.fault is not None:
        return error_response(503, NODE_FAULT, node.fault)
    if not node.started:
        return error_response(503, NODE_NOT_READY, "the node is not started")
    return {"status": "ready", "height": node.height}


@operations.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(node: NodeDep) -> Response:
    return Response(node.metrics.render(), media_type=CONTENT_TYPE_LATEST)


# -- the application -----------------------------------------------------------------------------


def create_app(
    node: Node, api_key: str | None = None, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> FastAPI:
    """The API (and dashboard) of ``node``. ``api_key`` guards the admin routes when set."""
    from autarky.web.dashboard import install_dashboard  # the dashboard sits on top of the API

    app = FastAPI(
        title="Autarky node API",
        version=API_VERSION,
        description="Submit transactions; read blocks, accounts, machines and state proofs; follow events.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    app.state.api_key = api_key or None
    app.state.max_body_bytes = max_body_bytes
    app.state.closing = asyncio.Event()
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(operations)
    from autarky.web import api_escrow  # module routes import helpers from this file

    app.include_router(api_escrow.router)
    from autarky.web import api_oracle

    app.include_router(api_oracle.router)
    from autarky.web import api_data

    app.include_router(api_data.router)
    from autarky.web import api_market

    app.include_router(api_market.router)
    from autarky.web import api_metering

    app.include_router(api_metering.router)
    from autarky.web import api_lease

    app.include_router(api_lease.router)
    from autarky.web import api_jobs

    app.include_router(api_jobs.router)
    from autarky.web import api_provenance

    app.include_router(api_provenance.router)
    install_dashboard(app)
    return app
