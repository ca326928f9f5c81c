"""The oracle module: feeds, registered reporters, rounds finalized at the median (SPEC C9).

Its specification (state keys, messages, events, errors in precedence order) is README.md. Other
modules read a feed through :meth:`OracleModule.latest` and :meth:`OracleModule.fresh`, which
return a :class:`FinalValue` (feed, value, round, time_ms) or None.
"""

from autarky.modules.oracle.module import OracleModule
from autarky.modules.oracle.records import Feed, FinalValue, Round, lower_median

__all__ = ["Feed", "FinalValue", "OracleModule", "Round", "lower_median"]
