"""The energy market: a uniform-price double auction per zone and delivery interval (SPEC C7, P5).

Its specification (state keys, messages, events, errors in precedence order, clearing and
settlement rules) is README.md. The auction itself is :func:`auction.clear`, a pure function
shared by the ledger and ``autarky bench auction``.
"""

from autarky.modules.market.auction import Clearing, Order, clear, uniform_price
from autarky.modules.market.module import MarketModule

__all__ = ["Clearing", "MarketModule", "Order", "clear", "uniform_price"]
