"""Light verification: check keys, grants, attestations and balances from a final header and state
proofs, with no node running and without trusting the node that served them (SPEC C1, C3).

See :mod:`autarky.verify.light` and docs/light-verification.md.
"""

from autarky.verify.light import (
    CODES,
    ProofBundle,
    TrustAnchor,
    TrustedHeader,
    VerifiedState,
    VerifyError,
    trust_header,
)

__all__ = [
    "CODES",
    "ProofBundle",
    "TrustAnchor",
    "TrustedHeader",
    "VerifiedState",
    "VerifyError",
    "trust_header",
]
