"""Domain tags: every signature Autarky makes or checks is over ``tag || payload``.

Why: a signature must mean one thing. A transaction signature for chain ``a`` must never verify
as a transaction on chain ``b``, as a machine-to-machine message, or as a block header. Each tag is
``AUTARKY-<KIND>-V1`` followed by a NUL byte, and the transaction and block tags also carry the
chain id followed by a NUL byte. Chain ids contain no NUL (see :func:`check_chain_id`), and no kind
is a prefix of another, so no tagged byte string can be read under two tags.

``ATTESTATION`` (``AUTARKY-ATTEST-V1`` and a NUL byte) is an issuer's signature over an
attestation claim (``modules/identity/claims.py``). It is deliberately not bound to a chain: a
signed claim is a portable document that a device can carry and check offline, and the same claim
may be anchored on any chain that knows the issuer's key.
"""

from __future__ import annotations

import enum
import re

_CHAIN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Domain(enum.Enum):
    """What a signature is for. Keys sign only through a domain (see ``crypto.keys``)."""

    TRANSACTION = "TX"
    BLOCK_HEADER = "BLOCK"
    MESSAGE = "MSG"
    VOTE = "VOTE"
    CUT = "CUT"
    KEYSTORE_PROOF = "KEYPROOF"
    ATTESTATION = "ATTEST"


_PER_CHAIN = frozenset({Domain.TRANSACTION, Domain.BLOCK_HEADER, Domain.VOTE, Domain.CUT})


def check_chain_id(chain_id: str) -> str:
    """Return ``chain_id`` if it is 1-63 characters of ``a-z0-9-`` starting with a letter or digit."""
    # fullmatch, not match: "$" also matches before a trailing newline, so match("abc\n") passes.
    if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
        raise ValueError(f"invalid chain id {chain_id!r}: use 1-63 characters a-z, 0-9 and '-'")
    return chain_id


def domain_tag(domain: Domain, chain_id: str | None = None) -> bytes:
    """The byte prefix that every signature in ``domain`` covers."""
    tag = b"AUTARKY-" + domain.value.encode("ascii") + b"-V1\x00"
    if domain in _PER_CHAIN:
        if chain_id is None:
            raise ValueError(f"domain {domain.name} needs a chain id")
        tag += check_chain_id(chain_id).encode("ascii") + b"\x00"
    elif chain_id is not None:
        raise ValueError(f"domain {domain.name} is not bound to a chain")
    return tag
