"""Handlers and skills: what a machine does, when.

A :class:`Skill` groups handlers (like a uAgents protocol); a :class:`~autarky.agent.machine.Machine`
is itself a skill and ``machine.include(skill)`` adds another one's handlers. Every handler receives
the machine first; it may be ``async def`` or a plain function::

    skill = Skill("metering")

    @skill.on_interval(period_ms=15 * 60_000)
    async def report(machine): ...

    @skill.on_message(Reading)                 # a model with ``schema = "autarky.reading/1"``
    async def on_reading(machine, sender, reading): ...

    @skill.on_event("market.cleared")          # events of committed blocks
    async def cleared(machine, event): ...

    @skill.on_start
    async def hello(machine): ...

Message models are pydantic models or frozen dataclasses with a class attribute ``schema`` (the
envelope's message type, 1-64 characters of ``a-z 0-9 _ . / -``). Their fields must be canonical
CBOR values (ints, text, bytes, bools, lists, maps; no floats).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class IntervalHandler:
    function: Handler
    period_ms: int
    offset_ms: int
    is_async: bool


@dataclass(frozen=True, slots=True)
class MessageHandler:
    function: Handler
    model: type
    is_async: bool


@dataclass(frozen=True, slots=True)
class EventHandler:
    function: Handler
    event_type: str
    is_async: bool


@dataclass(eq=False)
class Skill:
    """A named group of handlers."""

    name: str = "skill"
    intervals: list[IntervalHandler] = field(default_factory=list)
    messages: dict[str, MessageHandler] = field(default_factory=dict)
    events: list[EventHandler] = field(default_factory=list)
    starts: list[tuple[Handler, bool]] = field(default_factory=list)

    def on_interval(self, period_ms: int, offset_ms: int = 0) -> Callable[[Handler], Handler]:
        """Run the handler at every virtual or real time t with ``(t - offset_ms) % period_ms == 0``."""
        if type(period_ms) is not int or period_ms < 1 or type(offset_ms) is not int:
            raise ValueError("period_ms is an integer >= 1 and offset_ms an integer")

        def register(function: Handler) -> Handler:
            self.intervals.append(
                IntervalHandler(function, period_ms, offset_ms % period_ms, _is_async(function))
            )
            return function

        return register

    def on_message(self, model: type) -> Callable[[Handler], Handler]:
        """Run the handler for each verified message of this model: ``handler(machine, sender, message)``."""
        schema = schema_of(model)
        if schema in self.messages:
            raise ValueError(f"a handler for {schema!r} is already registered")

        def register(function: Handler) -> Handler:
            self.messages[schema] = MessageHandler(function, model, _is_async(function))
            return function

        return register

    def on_event(self, event_type: str) -> Callable[[Handler], Handler]:
        """Run the handler for each committed ledger event of this type: ``handler(machine, event)``."""

        def register(function: Handler) -> Handler:
            self.events.append(EventHandler(function, event_type, _is_async(function)))
            return function

        return register

    def on_start(self, function: Handler) -> Handler:
        """Run the handler once when the machine starts: ``handler(machine)``."""
        self.starts.append((function, _is_async(function)))
        return function

    def include(self, other: Skill) -> None:
        """Add ``other``'s handlers to this one's."""
        self.intervals.extend(other.intervals)
        for schema, handler in other.messages.items():
            if schema in self.messages:
                raise ValueError(f"two handlers for {schema!r}")
            self.messages[schema] = handler
        self.events.extend(other.events)
        self.starts.extend(other.starts)


def _is_async(function: Handler) -> bool:
    return asyncio.iscoroutinefunction(function)


def schema_of(model: type) -> str:
    schema = getattr(model, "schema", None)
    if not isinstance(schema, str) or not schema:
        raise TypeError(f"{model.__name__} needs a class attribute schema = 'autarky.<name>/<version>'")
    return schema


def model_to_body(model: Any) -> dict[str, Any]:
    """The canonical-CBOR body of a message model: its fields as a map."""
    if dataclasses.is_dataclass(model) and not isinstance(model, type):
        return {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
    dump = getattr(model, "model_dump", None)
    if dump is not None:
        return dict(dump())
    raise TypeError(f"{type(model).__name__} is neither a dataclass nor a pydantic model")


def body_to_model(model: type, body: Any) -> Any:
    if not isinstance(body, dict):
        raise ValueError("a message body is a map of its fields")
    validate = getattr(model, "model_validate", None)
    if validate is not None:
        return validate(body)
    return model(**body)
