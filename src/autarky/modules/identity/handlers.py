"""One handler per identity message: guard clauses in precedence order, then the writes, then one event.

The message has already been parsed (``messages.py``: shape and value checks, and for ``attest``
the claim signature). The guards here read the state, always in this order, skipping the ones a
message does not have::

    already_registered | not_registered | attestation_not_found, not_authorised, account_revoked,
    already_paused | not_paused, attestation_revoked, key_not_found, not_assertion_key, claim_expired,
    attestation_exists, service_not_found, last_full_key, key_in_use, too_many_keys, too_many_services,
    missing_key_signature

Who may act on a registered account ("authority"):

* ``add_key``, ``remove_key``, ``rotate``: the account itself signing with a full-scope key, or its owner;
* ``revoke``: its owner, or the account itself (full-scope key) when it has no owner;
* ``recover``: its owner only (recovery is for a machine whose keys are lost or compromised);
* ``pause``, ``resume``: its owner only (an account without an owner cannot be paused: nobody
  could resume it, since a paused account's own transactions are refused);
* ``set_service``, ``remove_service``: the account itself (full-scope key) or its owner;
* ``attest``: the claim's issuer itself, signing the transaction with a full-scope key; the claim's
  own signature must be by an assertion key of the issuer (``attestations.assertion_keys``);
* ``revoke_attestation``: the attestation's issuer (with any key whose scope names the message).
"""

from __future__ import annotations

from dataclasses import replace

from autarky.crypto.did import public_key_from_did
from autarky.ledger.router import TxContext
from autarky.modules.identity.attestations import assertion_keys
from autarky.modules.identity.errors import (
    ACCOUNT_REVOKED,
    ALREADY_PAUSED,
    ALREADY_REGISTERED,
    ATTESTATION_EXISTS,
    ATTESTATION_NOT_FOUND,
    ATTESTATION_REVOKED,
    CLAIM_EXPIRED,
    KEY_IN_USE,
    KEY_NOT_FOUND,
    LAST_FULL_KEY,
    MISSING_KEY_SIGNATURE,
    NOT_ASSERTION_KEY,
    NOT_AUTHORISED,
    NOT_PAUSED,
    NOT_REGISTERED,
    SERVICE_NOT_FOUND,
    TOO_MANY_KEYS,
    TOO_MANY_SERVICES,
)
from autarky.modules.identity.keeper import (
    ACTIVE,
    PAUSED,
    REVOKED,
    AccountRecord,
    AttestationRecord,
    KeyEntry,
    PauseRecord,
    ServiceEntry,
    anchor_attestation,
    clear_allowance_spent,
    delete_service,
    has_service,
    key_holder,
    mark_attestation_revoked,
    move_allowance_spent,
    read_account,
    read_attestation,
    read_raw_account,
    read_services,
    replace_key,
    write_account,
    write_pause,
    write_service,
)
from autarky.modules.identity.messages import (
    MAX_KEYS_PER_ACCOUNT,
    MAX_SERVICES_PER_ACCOUNT,
    AddKey,
    Attest,
    Pause,
    Recover,
    Register,
    RemoveKey,
    RemoveService,
    Resume,
    Revoke,
    RevokeAttestation,
    Rotate,
    SetService,
)


def register(ctx: TxContext, msg: Register) -> None:
    """Register ``msg.did``: the sender itself (no owner), or a machine the sender will own."""
    if read_raw_account(ctx.state, msg.did) is not None:
        raise ALREADY_REGISTERED(f"{msg.did} is already registered")
    did_key = public_key_from_did(msg.did)
    holder = key_holder(ctx.state, did_key)
    if holder is not None:
        raise KEY_IN_USE(f"the key of {msg.did} is a key of {holder}")
    if not ctx.signed_by_key(did_key):
        raise MISSING_KEY_SIGNATURE(f"the key of {msg.did} must co-sign its registration")

    owner = None if msg.did == ctx.sender else ctx.sender
    record = AccountRecord(
        owner=owner,
        kind=msg.kind,
        maker=msg.maker,
        model=msg.model,
        serial_digest=msg.serial_digest,
        capabilities=msg.capabilities,
        metadata=msg.metadata,
        status=ACTIVE,
        registered=ctx.height,
        keys=(KeyEntry(did_key, None, None, ctx.height),),
    )
    write_account(ctx.state, msg.did, record)
    ctx.emit("identity.registered", did=msg.did, owner=owner, kind=msg.kind)


KEYS_CHANGED = "identity.keys_changed"
"""``ctx.scratch`` flag: a key left an account in this transaction (removed, rotated, recovered), so
a key's scope read at authentication may be out of date (``IdentityModule.charge_signer_allowance``)."""


def add_key(ctx: TxContext, msg: AddKey) -> None:
    record = _registered(ctx, msg.did)
    _require_self_or_owner(ctx, msg.did, record)
    _require_active(msg.did, record)
    _require_unused(ctx, msg.key)
    if len(record.keys) >= MAX_KEYS_PER_ACCOUNT:
        raise TOO_MANY_KEYS(f"an account has at most {MAX_KEYS_PER_ACCOUNT} keys")
    _require_cosigned(ctx, msg.key, "key")

    entry = KeyEntry(msg.key, msg.actions, msg.allowance, ctx.height)
    write_account(ctx.state, msg.did, replace(record, keys=(*record.keys, entry)))
    ctx.emit("identity.key_added", did=msg.did, key=msg.key, full=entry.full)


def remove_key(ctx: TxContext, msg: RemoveKey) -> None:
    record = _registered(ctx, msg.did)
    _require_self_or_owner(ctx, msg.did, record)
    _require_active(msg.did, record)
    entry = _listed(record, msg.key, "key")
    if entry.full and record.full_key_count() == 1:
        raise LAST_FULL_KEY("this is the account's last full-scope key; add another or rotate this one")

    keys = tuple(other for other in record.keys if other.key != msg.key)
    write_account(ctx.state, msg.did, replace(record, keys=keys))
    ctx.scratch[KEYS_CHANGED] = True
    ctx.emit("identity.key_removed", did=msg.did, key=msg.key)


def rotate(ctx: TxContext, msg: Rotate) -> None:
    record = _registered(ctx, msg.did)
    _require_self_or_owner(ctx, msg.did, record)
    _require_active(msg.did, record)
    _listed(record, msg.old_key, "old_key")
    _require_unused(ctx, msg.new_key)
    _require_cosigned(ctx, msg.new_key, "new_key")

    move_allowance_spent(ctx.state, msg.did, msg.old_key, msg.new_key)
    write_account(ctx.state, msg.did, replace_key(record, msg.old_key, msg.new_key, ctx.height))
    ctx.scratch[KEYS_CHANGED] = True
    ctx.emit("identity.key_rotated", did=msg.did, old_key=msg.old_key, new_key=msg.new_key)


def revoke(ctx: TxContext, msg: Revoke) -> None:
    record = _registered(ctx, msg.did)
    if record.owner is None:
        _require_self_or_owner(ctx, msg.did, record)
    elif ctx.sender != record.owner:
        raise NOT_AUTHORISED(f"only the owner {record.owner} may revoke {msg.did}")
    _require_active(msg.did, record)

    write_pause(ctx.state, msg.did, None)  # a revoked account is no longer paused: it is revoked
    write_account(ctx.state, msg.did, replace(record, status=REVOKED))
    ctx.emit("identity.revoked", did=msg.did)


def pause(ctx: TxContext, msg: Pause) -> None:
    record = _registered(ctx, msg.did)
    _require_owner(ctx, msg.did, record, "pause")
    _require_active(msg.did, record)
    if record.status == PAUSED:
        raise ALREADY_PAUSED(f"{msg.did} is already paused")

    write_pause(ctx.state, msg.did, PauseRecord(msg.reason, ctx.sender, ctx.height))
    write_account(ctx.state, msg.did, replace(record, status=PAUSED))
    ctx.emit("identity.paused", did=msg.did, reason=msg.reason)


def resume(ctx: TxContext, msg: Resume) -> None:
    record = _registered(ctx, msg.did)
    _require_owner(ctx, msg.did, record, "resume")
    _require_active(msg.did, record)
    if record.status != PAUSED:
        raise NOT_PAUSED(f"{msg.did} is not paused")

    write_pause(ctx.state, msg.did, None)
    write_account(ctx.state, msg.did, replace(record, status=ACTIVE))
    ctx.emit("identity.resumed", did=msg.did)


def recover(ctx: TxContext, msg: Recover) -> None:
    record = _registered(ctx, msg.did)
    if record.owner is None or ctx.sender != record.owner:
        raise NOT_AUTHORISED(f"only the owner of {msg.did} may recover it, and it has {_owner_text(record)}")
    holder = key_holder(ctx.state, msg.new_key)
    if holder is not None and holder != msg.did:
        raise KEY_IN_USE(f"the new key is a key of {holder}")
    _require_cosigned(ctx, msg.new_key, "new_key")

    # Every old key leaves (write_account clears their counters); the new key starts unspent even
    # if it was one of the old, scoped keys.
    clear_allowance_spent(ctx.state, msg.did, msg.new_key)
    keys = (KeyEntry(msg.new_key, None, None, ctx.height),)
    # Recovery lifts a revocation, not a pause: the owner resumes a paused machine explicitly.
    status = PAUSED if record.status == PAUSED else ACTIVE
    write_account(ctx.state, msg.did, replace(record, keys=keys, status=status))
    ctx.scratch[KEYS_CHANGED] = True
    ctx.emit("identity.recovered", did=msg.did, new_key=msg.new_key)


def set_service(ctx: TxContext, msg: SetService) -> None:
    """Add the service ``msg.service_id`` of ``msg.did``, or replace it if the account has one."""
    record = _registered(ctx, msg.did)
    _require_self_or_owner(ctx, msg.did, record)
    _require_active(msg.did, record)
    if not has_service(ctx.state, msg.did, msg.service_id) and (
        len(read_services(ctx.state, msg.did)) >= MAX_SERVICES_PER_ACCOUNT
    ):
        raise TOO_MANY_SERVICES(f"an account has at most {MAX_SERVICES_PER_ACCOUNT} services")

    write_service(
        ctx.state, msg.did, ServiceEntry(msg.service_id, msg.service_type, msg.endpoint, ctx.height)
    )
    ctx.emit(
        "identity.service_set",
        did=msg.did,
        service_id=msg.service_id,
        service_type=msg.service_type,
        endpoint=msg.endpoint,
    )


def remove_service(ctx: TxContext, msg: RemoveService) -> None:
    record = _registered(ctx, msg.did)
    _require_self_or_owner(ctx, msg.did, record)
    _require_active(msg.did, record)
    if not has_service(ctx.state, msg.did, msg.service_id):
        raise SERVICE_NOT_FOUND(f"{msg.did} has no service {msg.service_id!r}")

    delete_service(ctx.state, msg.did, msg.service_id)
    ctx.emit("identity.service_removed", did=msg.did, service_id=msg.service_id)


def attest(ctx: TxContext, msg: Attest) -> None:
    """Anchor a signed claim: its issuer sends it, and one of the issuer's assertion keys signed it."""
    signed = msg.signed
    claim = signed.claim
    if ctx.sender != claim.issuer:
        raise NOT_AUTHORISED(f"only the issuer {claim.issuer} may anchor its claim")
    if not ctx.scope.full:
        raise NOT_AUTHORISED("an issuer anchors claims only with a full-scope key")
    if signed.key not in assertion_keys(claim.issuer, read_raw_account(ctx.state, claim.issuer)):
        raise NOT_ASSERTION_KEY(
            f"the claim's key {signed.key.hex()[:16]}… is not an active full-scope key of the issuer"
        )
    if claim.valid_until_ms <= ctx.env.time_ms:
        raise CLAIM_EXPIRED(
            f"the claim was valid until {claim.valid_until_ms} ms; this block is at {ctx.env.time_ms} ms"
        )
    attestation_id = claim.id
    if read_attestation(ctx.state, attestation_id) is not None:
        raise ATTESTATION_EXISTS(f"attestation {attestation_id.hex()} is already anchored")

    record = AttestationRecord(claim.encode(), signed.key, signed.signature, ctx.height, None)
    anchor_attestation(ctx.state, attestation_id, claim, record)
    ctx.emit(
        "identity.attested",
        id=attestation_id,
        issuer=claim.issuer,
        subject=claim.subject,
        schema=claim.schema,
    )


def revoke_attestation(ctx: TxContext, msg: RevokeAttestation) -> None:
    record = read_attestation(ctx.state, msg.id)
    if record is None:
        raise ATTESTATION_NOT_FOUND(f"no attestation {msg.id.hex()} is anchored")
    claim = record.claim
    if ctx.sender != claim.issuer:
        raise NOT_AUTHORISED(f"only the issuer {claim.issuer} may revoke this attestation")
    if record.revoked is not None:
        raise ATTESTATION_REVOKED(f"attestation {msg.id.hex()} was revoked at height {record.revoked}")

    mark_attestation_revoked(ctx.state, msg.id, ctx.height)
    ctx.emit("identity.attestation_revoked", id=msg.id, issuer=claim.issuer, subject=claim.subject)


# ---------------------------------------------------------------------------------------------------
# Guards shared by the handlers


def _registered(ctx: TxContext, did: str) -> AccountRecord:
    record = read_account(ctx.state, did)
    if record is None:
        raise NOT_REGISTERED(f"{did} is not registered")
    return record


def _require_self_or_owner(ctx: TxContext, did: str, record: AccountRecord) -> None:
    if record.owner is not None and ctx.sender == record.owner:
        return
    if ctx.sender == did and ctx.scope.full:
        return
    if ctx.sender == did:
        raise NOT_AUTHORISED("the account may change its own entry only with a full-scope key")
    raise NOT_AUTHORISED(f"only {did} itself or its owner may do this, and it has {_owner_text(record)}")


def _owner_text(record: AccountRecord) -> str:
    return "no owner" if record.owner is None else f"owner {record.owner}"


def _require_owner(ctx: TxContext, did: str, record: AccountRecord, action: str) -> None:
    if record.owner is None or ctx.sender != record.owner:
        raise NOT_AUTHORISED(f"only the owner of {did} may {action} it, and it has {_owner_text(record)}")


def _require_active(did: str, record: AccountRecord) -> None:
    """Not revoked (a paused account is still managed by its owner: keys, services, revocation)."""
    if record.revoked:
        raise ACCOUNT_REVOKED(f"{did} is revoked; only its owner can recover it")


def _listed(record: AccountRecord, key: bytes, name: str) -> KeyEntry:
    entry = record.key_entry(key)
    if entry is None:
        raise KEY_NOT_FOUND(f"{name} is not a key of this account")
    return entry


def _require_unused(ctx: TxContext, key: bytes) -> None:
    holder = key_holder(ctx.state, key)
    if holder is not None:
        raise KEY_IN_USE(f"the key is already a key of {holder}")


def _require_cosigned(ctx: TxContext, key: bytes, name: str) -> None:
    if not ctx.signed_by_key(key):
        raise MISSING_KEY_SIGNATURE(f"{name} must co-sign the transaction (proof of possession)")
