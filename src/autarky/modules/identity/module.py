"""``IdentityModule``: the directory of accounts and keys, and the chain's authenticator.

Other modules see identity only through the narrow interface below (``owner_of``, ``account``,
``is_machine``, ``charge_allowance``, ``did_document``, ``attestation``, ``check_attestation``,
``attestations_about``, ``attestations_by``, ``services``); the executor sees it as the
:class:`~autarky.ledger.router.Authenticator` that decides which keys sign for which account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.crypto.keys import PUBLIC_KEY_BYTES
from autarky.ledger.errors import ACCOUNT_PAUSED, ACCOUNT_REVOKED, UNKNOWN_SIGNER
from autarky.ledger.router import KeyScope, Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.identity import attestations, handlers, keeper
from autarky.modules.identity import did_document as documents
from autarky.modules.identity.attestations import Verdict
from autarky.modules.identity.genesis import init_genesis
from autarky.modules.identity.invariants import check_invariants
from autarky.modules.identity.keeper import AttestationRecord, PauseRecord, ServiceEntry
from autarky.modules.identity.messages import (
    ADD_KEY,
    ATTEST,
    MESSAGE_TYPES,
    PAUSE,
    RECOVER,
    REGISTER,
    REMOVE_KEY,
    REMOVE_SERVICE,
    RESUME,
    REVOKE,
    REVOKE_ATTESTATION,
    ROTATE,
    SET_SERVICE,
    parse_add_key,
    parse_attest,
    parse_pause,
    parse_recover,
    parse_register,
    parse_remove_key,
    parse_remove_service,
    parse_resume,
    parse_revoke,
    parse_revoke_attestation,
    parse_rotate,
    parse_set_service,
)


class IdentityModule(Module):
    name: ClassVar[str] = "identity"
    message_types: ClassVar[tuple[str, ...]] = MESSAGE_TYPES

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        init_genesis(state, config)

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        message_type = message["type"]
        if message_type == REGISTER:
            handlers.register(ctx, parse_register(message))
        elif message_type == ADD_KEY:
            handlers.add_key(ctx, parse_add_key(message))
        elif message_type == REMOVE_KEY:
            handlers.remove_key(ctx, parse_remove_key(message))
        elif message_type == ROTATE:
            handlers.rotate(ctx, parse_rotate(message))
        elif message_type == REVOKE:
            handlers.revoke(ctx, parse_revoke(message))
        elif message_type == RECOVER:
            handlers.recover(ctx, parse_recover(message))
        elif message_type == ATTEST:
            handlers.attest(ctx, parse_attest(message))
        elif message_type == REVOKE_ATTESTATION:
            handlers.revoke_attestation(ctx, parse_revoke_attestation(message))
        elif message_type == SET_SERVICE:
            handlers.set_service(ctx, parse_set_service(message))
        elif message_type == REMOVE_SERVICE:
            handlers.remove_service(ctx, parse_remove_service(message))
        elif message_type == PAUSE:
            handlers.pause(ctx, parse_pause(message))
        elif message_type == RESUME:
            handlers.resume(ctx, parse_resume(message))
        else:
            raise AssertionError(f"the router sent {message_type!r} to identity")

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state)

    # -- Authenticator --------------------------------------------------------------------------------

    def authenticate(self, state: StateReader, account: str, public_key: bytes) -> KeyScope:
        """The scope of ``public_key`` for ``account``.

        A registered account is served by the keys its record lists (``core.unknown_signer`` for any
        other key, then ``core.account_revoked`` if it is revoked and ``core.account_paused`` if its
        owner paused it, following the core precedence).
        An unregistered did:key account is served only by the key inside the DID, with full scope.
        """
        found = keeper.read_key(state, account, public_key)
        if found is None:
            if _is_key_of_did(public_key, account):
                return KeyScope(public_key)
            raise UNKNOWN_SIGNER("an unregistered account signs only with the key inside its did:key")
        status, entry = found
        if entry is None:
            raise UNKNOWN_SIGNER(f"the signing key is not a key of {account}")
        if status != keeper.ACTIVE:
            if status == keeper.PAUSED:
                pause = keeper.read_pause(state, account)
                reason = "" if pause is None or not pause.reason else f": {pause.reason}"
                raise ACCOUNT_PAUSED(f"{account} is paused by its owner{reason}")
            raise ACCOUNT_REVOKED(f"{account} is revoked")
        return KeyScope(public_key, entry.actions, entry.allowance)

    # -- Narrow interface for other modules -----------------------------------------------------------

    def owner_of(self, state: StateReader, account: str) -> str | None:
        """The owner of ``account``; None if it is unregistered or has no owner."""
        record = keeper.read_raw_account(state, account)
        if record is None:
            return None
        owner = record["owner"]
        assert owner is None or type(owner) is str
        return owner

    def account(self, state: StateReader, account: str) -> dict[str, Any] | None:
        """The account record as stored (see README.md), or None when ``account`` is not registered."""
        return keeper.read_raw_account(state, account)

    def is_machine(self, state: StateReader, account: str) -> bool:
        """True for a registered account with an owner."""
        return self.owner_of(state, account) is not None

    def charge_allowance(self, state: Overlay, account: str, key: bytes, asset: str, amount: int) -> None:
        """Count a spend by ``account``'s signing ``key`` against its allowance (see ``keeper``)."""
        keeper.charge_allowance(state, account, key, asset, amount)

    def charge_signer_allowance(self, ctx: TxContext, asset: str, amount: int) -> None:
        """:meth:`charge_allowance` for the transaction's sender and signing key.

        When the key's scope, read at authentication, has no allowance and no key has left the
        account in this transaction, the result is known without reading the account record
        (a no-op), so it is skipped: every debit of a machine's own transaction comes here.
        """
        if ctx.scope.allowance is None and not ctx.scratch.get(handlers.KEYS_CHANGED):
            return
        keeper.charge_allowance(ctx.state, ctx.sender, ctx.scope.key, asset, amount)

    def did_document(self, state: StateReader, did: str, now_ms: int | None = None) -> dict[str, Any]:
        """The W3C DID document of ``did``; raises ``InvalidDid`` (a ValueError) for a non-did:key.

        With ``now_ms``, the attestations it lists say whether they are valid at that time.
        """
        return documents.did_document(state, did, now_ms)

    def attestation(self, state: StateReader, attestation_id: bytes) -> AttestationRecord | None:
        """The anchored attestation with this id (``sha256`` of its claim bytes), or None."""
        return keeper.read_attestation(state, attestation_id)

    def check_attestation(
        self, state: StateReader, attestation_id: bytes, now_ms: int
    ) -> tuple[AttestationRecord | None, Verdict]:
        """The attestation and its verdict at ``now_ms`` (see ``attestations.py``), from ``state``."""
        return attestations.resolve_attestation(state, attestation_id, now_ms)

    def attestations_about(self, state: StateReader, subject: str) -> list[bytes]:
        """Ids of the attestations about ``subject``, in anchoring order."""
        return keeper.attestation_ids_about(state, subject)

    def attestations_by(self, state: StateReader, issuer: str) -> list[bytes]:
        """Ids of the attestations ``issuer`` anchored, in anchoring order."""
        return keeper.attestation_ids_by(state, issuer)

    def pause_record(self, state: StateReader, did: str) -> PauseRecord | None:
        """Why and since when ``did`` is paused; None when it is not paused."""
        return keeper.read_pause(state, did)

    def services(self, state: StateReader, did: str) -> list[ServiceEntry]:
        """The services of ``did``, in service-id order."""
        return keeper.read_services(state, did)


def _is_key_of_did(public_key: bytes, did: str) -> bool:
    """True when ``did`` is the did:key of ``public_key``.

    Why no curve check here: it would cost as much as a signature verification, on every
    transaction of an unregistered sender, and it is already done. The executor's verifier refuses
    any signing key that ``check_public_key`` refuses (small-order keys included) before it asks
    who the signer is, and transaction decoding refuses a sender that is not a valid did:key. So
    comparing the encodings is enough, and it is exact: did:key text is canonical.
    """
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    # Parsing is memoised (the sender's DID was parsed when the transaction was decoded), so this
    # costs a dictionary lookup where re-encoding the key in base58 cost ~25 µs per transaction.
    try:
        return public_key_from_did(did) == public_key
    except InvalidDid:
        return False
