"""The jobs module: a machine posts a job with a bounty in escrow; a provider accepts; completion is
attested by the machine, its owner or a named party (an oracle); escrow pays out after a dispute
window, and a timeout refunds (SPEC C7).

README.md is its specification (state keys, messages, events, errors in precedence order, params).
"""

from autarky.modules.jobs.module import JobsModule
from autarky.modules.jobs.records import JobRecord

__all__ = ["JobRecord", "JobsModule"]
