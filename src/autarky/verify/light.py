"""Light verification: trust a block header, then trust state values proved against it.

A device holds a :class:`TrustAnchor`, set up once from something it trusts (its commissioning, a
QR code, a config file): the chain id and either the node keys whose signed headers it accepts
(an embedded node) or the validator set whose quorum certificates make a header final (the
``nats`` engine). With it, a :class:`ProofBundle` fetched from *any* node (or carried on a USB
stick) is checked with no node running:

1. the header is for the anchor's chain and is final: signed by a trusted node key, or certified
   by a quorum of the anchor's validators (the same :func:`~autarky.engines.ordering.verify_certificate`
   every node runs);
2. each (key, value, proof) recomputes the header's state root (inclusion, or exclusion when the
   value is None).

The result is a :class:`VerifiedState`: a read-only state that answers only the keys it proved
and refuses any other with ``verify.not_proven``. It has the shape of the ledger's ``StateReader``,
so the modules' own readers (an account's keys, a grant chain, an attestation, a balance) run on it
unchanged: a device checks exactly what the ledger checks.

Failures are :class:`VerifyError` with a stable ``code``; nothing here reads a clock (the caller
passes ``now_ms`` where freshness matters) or does any I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.crypto.domains import Domain, check_chain_id
from autarky.crypto.keys import PUBLIC_KEY_BYTES, InvalidKey, PublicKey, check_public_key
from autarky.encoding import DecodeError, canonical_decode, canonical_encode, decode_trusted
from autarky.engines.ordering import Certificate, verify_certificate
from autarky.ledger import smt
from autarky.ledger.block import BlockHeader

MAX_BUNDLE_BYTES = 4 * 1024 * 1024
"""The largest encoded proof bundle :meth:`ProofBundle.decode` accepts."""
MAX_BUNDLE_ENTRIES = 1024

BUNDLE_VERSION = 1


class VerifyError(Exception):
    """Something could not be verified. ``code`` is stable (see :data:`CODES`)."""

    def __init__(self, code: str, message: str) -> None:
        assert code in CODES, f"unknown verify code {code}"
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


CODES: dict[str, str] = {
    "verify.malformed": "the bundle or one of its parts is not well formed",
    "verify.wrong_chain": "the header is for another chain than the trust anchor's",
    "verify.no_evidence": "the header carries neither a node signature nor a certificate the anchor can use",
    "verify.untrusted_signer": "the header is signed by a key the anchor does not trust",
    "verify.bad_signature": "the header's signature does not verify",
    "verify.bad_certificate": "the certificate does not prove the header final under the anchor's validators",
    "verify.bad_proof": "a proof does not lead to the header's state root",
    "verify.not_proven": "the key was not among the proved ones",
    "verify.not_provable": "a light client cannot prove a range of keys (only single keys)",
    "verify.stale": "the proved state is older than the freshness bound allows",
    "verify.older": "the bundle is for an earlier block than the state already held",
}


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """What a device trusts: the chain, and the node keys or validators that make a header final.

    ``node_keys``: raw Ed25519 keys of nodes whose signed header is final (the embedded engine has one
    node, and its blocks are final once signed). ``validators``: the validator set whose quorum
    certificate makes a header final (the ``nats`` engine). Either may be empty, not both.
    """

    chain_id: str
    node_keys: tuple[bytes, ...] = ()
    validators: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        try:
            check_chain_id(self.chain_id)
            for key in (*self.node_keys, *self.validators):
                check_public_key(key)
        except (ValueError, InvalidKey) as exc:
            raise VerifyError("verify.malformed", f"trust anchor: {exc}") from exc
        if not self.node_keys and not self.validators:
            raise VerifyError("verify.malformed", "a trust anchor needs node keys or validators")

    @classmethod
    def of_node(cls, chain_id: str, node_did: str) -> TrustAnchor:
        """Trust the headers one node (given by its did:key, as ``/api/v1/status`` shows it) signs."""
        try:
            key = public_key_from_did(node_did)
        except InvalidDid as exc:
            raise VerifyError("verify.malformed", f"node key: {exc}") from exc
        return cls(chain_id, node_keys=(key,))

    def with_validators(self, state: VerifiedState) -> TrustAnchor:
        """The anchor after a validator-set change: the set as proved in ``state`` (whose header this
        anchor already trusts), so a device follows governance without being set up again."""
        from autarky.modules.validators import SET_KEY

        raw = state.get(SET_KEY)
        if raw is None:
            raise VerifyError("verify.not_proven", "the proved state holds no validator set")
        validators = tuple(decode_trusted(raw))
        return TrustAnchor(self.chain_id, self.node_keys, validators)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "node_keys": [key.hex() for key in self.node_keys],
            "validators": [key.hex() for key in self.validators],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrustAnchor:
        try:
            return cls(
                data["chain_id"],
                tuple(bytes.fromhex(key) for key in data.get("node_keys", ())),
                tuple(bytes.fromhex(key) for key in data.get("validators", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise VerifyError("verify.malformed", f"trust anchor: {exc}") from exc


@dataclass(frozen=True, slots=True)
class TrustedHeader:
    """A header the anchor accepts as final, and how (``"node-signature"`` or ``"certificate"``)."""

    header: BlockHeader
    how: str

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def time_ms(self) -> int:
        return self.header.time_ms


def trust_header(
    header: BlockHeader,
    anchor: TrustAnchor,
    *,
    signature: bytes | None = None,
    signer: bytes | None = None,
    certificate: Certificate | None = None,
) -> TrustedHeader:
    """``header`` as final under ``anchor``, or :class:`VerifyError`.

    A certificate is checked first when the anchor has validators; else a node signature by one of
    the anchor's node keys.
    """
    if header.chain_id != anchor.chain_id:
        raise VerifyError(
            "verify.wrong_chain", f"header of chain {header.chain_id!r}, anchor for {anchor.chain_id!r}"
        )
    if certificate is not None and anchor.validators:
        problems = verify_certificate(certificate, anchor.chain_id, anchor.validators)
        if (certificate.height, certificate.block_hash, certificate.state_root) != (
            header.height,
            header.hash,
            header.state_root,
        ):
            problems.append("the certificate is for another block")
        if problems:
            raise VerifyError("verify.bad_certificate", "; ".join(problems))
        return TrustedHeader(header, "certificate")
    if signature is not None and signer is not None and anchor.node_keys:
        if signer not in anchor.node_keys:
            raise VerifyError("verify.untrusted_signer", f"header signed by {signer.hex()}")
        if not PublicKey(signer).verify(Domain.BLOCK_HEADER, header.encode(), signature, header.chain_id):
            raise VerifyError("verify.bad_signature", f"header {header.height} signature does not verify")
        return TrustedHeader(header, "node-signature")
    raise VerifyError(
        "verify.no_evidence",
        "the anchor trusts "
        + ("validators (send a certificate)" if anchor.validators else "node keys (send a node signature)"),
    )


class VerifiedState:
    """State values proved against one trusted header; a ``StateReader`` for just those keys.

    ``get`` answers a proved value (None for a proved absence) and raises ``verify.not_proven`` for
    a key that was not proved: never "absent" for something it does not know.
    """

    __slots__ = ("_values", "trusted")

    def __init__(self, trusted: TrustedHeader, values: Mapping[str, bytes | None]) -> None:
        self.trusted = trusted
        self._values = dict(values)

    @property
    def header(self) -> BlockHeader:
        return self.trusted.header

    @property
    def keys(self) -> list[str]:
        return sorted(self._values)

    def get(self, key: str) -> bytes | None:
        try:
            return self._values[key]
        except KeyError:
            raise VerifyError(
                "verify.not_proven", f"no proof of {key!r} at height {self.header.height}"
            ) from None

    def iter_prefix(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        raise VerifyError("verify.not_provable", f"cannot list keys under {prefix!r} from single-key proofs")

    def check_fresh(self, now_ms: int, max_age_ms: int) -> None:
        """``verify.stale`` when this state's block is more than ``max_age_ms`` older than ``now_ms``."""
        age = now_ms - self.header.time_ms
        if age > max_age_ms:
            raise VerifyError(
                "verify.stale",
                f"proved at block {self.header.height}, {age} ms before now; the bound is {max_age_ms} ms",
            )


@dataclass(frozen=True, slots=True)
class ProofBundle:
    """A header, the evidence that it is final, and proved state values: what a device needs.

    Built from a node's ``GET /api/v1/proofs`` answer (:meth:`from_json`) and carried as canonical
    CBOR (:meth:`encode` / :meth:`decode`); nothing in it is trusted until :meth:`verify`.
    """

    header: BlockHeader
    entries: tuple[tuple[str, bytes | None, smt.Proof], ...]
    signature: bytes | None = None
    signer: bytes | None = None
    certificate: Certificate | None = None

    def verify(self, anchor: TrustAnchor) -> VerifiedState:
        """The proved values, once the header is final under ``anchor`` and every proof checks."""
        trusted = trust_header(
            self.header, anchor, signature=self.signature, signer=self.signer, certificate=self.certificate
        )
        values: dict[str, bytes | None] = {}
        for key, value, proof in self.entries:
            if not smt.verify(self.header.state_root, key, value, proof):
                raise VerifyError(
                    "verify.bad_proof",
                    f"the proof of {key!r} does not lead to block {self.header.height}'s root",
                )
            values[key] = value
        return VerifiedState(trusted, values)

    # -- carrying it ----------------------------------------------------------------------------------
    def encode(self) -> bytes:
        return canonical_encode(
            {
                "v": BUNDLE_VERSION,
                "header": self.header.encode(),
                "signature": self.signature,
                "signer": self.signer,
                "certificate": None if self.certificate is None else self.certificate.to_cbor(),
                "entries": [[key, value, proof.encode()] for key, value, proof in self.entries],
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> ProofBundle:
        if type(data) is not bytes or len(data) > MAX_BUNDLE_BYTES:
            raise VerifyError("verify.malformed", f"a bundle is bytes of at most {MAX_BUNDLE_BYTES}")
        try:
            body = canonical_decode(data, max_bytes=MAX_BUNDLE_BYTES)
        except DecodeError as exc:
            raise VerifyError("verify.malformed", f"bundle is not canonical CBOR: {exc}") from exc
        try:
            if type(body) is not dict or type(body.get("v")) is not int or body.get("v") != BUNDLE_VERSION:
                raise ValueError(f"a version {BUNDLE_VERSION} bundle map is expected")
            entries = body["entries"]
            if type(entries) is not list or len(entries) > MAX_BUNDLE_ENTRIES:
                raise ValueError(f"entries must be a list of at most {MAX_BUNDLE_ENTRIES}")
            parsed = []
            for entry in entries:
                key, value, proof = entry
                if type(key) is not str or (value is not None and type(value) is not bytes):
                    raise ValueError("an entry is [text key, bytes value or null, proof]")
                parsed.append((key, value, smt.Proof.decode(proof)))
            certificate = body["certificate"]
            return cls(
                header=BlockHeader.decode(body["header"]),
                entries=tuple(parsed),
                signature=_optional_bytes(body["signature"], 64),
                signer=_optional_bytes(body["signer"], PUBLIC_KEY_BYTES),
                certificate=None if certificate is None else _certificate(certificate),
            )
        except VerifyError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise VerifyError("verify.malformed", f"bundle: {exc}") from exc

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProofBundle:
        """From the API's ``GET /api/v1/proofs`` answer (hex everywhere; see docs/api.md)."""
        try:
            header = header_from_json(data["header"])
            entries = tuple(
                (
                    entry["key"],
                    None if entry["value"] is None else bytes.fromhex(entry["value"]),
                    smt.Proof.decode(bytes.fromhex(entry["proof"])),
                )
                for entry in data["entries"]
            )
            certificate = data.get("certificate")
            signer = data.get("node_key")
            return cls(
                header=header,
                entries=entries,
                signature=None if data.get("signature") is None else bytes.fromhex(data["signature"]),
                signer=None if signer is None else public_key_from_did(signer),
                certificate=None
                if certificate is None
                else Certificate(
                    certificate["height"],
                    bytes.fromhex(certificate["block_hash"]),
                    bytes.fromhex(certificate["state_root"]),
                    tuple(bytes.fromhex(vote) for vote in certificate["votes"]),
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError, InvalidDid) as exc:
            raise VerifyError("verify.malformed", f"proof answer: {exc}") from exc


def _optional_bytes(value: Any, size: int) -> bytes | None:
    if value is None:
        return None
    if type(value) is not bytes or len(value) != size:
        raise ValueError(f"expected {size} bytes")
    return value


def _certificate(data: Any) -> Certificate:
    height, block_hash, state_root, votes = data
    if type(height) is not int or type(votes) is not list or not all(type(v) is bytes for v in votes):
        raise ValueError("a certificate is [height, block hash, state root, [vote...]]")
    if (
        type(block_hash) is not bytes
        or len(block_hash) != 32
        or type(state_root) is not bytes
        or len(state_root) != 32
    ):
        raise ValueError("a certificate's block hash and state root are 32 bytes")
    return Certificate(height, block_hash, state_root, tuple(votes))


def header_from_json(header: Mapping[str, Any]) -> BlockHeader:
    """The header in an API answer, checked against the hash the answer states (ValueError if not)."""
    parsed = BlockHeader(
        header["chain_id"],
        header["height"],
        bytes.fromhex(header["prev_hash"]),
        header["time_ms"],
        header["tx_count"],
        bytes.fromhex(header["tx_root"]),
        bytes.fromhex(header["result_root"]),
        bytes.fromhex(header["state_root"]),
    )
    if parsed.hash.hex() != header["hash"]:
        raise ValueError("the header's hash does not match its fields")
    return parsed


def bundle_keys(*groups: Sequence[str]) -> list[str]:
    """Keys of several groups, each once, in order (for one ``/proofs`` request)."""
    seen: dict[str, None] = {}
    for group in groups:
        for key in group:
            seen.setdefault(key, None)
    return list(seen)
