"""The policy module: capability grants, delegation with attenuation, revocation (SPEC C3).

Its specification (state keys, messages, events, errors in precedence order) is README.md. The
decision itself lives in :mod:`autarky.modules.policy.check`, pure and shared by the ledger and
offline devices.
"""

from autarky.modules.policy.check import Allowed, GrantRecord, check, check_grant, load_chain
from autarky.modules.policy.errors import GrantRefused
from autarky.modules.policy.module import PolicyModule

__all__ = ["Allowed", "GrantRecord", "GrantRefused", "PolicyModule", "check", "check_grant", "load_chain"]
