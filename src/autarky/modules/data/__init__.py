"""The data module: a market for data streams and datasets (SPEC C7, data).

Its specification (state keys, messages, events, errors in precedence order, parameters) is
README.md. The buyer's agent, a pure decision over attestations, is :mod:`.agent`; the key's
delivery to the buyer is off the ledger, in :mod:`autarky.messaging.keydelivery`.
"""

from autarky.modules.data.agent import Approval, BuyerAgent, BuyerTerms, Evidence, check_offer
from autarky.modules.data.errors import OfferRefused
from autarky.modules.data.module import DataModule
from autarky.modules.data.records import OfferRecord, PurchaseRecord, Requirement

__all__ = [
    "Approval",
    "BuyerAgent",
    "BuyerTerms",
    "DataModule",
    "Evidence",
    "OfferRecord",
    "OfferRefused",
    "PurchaseRecord",
    "Requirement",
    "check_offer",
]
