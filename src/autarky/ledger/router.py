"""The module router: how modules plug into the executor with one shape.

A module is one unit of state plus the messages that change it (see ``STYLE.md``). It declares:

* ``name`` and the ``message_types`` it handles (``"<name>/<action>"``);
* ``init_genesis`` to write its initial state and parameters;
* ``ante`` (optional) run for every authenticated transaction before its messages, in router
  order; used by ``bank`` to check a frozen wallet and charge the fee;
* ``handle`` for one message: a ladder of guard clauses raising :class:`TxError`, then writes;
* ``end_block`` (optional) for work at the end of a block; its events are hashed into the result root;
* ``invariants`` returning a list of broken invariants (empty when all hold), run in tests after
  every block.

A module sees other modules only through the narrow interface it declares (e.g. ``bank`` asks
``identity`` for an account's owner), wired when the :class:`App` is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from autarky.ledger.block import AttrValue, Event, Receipt
from autarky.ledger.errors import INVALID_MESSAGE, UNKNOWN_MESSAGE, TxError
from autarky.ledger.state import Overlay, StateReader
from autarky.ledger.tx import SignedTx


@dataclass(frozen=True, slots=True)
class BlockEnv:
    """Everything about the block that execution may depend on. Injected; never read from a clock."""

    chain_id: str
    height: int
    time_ms: int
    prev_hash: bytes


@dataclass(frozen=True, slots=True)
class KeyScope:
    """What a key may do for its account. ``actions`` None means every message type.

    ``allowance`` is the key's spending allowance as sorted ``(asset, amount)`` pairs, or None when the
    key's spending is not limited by its scope (full-scope keys always have None).
    """

    key: bytes
    actions: tuple[str, ...] | None = None
    allowance: tuple[tuple[str, int], ...] | None = None

    @property
    def full(self) -> bool:
        return self.actions is None

    def allows(self, message_type: str) -> bool:
        return self.actions is None or message_type in self.actions


class Authenticator(Protocol):
    """Decides which keys act for an account (implemented by the ``identity`` module)."""

    def authenticate(self, state: StateReader, account: str, public_key: bytes) -> KeyScope:
        """The scope of ``public_key`` for ``account``.

        Raises ``core.unknown_signer`` or ``core.account_revoked``.
        """
        ...


class TxContext:
    """What a handler sees of the transaction it runs in."""

    __slots__ = ("app", "env", "events", "message_index", "scope", "scratch", "state", "tx")

    def __init__(self, state: Overlay, env: BlockEnv, tx: SignedTx, scope: KeyScope, app: App) -> None:
        self.state = state
        self.env = env
        self.tx = tx
        self.scope = scope
        self.app = app
        self.events: list[Event] = []
        self.scratch: dict[str, Any] = {}
        self.message_index = -1
        """The 0-based position in the body of the message being handled (set by the executor):
        modules derive the ids of what a message creates from ``(tx.hash, message_index)``."""

    @property
    def sender(self) -> str:
        return self.tx.body.sender

    @property
    def height(self) -> int:
        return self.env.height

    def emit(self, event_type: str, **attributes: AttrValue) -> None:
        self.events.append(Event(event_type, tuple(sorted(attributes.items()))))

    def signed_by_key(self, public_key: bytes) -> bool:
        return public_key in self.tx.signers

    def signed_by_account(self, account: str) -> bool:
        """True if some signature on the transaction is by a full-scope active key of ``account``."""
        for public_key in self.tx.signers:
            try:
                scope = self.app.authenticator.authenticate(self.state, account, public_key)
            except TxError:
                continue
            if scope.full:
                return True
        return False


class Module:
    """Base class with the no-op defaults; concrete modules override what they need."""

    name: ClassVar[str] = ""
    message_types: ClassVar[tuple[str, ...]] = ()

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        return None

    def ante(self, ctx: TxContext) -> None:
        return None

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        raise UNKNOWN_MESSAGE(str(message.get("type")))

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        return []

    def invariants(self, state: StateReader) -> list[str]:
        return []


class App:
    """The modules of a chain, in order, and the authenticator that decides who signs for whom."""

    def __init__(self, modules: Sequence[Module], authenticator: Authenticator) -> None:
        routes: dict[str, Module] = {}
        names: list[str] = []
        for module in modules:
            assert module.name and module.name not in names, f"duplicate or empty module name {module.name!r}"
            names.append(module.name)
            for message_type in module.message_types:
                assert message_type.startswith(module.name + "/"), f"{message_type} not under {module.name}/"
                assert message_type not in routes, f"message type {message_type} routed twice"
                routes[message_type] = module
        self.modules = tuple(modules)
        self.routes = routes
        self.authenticator = authenticator
        # An optional optimisation the executor tries first for each transaction (see
        # modules/bank/fast.py): it returns a receipt only when it produced exactly what the
        # reference path would, and None otherwise.
        self.fast_path: Callable[..., Receipt | None] | None = None

    def module(self, name: str) -> Module:
        for module in self.modules:
            if module.name == name:
                return module
        raise KeyError(name)

    def route(self, message: Mapping[str, Any]) -> Module:
        message_type = message.get("type")
        module = self.routes.get(message_type) if type(message_type) is str else None
        if module is None:
            raise UNKNOWN_MESSAGE(f"no module handles message type {message_type!r}")
        return module

    def init_genesis(self, state: Overlay, app_state: Mapping[str, Any]) -> None:
        for name in app_state:
            if name not in [m.name for m in self.modules]:
                raise ValueError(f"genesis names an unknown module {name!r}")
        for module in self.modules:
            module.init_genesis(state, app_state.get(module.name, {}))

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        events: list[Event] = []
        for module in self.modules:
            events.extend(module.end_block(state, env))
        return events

    def invariants(self, state: StateReader) -> list[str]:
        broken: list[str] = []
        for module in self.modules:
            broken.extend(f"{module.name}: {problem}" for problem in module.invariants(state))
        return broken


def require_field(message: Mapping[str, Any], name: str, kind: type) -> Any:
    """A message field of exactly ``kind`` or ``core.invalid_message``. Bool is never an int here."""
    value = message.get(name)
    if type(value) is not kind:
        raise INVALID_MESSAGE(f"field {name!r} must be {kind.__name__}")
    return value


def check_field_names(
    message: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    """``core.invalid_message`` for a field not in ``type`` + ``required`` + ``optional`` (checked in
    name order) or a missing required one (checked in the order given)."""
    allowed = ("type", *required, *optional)
    for name in sorted(str(name) for name in message):
        if name not in allowed:
            raise INVALID_MESSAGE(f"unexpected field {name[:40]!r}")
    for name in required:
        if name not in message:
            raise INVALID_MESSAGE(f"missing field {name!r}")


def require_text(message: Mapping[str, Any], name: str) -> str:
    """A text field or ``core.invalid_message``."""
    value = message.get(name)
    if type(value) is not str:
        raise INVALID_MESSAGE(f"field {name!r} must be text")
    return value
