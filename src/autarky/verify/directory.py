"""A device's directory cache: keys and grants it checked against final headers, used offline.

:class:`ProofCheckedDirectory` holds state values that arrived in :class:`~autarky.verify.ProofBundle`
s and passed :meth:`ProofBundle.verify` against the device's :class:`~autarky.verify.TrustAnchor`.
It implements the :class:`~autarky.messaging.directory.Directory` protocol that a receiver of signed
messages asks (``key``, ``authorize``), with the ledger's own code on the cached values:

* a key acts for an account exactly when the ``identity`` module's authenticator says so (an
  unregistered did:key by its own key; a registered account by the keys its record lists, while
  the account is active);
* a grant allows an action exactly when ``modules.policy.check`` says so, on the chain of grant
  records from the leaf to its root.

**Freshness.** Every cached value remembers the block it was proved at. A value older than
``max_age_ms`` (block time against the caller's ``now_ms``) is refused with ``msg.stale_directory``:
a revocation can take that long to reach an offline device, and no longer. Values from a newer block
replace older ones; a bundle from an older block never overwrites newer values.

**Carrying it.** :meth:`export` gives the bundles as bytes (canonical CBOR) for a file or flash;
:meth:`restore` checks every one again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from autarky.encoding import DecodeError, canonical_decode, canonical_encode, decode_trusted
from autarky.ledger.errors import TxError
from autarky.ledger.router import Authenticator
from autarky.messaging import errors
from autarky.messaging.directory import GrantDecision, KeyInfo, grant_error, key_id, split_kid
from autarky.modules.identity import keeper as identity_keeper
from autarky.modules.policy import keeper as policy_keeper
from autarky.modules.policy.check import MAX_CHAIN_LENGTH, GrantRecord, check_grant
from autarky.modules.policy.errors import GrantRefused
from autarky.verify.light import ProofBundle, TrustAnchor, VerifyError

DEFAULT_MAX_AGE_MS = 24 * 3600 * 1000
MAX_CACHED_BUNDLES = 256


@dataclass(frozen=True, slots=True)
class _Cached:
    value: bytes | None
    height: int
    time_ms: int


def account_keys(did: str) -> list[str]:
    """The state keys a device needs to check ``did``'s signing keys."""
    return [identity_keeper.account_key(did)]


def grant_keys(grant_id: bytes) -> list[str]:
    """The state key of one grant record (fetch its parents' in turn: :meth:`missing_grants`)."""
    return [policy_keeper.grant_key(grant_id)]


class ProofCheckedDirectory:
    """Keys and grants proved against final headers (see the module docstring)."""

    def __init__(
        self, anchor: TrustAnchor, authenticator: Authenticator, max_age_ms: int = DEFAULT_MAX_AGE_MS
    ) -> None:
        self.anchor = anchor
        self.max_age_ms = max_age_ms
        self._authenticator = authenticator
        self._values: dict[str, _Cached] = {}
        self._bundles: dict[int, bytes] = {}

    # -- filling ----------------------------------------------------------------------------------
    def add(self, bundle: ProofBundle) -> int:
        """Check ``bundle`` and cache its values; returns the block height they were proved at."""
        state = bundle.verify(self.anchor)
        header = state.header
        for key in state.keys:
            cached = self._values.get(key)
            if cached is None or cached.height <= header.height:
                self._values[key] = _Cached(state.get(key), header.height, header.time_ms)
        self._bundles[header.height] = bundle.encode()
        while len(self._bundles) > MAX_CACHED_BUNDLES:
            del self._bundles[min(self._bundles)]
        return header.height

    def missing_grants(self, grant_id: bytes) -> list[bytes]:
        """Grant ids of ``grant_id``'s chain that are not cached yet (ask a node for these next)."""
        missing: list[bytes] = []
        current: bytes | None = grant_id
        for _ in range(MAX_CHAIN_LENGTH):
            if current is None:
                break
            cached = self._values.get(policy_keeper.grant_key(current))
            if cached is None:
                missing.append(current)
                break
            if cached.value is None:
                break
            try:
                current = GrantRecord.from_cbor(decode_trusted(cached.value)).parent
            except (ValueError, DecodeError):
                break
        return missing

    def export(self) -> bytes:
        """The cached bundles as canonical CBOR (oldest first), for :meth:`restore`."""
        return canonical_encode([self._bundles[height] for height in sorted(self._bundles)])

    @classmethod
    def restore(
        cls,
        data: bytes,
        anchor: TrustAnchor,
        authenticator: Authenticator,
        max_age_ms: int = DEFAULT_MAX_AGE_MS,
    ) -> ProofCheckedDirectory:
        """A directory from :meth:`export`'s bytes; every bundle is checked again."""
        directory = cls(anchor, authenticator, max_age_ms)
        try:
            bundles = canonical_decode(data)
        except DecodeError as exc:
            raise VerifyError("verify.malformed", f"directory export: {exc}") from exc
        if type(bundles) is not list or not all(type(item) is bytes for item in bundles):
            raise VerifyError("verify.malformed", "a directory export is a list of bundles")
        for item in bundles:
            directory.add(ProofBundle.decode(item))
        return directory

    # -- the Directory protocol -------------------------------------------------------------------
    def key(self, kid: str, now_ms: int) -> KeyInfo:
        try:
            account, public_key = split_kid(kid)
        except ValueError as exc:
            raise errors.UNKNOWN_KEY(str(exc)[:200]) from None
        state = self._state(identity_keeper.account_key(account), now_ms)
        try:
            scope = self._authenticator.authenticate(state, account, public_key)
        except TxError as exc:
            if exc.code == "core.account_revoked":
                raise errors.KEY_REVOKED(f"{account} is revoked (as of the cached directory)") from None
            raise errors.UNKNOWN_KEY(f"{kid[:120]} is not a key of {account}: {exc.code}") from None
        except VerifyError as exc:
            raise errors.UNKNOWN_KEY(f"the directory has no proof about {account}: {exc.code}") from None
        return KeyInfo(key_id(account, public_key), account, public_key, True, scope.actions)

    def authorize(
        self, grantee: str, grant_id: str, action: str, resource: str, now_ms: int
    ) -> GrantDecision:
        try:
            leaf = bytes.fromhex(grant_id)
        except (ValueError, TypeError):
            raise errors.UNKNOWN_GRANT(f"{str(grant_id)[:80]!r} is not a grant id") from None

        def lookup(gid: bytes) -> GrantRecord | None:
            cached = self._fresh(policy_keeper.grant_key(gid), now_ms)
            if cached is None or cached.value is None:
                return None
            return GrantRecord.from_cbor(decode_trusted(cached.value))

        try:
            allowed = check_grant(
                lookup, leaf, grantee=grantee, action=action, resource=resource, now_ms=now_ms
            )
        except GrantRefused as exc:
            raise grant_error(exc) from None
        except (ValueError, DecodeError) as exc:  # a proved record the policy module would not write
            raise errors.GRANT_CHAIN_INVALID(f"a cached grant record is not well formed: {exc}") from None
        return GrantDecision(
            allowed.grant_id.hex(), allowed.root_grantor, tuple(g.hex() for g in allowed.chain)
        )

    # -- internals --------------------------------------------------------------------------------
    def _fresh(self, key: str, now_ms: int) -> _Cached | None:
        cached = self._values.get(key)
        if cached is None:
            return None
        if now_ms - cached.time_ms > self.max_age_ms:
            raise errors.STALE_DIRECTORY(
                f"{key[:100]} was proved at block {cached.height}, {now_ms - cached.time_ms} ms ago; "
                f"the bound is {self.max_age_ms} ms: refresh the directory"
            )
        return cached

    def _state(self, key: str, now_ms: int) -> _OneKey:
        return _OneKey(key, self._fresh(key, now_ms))


class _OneKey:
    """A state reader that knows one cached key (what the authenticator may read)."""

    __slots__ = ("_cached", "_key")

    def __init__(self, key: str, cached: _Cached | None) -> None:
        self._key = key
        self._cached = cached

    def get(self, key: str) -> bytes | None:
        if key != self._key or self._cached is None:
            raise VerifyError("verify.not_proven", f"the directory holds no proof of {key!r}")
        return self._cached.value

    def iter_prefix(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        raise VerifyError("verify.not_provable", f"cannot list keys under {prefix!r} from single-key proofs")
