"""The identity module: machine and person accounts, their keys and scopes, and DID documents.

Its specification (state keys, messages, events, errors in precedence order, genesis) is README.md.
"""

from autarky.modules.identity.module import IdentityModule

__all__ = ["IdentityModule"]
