"""The lease module: capacity offered by the period, reserved with escrow (SPEC C7, leases).

README.md is its specification (state keys, messages, events, errors in precedence order, params).
The life of a lease is the pure :mod:`autarky.modules.lease.schedule`.
"""

from autarky.modules.lease.module import LeaseModule
from autarky.modules.lease.records import Claim, LeaseRecord, OfferRecord

__all__ = ["Claim", "LeaseModule", "LeaseRecord", "OfferRecord"]
