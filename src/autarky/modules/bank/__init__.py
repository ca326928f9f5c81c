"""The ``bank`` module: multi-asset balances, fees, transfers and machine guardrails (SPEC C2).

Its spec is ``README.md`` next to this file. Other code reads bank state only through the query
functions of :mod:`autarky.modules.bank.keeper` and builds messages with
:mod:`autarky.modules.bank.messages`.
"""

from autarky.modules.bank.keeper import FEE_COLLECTOR
from autarky.modules.bank.module import BankModule

__all__ = ["FEE_COLLECTOR", "BankModule"]
