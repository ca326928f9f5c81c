"""A typed async client for the node's HTTP API.

    async with AutarkyClient("http://127.0.0.1:8620") as client:
        result = await client.send(key, to=other_did, asset="aut", amount=10)   # committed on return
        account = await client.account(key.did)
        answer = await client.proof(f"bank/bal/{key.did}/aut")
        assert verify_proof(answer, node_key=trusted_node_did)
        checked = await client.attestation(attestation_id)           # record, verdict, two proofs
        verdict = verify_attestation(checked, node_key=trusted_node_did, now_ms=now_ms)

The same client talks to an application in the same process through the transport seam:
``AutarkyClient("http://node", transport=httpx.ASGITransport(create_app(node)))``.

Exceptions (every one carries ``status``, ``code`` and ``message``)::

    ClientError                 any failed call; also a malformed answer (code ``client.bad_answer``)
    ├── Rejected                the node refused the transaction or the request (4xx, typed code)
    ├── NotFound                no such block, transaction, DID or route (404)
    └── Unavailable             503 (mempool full, node not ready or faulty), or the node is unreachable;
                                ``retry_after`` in seconds when the node said so

A transaction that was committed but failed (its receipt code is not ``ok``; the fee is still paid)
is not an exception: :class:`Submission` says so with ``ok`` False and its ``code``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.crypto.domains import Domain
from autarky.crypto.keys import InvalidKey, PublicKey, SigningKey
from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.engines.ordering import Certificate, verify_certificate
from autarky.ledger import smt
from autarky.ledger.block import BlockHeader
from autarky.ledger.errors import TxError
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.bank import messages as bank_messages
from autarky.modules.identity import attestations as attestation_checks
from autarky.modules.identity import keeper as identity_keeper
from autarky.modules.identity import messages as identity_messages
from autarky.modules.identity.attestations import Verdict
from autarky.modules.identity.claims import Claim, SignedClaim, attestation_id
from autarky.modules.identity.keeper import AttestationRecord
from autarky.modules.validators import SET_KEY as VALIDATOR_SET_KEY
from autarky.verify.light import ProofBundle, header_from_json

__all__ = [
    "Account",
    "AttestationAnswer",
    "AutarkyClient",
    "ClientError",
    "NotFound",
    "Rejected",
    "StateProof",
    "Submission",
    "Unavailable",
    "header_from_json",
    "verify_attestation",
    "verify_header",
    "verify_proof",
]

BAD_ANSWER = "client.bad_answer"
UNREACHABLE = "client.unreachable"
EVENTS_READ_TIMEOUT_S = 60.0
"""The server sends a keep-alive comment every 15 s, so a silent minute means a dead stream."""


class ClientError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if status == 0 else f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Rejected(ClientError):
    """The node refused the transaction or the request; ``code`` says why (``core.*``, ``api.*`` ...)."""


class NotFound(ClientError):
    pass


class Unavailable(ClientError):
    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Submission:
    """The node's answer to a submission. ``status``: accepted | committed | exists."""

    tx_hash: str
    status: str
    code: str | None
    detail: str
    height: int | None
    receipt: dict[str, Any] | None
    final: bool | None = None
    """With ``final=True`` submissions: whether the block holding it is certified by a quorum."""

    @property
    def committed(self) -> bool:
        return self.height is not None

    @property
    def ok(self) -> bool:
        """Admitted, or committed with code ``ok``."""
        return self.receipt["ok"] is True if self.receipt is not None else self.code in (None, "node.timeout")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Submission:
        return cls(
            data["tx_hash"],
            data["status"],
            data.get("code"),
            data.get("detail", ""),
            data.get("height"),
            data.get("receipt"),
            data.get("final"),
        )


@dataclass(frozen=True, slots=True)
class Account:
    did: str
    sequence: int
    committed_sequence: int
    identity: dict[str, Any] | None
    balances: dict[str, int]
    guardrails: dict[str, Any] | None
    window_spent: dict[str, int]
    frozen: bool
    escrow: dict[str, Any] = field(default_factory=dict)
    """Open escrow locks: ``paid`` and ``beneficiary`` lists (see ``GET /api/v1/escrow/locks``)."""
    status: str = "unregistered"
    """``unregistered`` | ``active`` | ``paused`` (its owner's kill-switch, see ``pause``) | ``revoked``."""
    pause: dict[str, Any] | None = None
    """While paused: ``{"reason", "by", "height"}``."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        identity = data.get("identity")
        # A node older than the kill-switch answers no "status": the identity record's says it.
        status = data.get("status") or ("unregistered" if identity is None else str(identity.get("status")))
        return cls(
            data["did"],
            data["sequence"],
            data["committed_sequence"],
            identity,
            dict(data["balances"]),
            data.get("guardrails"),
            dict(data.get("window_spent", {})),
            bool(data["frozen"]),
            dict(data.get("escrow", {})),
            str(status),
            data.get("pause"),
        )


@dataclass(frozen=True, slots=True)
class StateProof:
    """A state value with its proof and the node-signed header it is proved against (not yet checked)."""

    key: str
    value: bytes | None
    proof: smt.Proof
    header: BlockHeader
    signature: bytes
    node_key: str
    """The node key the server claims; check against a key you trust, not this one."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StateProof:
        try:
            proof = data["proof"]
            other = proof["other_leaf"]
            parsed_header = header_from_json(data["header"])
            return cls(
                key=data["key"],
                value=None if data["value"] is None else bytes.fromhex(data["value"]),
                proof=smt.Proof(
                    bytes.fromhex(proof["path"]),
                    proof["depth"],
                    bytes.fromhex(proof["bitmap"]),
                    tuple(bytes.fromhex(sibling) for sibling in proof["siblings"]),
                    None
                    if other is None
                    else (bytes.fromhex(other["path"]), bytes.fromhex(other["value_hash"])),
                ),
                header=parsed_header,
                signature=bytes.fromhex(data["signature"]),
                node_key=data["node_key"],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # InvalidProof is a ValueError
            raise ClientError(200, BAD_ANSWER, f"malformed proof answer: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AttestationAnswer:
    """``GET /api/v1/attestations/{id}``: the record, the node's verdict, and the two state proofs
    (of the record and of the issuer's account record) that let you recompute the verdict with
    :func:`verify_attestation` instead of trusting it."""

    id: bytes
    record: AttestationRecord
    verdict: Verdict
    """What the node says; :func:`verify_attestation` recomputes it from the proofs."""
    checked_at_ms: int
    proof: StateProof
    issuer_proof: StateProof

    @property
    def claim(self) -> Claim:
        return self.record.claim

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttestationAnswer:
        try:
            proof = StateProof.from_json(data["proof"])
            if proof.value is None:
                raise ValueError("the record's proof shows no value")
            verdict = data["verdict"]
            return cls(
                id=bytes.fromhex(data["id"]),
                record=attestation_checks.decode_record(proof.value),
                verdict=Verdict(str(verdict["reason"]), str(verdict["detail"])),
                checked_at_ms=int(data["checked_at_ms"]),
                proof=proof,
                issuer_proof=StateProof.from_json(data["issuer_proof"]),
            )
        except (KeyError, TypeError, ValueError) as exc:  # InvalidRecord is a ValueError
            raise ClientError(200, BAD_ANSWER, f"malformed attestation answer: {exc}") from exc


def verify_attestation(
    answer: AttestationAnswer, node_key: str, now_ms: int, chain_id: str | None = None
) -> Verdict:
    """The verdict on ``answer``'s attestation at ``now_ms``, computed here from its two state proofs
    against a header signed by ``node_key`` (a node you trust), never from what the node says.

    Raises :class:`ClientError` (``client.bad_proof``) when a proof does not verify, proves another
    key or another claim, or the two proofs are not against the same header.
    """
    record_key = identity_keeper.attestation_key(answer.id)
    value = answer.proof.value
    problems = []
    if answer.proof.key != record_key or value is None or not verify_proof(answer.proof, node_key, chain_id):
        problems.append(f"the proof of {record_key} does not verify")
    if attestation_id(answer.record.claim_bytes) != answer.id:
        problems.append("the proved record is not the claim with this id")
    try:
        issuer_key = identity_keeper.account_key(answer.claim.issuer)
    except TxError as exc:
        raise ClientError(0, "client.bad_proof", f"the proved claim is malformed: {exc}") from exc
    if answer.issuer_proof.key != issuer_key or not verify_proof(answer.issuer_proof, node_key, chain_id):
        problems.append(f"the proof of {issuer_key} does not verify")
    if answer.issuer_proof.header != answer.proof.header:
        problems.append("the two proofs are against different headers")
    if problems or value is None:
        raise ClientError(0, "client.bad_proof", "; ".join(problems))
    try:
        account = None if answer.issuer_proof.value is None else canonical_decode(answer.issuer_proof.value)
    except DecodeError as exc:
        raise ClientError(0, "client.bad_proof", f"the issuer's proved account record: {exc}") from exc
    if account is not None and not isinstance(account, dict):
        raise ClientError(0, "client.bad_proof", "the issuer's proved account record is not a map")
    # The record checked is the one decoded from the proved value, never a field of the answer.
    return attestation_checks.check_proved(attestation_checks.decode_record(value), account, now_ms)


def verify_header(header: BlockHeader, signature: bytes, node_key: str) -> bool:
    """True when ``node_key`` (a did:key) signed ``header`` in the block-header domain of its chain."""
    try:
        public_key = PublicKey(public_key_from_did(node_key))
        return public_key.verify(Domain.BLOCK_HEADER, header.encode(), signature, header.chain_id)
    except (InvalidDid, InvalidKey, ValueError):
        return False


def verify_proof(answer: StateProof, node_key: str, chain_id: str | None = None) -> bool:
    """True when ``node_key`` signed the header and the proof shows ``answer.value`` under ``answer.key``.

    ``node_key`` is the did:key of a node you trust (for instance read once from ``status()`` and
    pinned); ``chain_id``, when given, must be the header's. An absent value (None) is checked with
    an exclusion proof. Never raises for a bad answer; returns False.
    """
    header = answer.header
    if chain_id is not None and header.chain_id != chain_id:
        return False
    return verify_header(header, answer.signature, node_key) and smt.verify(
        header.state_root, answer.key, answer.value, answer.proof
    )


def _error_from(response: httpx.Response) -> ClientError:
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = BAD_ANSWER, response.text[:200] or response.reason_phrase
    status = response.status_code
    if status == 404:
        return NotFound(status, code, message)
    if status == 503:
        retry_after = response.headers.get("retry-after")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return Unavailable(status, code, message, seconds)
    if 400 <= status < 500:
        return Rejected(status, code, message)
    return ClientError(status, code, message)


class AutarkyClient:
    """Async client of one node. Use as ``async with`` or call :meth:`aclose`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30,
    ) -> None:
        headers = {"Accept": "application/json"}
        if api_key is not None:
            headers["X-API-Key"] = api_key
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url, transport=transport, timeout=timeout, headers=headers
        )
        self._chain_id: str | None = None

    async def __aenter__(self) -> AutarkyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing -------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(0, UNREACHABLE, f"{method} {path}: {exc!r}") from exc

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if not response.is_success:
            raise _error_from(response)
        try:
            return response.json()
        except ValueError as exc:
            raise ClientError(response.status_code, BAD_ANSWER, f"{path} answered no JSON") from exc

    # -- reads ----------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = await self._json("GET", "/api/v1/status")
        self._chain_id = status["chain_id"]
        return status

    async def chain_id(self) -> str:
        if self._chain_id is None:
            await self.status()
        assert self._chain_id is not None
        return self._chain_id

    async def block(self, height: int | Literal["latest"] = "latest") -> dict[str, Any]:
        block: dict[str, Any] = await self._json("GET", f"/api/v1/blocks/{height}")
        return block

    async def blocks(self, from_height: int | None = None, limit: int = 20) -> dict[str, Any]:
        params: dict[str, int] = {"limit": limit}
        if from_height is not None:
            params["from"] = from_height
        page: dict[str, Any] = await self._json("GET", "/api/v1/blocks", params=params)
        return page

    async def tx(self, tx_hash: str) -> dict[str, Any]:
        record: dict[str, Any] = await self._json("GET", f"/api/v1/tx/{tx_hash}")
        return record

    async def account(self, did: str) -> Account:
        return Account.from_json(await self._json("GET", f"/api/v1/accounts/{did}"))

    async def balances(self, did: str) -> dict[str, int]:
        answer = await self._json("GET", f"/api/v1/accounts/{did}/balances")
        return dict(answer["balances"])

    async def machines(self, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        page: dict[str, Any] = await self._json(
            "GET", "/api/v1/machines", params={"offset": offset, "limit": limit}
        )
        return page

    async def did_document(self, did: str) -> dict[str, Any]:
        document: dict[str, Any] = await self._json(
            "GET", f"/api/v1/did/{did}", headers={"Accept": "application/did+json"}
        )
        return document

    async def proof(self, key: str) -> StateProof:
        return StateProof.from_json(await self._json("GET", "/api/v1/proof", params={"key": key}))

    async def proof_bundle(self, keys: Sequence[str], final: bool = True) -> ProofBundle:
        """Proofs of ``keys`` against one header (by default the latest final one), not yet checked:
        check with ``bundle.verify(anchor)`` (see :mod:`autarky.verify`). Raises ``verify.malformed``
        (a :class:`~autarky.verify.VerifyError`) for an answer that is not a bundle."""
        params = [("key", key) for key in keys] + [("final", "true" if final else "false")]
        return ProofBundle.from_json(await self._json("GET", "/api/v1/proofs", params=params))

    async def audit(
        self,
        *,
        machine: str | None = None,
        grant: str | None = None,
        action: str | None = None,
        key: str | None = None,
        from_height: int | None = None,
        to_height: int | None = None,
        ok: bool | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries, newest first (see ``GET /api/v1/audit``)."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (
            ("machine", machine),
            ("grant", grant),
            ("action", action),
            ("key", key),
            ("from", from_height),
            ("to", to_height),
        ):
            if value is not None:
                params[name] = value
        if ok is not None:
            params["ok"] = "true" if ok else "false"
        answer = await self._json("GET", "/api/v1/audit", params=params)
        entries: list[dict[str, Any]] = answer["entries"]
        return entries

    async def attestation(self, attestation: bytes | str, at_ms: int | None = None) -> AttestationAnswer:
        """An anchored attestation by id (32 bytes or 64 hex), the node's verdict at ``at_ms``
        (default: the node's clock) and the proofs to check it (:func:`verify_attestation`)."""
        id_hex = attestation.hex() if isinstance(attestation, bytes) else attestation
        params = {} if at_ms is None else {"at_ms": at_ms}
        return AttestationAnswer.from_json(
            await self._json("GET", f"/api/v1/attestations/{id_hex}", params=params)
        )

    async def attestations(
        self,
        subject: str | None = None,
        issuer: str | None = None,
        offset: int = 0,
        limit: int = 100,
        at_ms: int | None = None,
    ) -> dict[str, Any]:
        """Attestations about ``subject`` and/or by ``issuer``, newest first, each with ``valid`` and
        ``verdict``: ``{"attestations": [...], "total", "offset", "limit", "checked_at_ms"}``."""
        params: dict[str, str | int] = {"offset": offset, "limit": limit}
        for name, value in (("subject", subject), ("issuer", issuer), ("at_ms", at_ms)):
            if value is not None:
                params[name] = value
        page: dict[str, Any] = await self._json("GET", "/api/v1/attestations", params=params)
        return page

    verify_proof = staticmethod(verify_proof)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Live events as dicts (``type``: hello, block, tx), until the stream ends or you stop iterating."""
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, EVENTS_READ_TIMEOUT_S))
        try:
            async with self._http.stream(
                "GET", "/api/v1/events", timeout=timeout, headers={"Accept": "text/event-stream"}
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise _error_from(response)
                async for event in _parse_sse(response.aiter_lines()):
                    yield event
        except httpx.TransportError as exc:
            raise Unavailable(0, UNREACHABLE, f"event stream: {exc!r}") from exc

    # -- writes ---------------------------------------------------------------------------------

    async def submit(self, tx: SignedTx | bytes, wait: bool = True, final: bool = False) -> Submission:
        """Submit a signed transaction. Raises :class:`Rejected` when the node refuses it.

        ``wait``: answer once committed; ``final``: once the block is certified by a quorum of
        validators (``Submission.final``; on the embedded engine a committed block is final).
        """
        raw = tx.raw if isinstance(tx, SignedTx) else tx
        params = {"wait": "true" if wait else "false"}
        if final:
            params["final"] = "true"
        response = await self._request(
            "POST", "/api/v1/tx", content=raw, params=params, headers={"Content-Type": "application/cbor"}
        )
        if response.status_code in (200, 202):
            return Submission.from_json(response.json())
        raise _error_from(response)

    async def submit_many(self, txs: Sequence[SignedTx | bytes]) -> list[Submission | ClientError]:
        """Submit transactions in one request without waiting for blocks; one answer per transaction
        (a :class:`Submission`, or the :class:`ClientError` its rejection would raise)."""
        raws = [tx.raw if isinstance(tx, SignedTx) else tx for tx in txs]
        response = await self._request(
            "POST",
            "/api/v1/txs",
            content=canonical_encode(raws),
            headers={"Content-Type": "application/cbor"},
        )
        if response.status_code != 200:
            raise _error_from(response)
        answers: list[Submission | ClientError] = []
        for item in response.json()["results"]:
            if item["status"] == "rejected":
                error_type = Unavailable if item.get("code") == "engine.unavailable" else Rejected
                answers.append(
                    error_type(response.status_code, item.get("code") or "", item.get("detail", ""))
                )
            else:
                answers.append(Submission.from_json(item))
        return answers

    async def certificate(self, height: int) -> Certificate | None:
        """The finality certificate of block ``height``, checked here against the validator set the
        node proves (a state proof of ``validators/set`` under the node's signed header: pin the node
        key you trust with :func:`verify_proof` for more); None while the block is not final.

        Raises :class:`ClientError` when the certificate does not verify.
        """
        block = await self.block(height)
        data = block.get("certificate")
        if data is None:
            return None
        certificate = Certificate(
            data["height"],
            bytes.fromhex(data["block_hash"]),
            bytes.fromhex(data["state_root"]),
            tuple(bytes.fromhex(vote) for vote in data["votes"]),
        )
        proof = await self.proof(VALIDATOR_SET_KEY)
        chain_id = await self.chain_id()
        if not verify_proof(proof, proof.node_key, chain_id):
            raise ClientError(0, "client.bad_proof", "the validator set's state proof does not verify")
        validators = () if proof.value is None else tuple(canonical_decode(proof.value))
        problems = verify_certificate(certificate, chain_id, validators)
        if certificate.block_hash.hex() != block["header"]["hash"]:
            problems.append("the certificate is for another block")
        if problems:
            raise ClientError(0, "client.bad_certificate", "; ".join(problems))
        return certificate

    async def submit_messages(
        self,
        key: SigningKey,
        messages: Sequence[Mapping[str, Any]],
        fee: int = 1,
        cosigners: Iterable[SigningKey] = (),
        wait: bool = True,
        memo: str = "",
        expiry_height: int = 0,
        sender: str | None = None,
    ) -> Submission:
        """Build, sign and submit a transaction from ``sender`` (default ``key.did``; give it for an
        account whose key was rotated) with the node's next sequence."""
        sender = key.did if sender is None else sender
        account = await self.account(sender)
        body = TxBody(
            await self.chain_id(),
            sender,
            account.sequence,
            fee,
            expiry_height,
            tuple(dict(message) for message in messages),
            memo,
        )
        return await self.submit(sign_tx(body, key, tuple(cosigners)), wait=wait)

    async def check_tx(
        self, body: TxBody | bytes, key: bytes, cosigners: Sequence[bytes] = ()
    ) -> dict[str, Any]:
        """Pre-check an unsigned body (``POST /api/v1/tx/check``): the receipt it would get if signed
        by ``key`` (public key bytes) and ``cosigners`` and put in the next block, as
        ``{code, ok, detail, events, height, time_ms}``. Nothing is signed or written."""
        body_bytes = body.encode() if isinstance(body, TxBody) else body
        payload = {
            "body": body_bytes.hex(),
            "key": key.hex(),
            "cosigners": [item.hex() for item in cosigners],
        }
        answer: dict[str, Any] = await self._json("POST", "/api/v1/tx/check", json=payload)
        return answer

    async def send(
        self, key: SigningKey, to: str, asset: str, amount: int, fee: int = 1, wait: bool = True
    ) -> Submission:
        """Transfer ``amount`` base units of ``asset`` from ``key.did`` to ``to``."""
        return await self.submit_messages(key, [bank_messages.send(to, asset, amount)], fee=fee, wait=wait)

    async def attest(
        self, key: SigningKey, signed: SignedClaim, fee: int = 1, wait: bool = True, sender: str | None = None
    ) -> Submission:
        """Anchor ``signed`` (``claims.sign_claim``); ``key`` signs the transaction for the issuer
        (``sender``, default ``key.did``) with a full-scope key."""
        message = identity_messages.attest(signed)
        return await self.submit_messages(
            key, [message], fee=fee, wait=wait, sender=sender or signed.claim.issuer
        )

    async def revoke_attestation(
        self, key: SigningKey, attestation: bytes, fee: int = 1, wait: bool = True, sender: str | None = None
    ) -> Submission:
        """The issuer (``sender``, default ``key.did``) revokes one of its attestations."""
        message = identity_messages.revoke_attestation(attestation)
        return await self.submit_messages(key, [message], fee=fee, wait=wait, sender=sender)

    async def set_service(
        self,
        key: SigningKey,
        did: str,
        service_id: str,
        service_type: str,
        endpoint: str,
        fee: int = 1,
        wait: bool = True,
        sender: str | None = None,
    ) -> Submission:
        """Add or replace the service ``service_id`` of ``did``; signed by ``did`` itself (a full-scope
        key) or its owner (``sender``, default ``key.did``)."""
        message = identity_messages.set_service(did, service_id, service_type, endpoint)
        return await self.submit_messages(key, [message], fee=fee, wait=wait, sender=sender)

    async def remove_service(
        self,
        key: SigningKey,
        did: str,
        service_id: str,
        fee: int = 1,
        wait: bool = True,
        sender: str | None = None,
    ) -> Submission:
        message = identity_messages.remove_service(did, service_id)
        return await self.submit_messages(key, [message], fee=fee, wait=wait, sender=sender)

    async def escrow_locks(self, account: str, role: str = "payer") -> dict[str, Any]:
        """Open escrow locks ``account`` pays (``role`` "payer") or is named in ("beneficiary")."""
        document: dict[str, Any] = await self._json(
            "GET", "/api/v1/escrow/locks", params={"account": account, "role": role}
        )
        return document

    async def admin_checkpoint(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._json("POST", "/api/v1/admin/checkpoint")
        return answer

    async def oracle_feeds(
        self, prefix: str = "", offset: int = 0, limit: int = 100, at_ms: int | None = None
    ) -> dict[str, Any]:
        """Oracle feeds in name order: ``{"feeds": [...], "offset", "more", "time_ms"}``."""
        params: dict[str, str | int] = {"prefix": prefix, "offset": offset, "limit": limit}
        if at_ms is not None:
            params["at_ms"] = at_ms
        document: dict[str, Any] = await self._json("GET", "/api/v1/oracle/feeds", params=params)
        return document

    async def oracle_feed(self, feed: str, at_ms: int | None = None) -> dict[str, Any]:
        """One feed: configuration, current ``round``, ``latest`` (or None), ``fresh``, ``open_round``."""
        params = {} if at_ms is None else {"at_ms": at_ms}
        document: dict[str, Any] = await self._json("GET", f"/api/v1/oracle/feeds/{feed}", params=params)
        return document

    async def oracle_rounds(
        self, feed: str, first: int | None = None, last: int | None = None, at_ms: int | None = None
    ) -> dict[str, Any]:
        """Stored rounds ``first``..``last`` of a feed, oldest first (at most 100)."""
        params: dict[str, int] = {}
        for name, value in (("from", first), ("to", last), ("at_ms", at_ms)):
            if value is not None:
                params[name] = value
        document: dict[str, Any] = await self._json(
            "GET", f"/api/v1/oracle/feeds/{feed}/rounds", params=params
        )
        return document

    async def data_offers(
        self,
        seller: str | None = None,
        kind: str | None = None,
        withdrawn: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Data offers in id order: ``{"offers": [...], "total", "offset", "limit"}`` (module data)."""
        params: dict[str, str | int] = {"offset": offset, "limit": limit}
        if seller is not None:
            params["seller"] = seller
        if kind is not None:
            params["kind"] = kind
        if withdrawn is not None:
            params["withdrawn"] = "true" if withdrawn else "false"
        document: dict[str, Any] = await self._json("GET", "/api/v1/data/offers", params=params)
        return document

    async def data_offer(self, offer: bytes | str, at_ms: int | None = None) -> dict[str, Any]:
        """One offer (32 bytes or 64 hex) with its required attestations checked by the node at
        ``at_ms`` (``attestations``, ``agent``) and its purchases counted by status."""
        id_hex = offer.hex() if isinstance(offer, bytes) else offer
        params = {} if at_ms is None else {"at_ms": at_ms}
        document: dict[str, Any] = await self._json("GET", f"/api/v1/data/offers/{id_hex}", params=params)
        return document

    async def data_purchases(
        self,
        account: str | None = None,
        offer: bytes | str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Purchases ``account`` made or sold (with ``role``), and/or of ``offer``, in id order."""
        params: dict[str, str | int] = {"offset": offset, "limit": limit}
        if account is not None:
            params["account"] = account
        if offer is not None:
            params["offer"] = offer.hex() if isinstance(offer, bytes) else offer
        if status is not None:
            params["status"] = status
        document: dict[str, Any] = await self._json("GET", "/api/v1/data/purchases", params=params)
        return document

    async def data_purchase(self, purchase: bytes | str) -> dict[str, Any]:
        """One purchase (32 bytes or 64 hex): its lock, grant, deadline, status and key hash."""
        id_hex = purchase.hex() if isinstance(purchase, bytes) else purchase
        document: dict[str, Any] = await self._json("GET", f"/api/v1/data/purchases/{id_hex}")
        return document

    async def market_zones(self) -> dict[str, Any]:
        """Energy market zones, parameters, ``interval_ms`` and ``current_interval``."""
        document: dict[str, Any] = await self._json("GET", "/api/v1/market/zones")
        return document

    async def market_book(self, zone: str, interval: int | None = None) -> dict[str, Any]:
        """One order book (default: the next interval taking orders): ranked ``bids``, ``asks``,
        and its ``clearing`` once cleared."""
        params: dict[str, str | int] = {"zone": zone}
        if interval is not None:
            params["interval"] = interval
        document: dict[str, Any] = await self._json("GET", "/api/v1/market/book", params=params)
        return document

    async def market_prices(
        self, zone: str, from_interval: int | None = None, to_interval: int | None = None, limit: int = 500
    ) -> dict[str, Any]:
        """A zone's clearing records in ``from .. to`` (default: the last 96 intervals), oldest first."""
        params: dict[str, str | int] = {"zone": zone, "limit": limit}
        if from_interval is not None:
            params["from"] = from_interval
        if to_interval is not None:
            params["to"] = to_interval
        document: dict[str, Any] = await self._json("GET", "/api/v1/market/prices", params=params)
        return document

    async def market_order(self, order: bytes | str) -> dict[str, Any]:
        """One order (32 bytes or 64 hex) with its book's clearing record."""
        id_hex = order.hex() if isinstance(order, bytes) else order
        document: dict[str, Any] = await self._json("GET", f"/api/v1/market/orders/{id_hex}")
        return document

    async def provenance_model(self, file_hash: bytes | str) -> dict[str, Any]:
        """A registered model by the sha256 of its file (32 bytes or 64 hex): model id, version,
        kind, card hash, training anchors, registration and retirement heights. Raises
        :class:`NotFound` when the registry has no such model."""
        hash_hex = file_hash.hex() if isinstance(file_hash, bytes) else file_hash
        document: dict[str, Any] = await self._json("GET", f"/api/v1/provenance/models/{hash_hex}")
        return document

    async def metering_params(self) -> dict[str, Any]:
        """``interval_ms``, ``default_tariff`` and ``current_interval`` of module metering."""
        document: dict[str, Any] = await self._json("GET", "/api/v1/metering/params")
        return document

    async def metering_meters(self, subject: str) -> list[dict[str, Any]]:
        """The meters registered to ``subject``, each with its last reading."""
        document = await self._json("GET", "/api/v1/metering/meters", params={"subject": subject})
        meters: list[dict[str, Any]] = document["meters"]
        return meters

    async def metering_meter(self, meter: str) -> dict[str, Any]:
        """One meter (``registered`` false once deregistered); NotFound for a meter never seen."""
        document: dict[str, Any] = await self._json("GET", f"/api/v1/metering/meters/{meter}")
        return document

    async def metering_usage(
        self, account: str, direction: str, from_interval: int | None = None, to_interval: int | None = None
    ) -> dict[str, Any]:
        """Energy per interval ``from .. to`` (default: the last 96), each with ``complete``."""
        params: dict[str, str | int] = {"account": account, "direction": direction}
        if from_interval is not None:
            params["from"] = from_interval
        if to_interval is not None:
            params["to"] = to_interval
        document: dict[str, Any] = await self._json("GET", "/api/v1/metering/usage", params=params)
        return document

    async def metering_bills(
        self, account: str, infra: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """``statements`` (totals and debt per infrastructure and asset), ``debt``, ``bills`` (newest
        first) and the open ``deposits`` of ``account``."""
        params: dict[str, str | int] = {"account": account, "limit": limit}
        if infra is not None:
            params["infra"] = infra
        document: dict[str, Any] = await self._json("GET", "/api/v1/metering/bills", params=params)
        return document

    async def metering_tariff(self, infra: str) -> dict[str, Any] | None:
        """The tariff billing at ``infra`` (``asset``, ``price_per_unit``, ``source``), or None."""
        document = await self._json("GET", f"/api/v1/metering/tariffs/{infra}")
        tariff: dict[str, Any] | None = document["tariff"]
        return tariff

    async def lease_offers(
        self,
        provider: str | None = None,
        kind: str | None = None,
        include_withdrawn: bool = False,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Lease offers, newest first, each with its resource's open ``reservations``; ``total``."""
        params: dict[str, str | int] = {"limit": limit, "all": "true" if include_withdrawn else "false"}
        if provider is not None:
            params["provider"] = provider
        if kind is not None:
            params["kind"] = kind
        document: dict[str, Any] = await self._json("GET", "/api/v1/lease/offers", params=params)
        return document

    async def lease_offer(self, offer: bytes | str) -> dict[str, Any]:
        offer_hex = offer.hex() if isinstance(offer, bytes) else offer
        document: dict[str, Any] = await self._json("GET", f"/api/v1/lease/offers/{offer_hex}")
        return document

    async def leases(self, account: str, status: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Leases ``account`` rents or provides, newest first, each with its ``role``; ``total``."""
        params: dict[str, str | int] = {"account": account, "limit": limit}
        if status is not None:
            params["status"] = status
        document: dict[str, Any] = await self._json("GET", "/api/v1/lease/leases", params=params)
        return document

    async def lease(self, lease: bytes | str) -> dict[str, Any]:
        lease_hex = lease.hex() if isinstance(lease, bytes) else lease
        document: dict[str, Any] = await self._json("GET", f"/api/v1/lease/leases/{lease_hex}")
        return document

    async def lease_params(self) -> dict[str, Any]:
        document: dict[str, Any] = await self._json("GET", "/api/v1/lease/params")
        return document

    async def jobs(
        self, status: str | None = None, account: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """Jobs, newest first (with ``account``: each with the account's ``role``); ``total``."""
        params: dict[str, str | int] = {"limit": limit}
        if status is not None:
            params["status"] = status
        if account is not None:
            params["account"] = account
        document: dict[str, Any] = await self._json("GET", "/api/v1/jobs", params=params)
        return document

    async def job(self, job: bytes | str) -> dict[str, Any]:
        job_hex = job.hex() if isinstance(job, bytes) else job
        document: dict[str, Any] = await self._json("GET", f"/api/v1/jobs/{job_hex}")
        return document

    async def jobs_params(self) -> dict[str, Any]:
        document: dict[str, Any] = await self._json("GET", "/api/v1/jobs/params")
        return document


async def _parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Server-Sent Events to dicts: the JSON ``data`` with ``type`` set from the event name."""
    event_name = "message"
    data: list[str] = []
    async for line in lines:
        if line == "":
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except ValueError as exc:
                    raise ClientError(200, BAD_ANSWER, f"event data is not JSON: {exc}") from exc
                item = dict(payload) if isinstance(payload, dict) else {"data": payload}
                item.setdefault("type", event_name)
                yield item
            event_name, data = "message", []
        elif line.startswith(":"):
            continue  # a comment: the server's keep-alive
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event_name = value
            elif field == "data":
                data.append(value)
