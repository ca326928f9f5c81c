"""Response models of the HTTP API: the contract the OpenAPI document publishes.

Bytes are lower-case hex everywhere; amounts and heights are integers. Models allow extra fields so
the node can add information without breaking clients; clients must ignore what they do not know.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from autarky.web.errors import ErrorDetail


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class EventJson(_Open):
    type: str
    attributes: dict[str, Any]


class ReceiptJson(_Open):
    tx_hash: str
    index: int
    code: str
    ok: bool
    sender: str | None
    detail: str
    events: list[EventJson]


class HeaderJson(_Open):
    chain_id: str
    height: int
    hash: str
    prev_hash: str
    time_ms: int
    tx_count: int
    tx_root: str
    result_root: str
    state_root: str


class SubmitResponse(_Open):
    """``status``: accepted | committed | exists | rejected. ``error`` is set when rejected."""

    tx_hash: str
    status: str
    code: str | None
    detail: str
    height: int | None
    receipt: ReceiptJson | None
    error: ErrorDetail | None = None


class MempoolJson(_Open):
    transactions: int
    bytes: int


class StatusResponse(_Open):
    chain_id: str
    height: int
    block_hash: str
    state_root: str
    time_ms: int
    node_key: str
    mempool: MempoolJson
    engine: dict[str, Any]
    fault: str | None
    final_height: int = 0
    validators: int = 0
    validator: bool = False


class CertificateJson(_Open):
    """A quorum of validator votes on (height, block hash, state root); ``votes`` are the signed
    vote entries as hex (see ``engines/ordering.py``)."""

    height: int
    block_hash: str
    state_root: str
    votes: list[str]


class BlockResponse(_Open):
    header: HeaderJson
    signature: str | None
    txs: list[str]
    receipts: list[ReceiptJson]
    end_events: list[EventJson]
    certificate: CertificateJson | None = None
    final: bool = False


class BatchSubmitResponse(_Open):
    results: list[SubmitResponse]


class BlockListResponse(_Open):
    """Headers newest first; ``next_from`` continues the listing (None at genesis)."""

    blocks: list[HeaderJson]
    next_from: int | None


class SignatureJson(_Open):
    public_key: str
    signature: str


class TxBodyJson(_Open):
    chain_id: str
    sender: str
    sequence: int
    fee: int
    expiry_height: int
    messages: list[dict[str, Any]]
    memo: str
    signatures: list[SignatureJson]


class TxResponse(_Open):
    """``status``: committed (in a block) or pending (admitted, not yet in a block)."""

    tx_hash: str
    status: str
    height: int | None
    index: int | None
    raw: str | None
    tx: TxBodyJson | None
    receipt: ReceiptJson | None


class BalancesResponse(_Open):
    did: str
    balances: dict[str, int]


class AccountResponse(_Open):
    did: str
    sequence: int
    committed_sequence: int
    identity: dict[str, Any] | None
    balances: dict[str, int]
    guardrails: dict[str, Any] | None
    window_spent: dict[str, int]
    frozen: bool
    escrow: dict[str, list[dict[str, Any]]] = {}
    """Open escrow locks: ``paid`` (the account pays them) and ``beneficiary`` (they name it)."""
    status: str = "unregistered"
    """``unregistered`` | ``active`` | ``paused`` (its owner's kill-switch: see ``pause``) | ``revoked``."""
    pause: dict[str, Any] | None = None
    """While paused: ``{"reason", "by", "height"}``."""


class MachineJson(_Open):
    did: str
    short: str
    kind: str
    owner: str | None
    status: str
    maker: str
    model: str
    balances: dict[str, int]
    guardrails: dict[str, Any] | None
    frozen: bool


class MachineListResponse(_Open):
    machines: list[MachineJson]
    total: int
    offset: int
    limit: int


class ProofJson(_Open):
    path: str
    depth: int
    bitmap: str
    siblings: list[str]
    other_leaf: dict[str, str] | None


class ProofResponse(_Open):
    """``value`` hex or None (absent); check ``proof`` against ``header.state_root`` and ``signature``."""

    key: str
    value: str | None
    proof: ProofJson
    header: HeaderJson
    signature: str
    node_key: str


class ProvedEntryJson(_Open):
    key: str
    value: str | None
    proof: str
    """The proof as hex of its canonical CBOR (``autarky.ledger.smt.Proof.decode``)."""


class ProofBundleResponse(_Open):
    """Proofs of several keys against one header, with what makes that header final: the node's
    signature (embedded engine) or a quorum certificate (``nats`` engine). Check it offline with
    ``autarky.verify.ProofBundle.from_json(answer).verify(anchor)``."""

    header: HeaderJson
    final: bool
    signature: str
    node_key: str
    certificate: CertificateJson | None
    entries: list[ProvedEntryJson]


class AuditEntryJson(_Open):
    height: int
    time_ms: int
    tx_index: int
    msg_index: int
    tx_hash: str
    sender: str
    signers: list[str]
    action: str
    code: str
    ok: bool
    grants: list[str]
    parties: list[str]


class AuditResponse(_Open):
    entries: list[AuditEntryJson]
    limit: int


class HealthResponse(_Open):
    status: str


class CheckpointResponse(_Open):
    status: str
    height: int


class VerdictJson(_Open):
    """``reason``: valid | malformed | bad_signature | issuer_revoked | untrusted_key | revoked |
    not_yet_valid | expired (see ``modules/identity/attestations.py``)."""

    valid: bool
    reason: str
    detail: str


class AttestationSummaryJson(_Open):
    """An anchored attestation as listed: heights for ``anchored`` and ``revoked`` (None in force)."""

    id: str
    issuer: str
    subject: str
    schema_: str = Field(alias="schema")
    valid_from_ms: int
    valid_until_ms: int
    anchored: int
    revoked: int | None


class AttestationJson(AttestationSummaryJson):
    """The whole record: the claim's ``fields``, its canonical bytes, the key and signature (hex)."""

    fields: dict[str, str | int]
    claim_cbor: str
    key: str
    signature: str


class ListedAttestationJson(AttestationSummaryJson):
    valid: bool
    verdict: str


class AttestationResponse(_Open):
    """``proof`` is the record's state proof, ``issuer_proof`` the issuer's account record's, against
    one node-signed header."""

    id: str
    attestation: AttestationJson
    verdict: VerdictJson
    checked_at_ms: int
    proof: ProofResponse
    issuer_proof: ProofResponse


class AttestationListResponse(_Open):
    attestations: list[ListedAttestationJson]
    total: int
    offset: int
    limit: int
    checked_at_ms: int
