"""Server-Sent Events: the node's live block and transaction events, one HTTP stream per client.

Wire format (``text/event-stream``)::

    event: hello                       sent once, after the subscription is registered
    data: {"chain_id": ..., "height": ..., ...}    (the node status)

    event: block                       one per committed block (header JSON + "failed")
    data: {"type": "block", "height": 12, ...}

    event: tx                          one per transaction in that block (receipt JSON + "height")
    data: {"type": "tx", "height": 12, "tx_hash": ..., "code": "ok", ...}

    : ping                             a comment every 15 s while idle (FastAPI's keep-alive)

The event name is the message's ``type``; ``data`` is the whole message as JSON. ``hello`` comes
after the node has registered this subscriber, so a client that has seen it misses no later block.

The stream ends when the client disconnects, when the node stops, when the node drops a client
that fell too far behind (R9: a slow reader never slows the node), or when the API server shuts
down (``closing`` is set).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi.sse import ServerSentEvent

from autarky.node.node import Node


async def event_stream(node: Node, closing: asyncio.Event) -> AsyncIterator[ServerSentEvent]:
    source = node.events()
    # The node registers a subscriber on the first step of ``events()``; run that step now (as a
    # task, which may wait for the first event) so that ``hello`` is sent only once it is registered.
    step: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(anext(source))
    closed = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.sleep(0)
        yield ServerSentEvent(event="hello", data=node.status())
        while True:
            await asyncio.wait((step, closed), return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                return  # the server is shutting down
            try:
                message = step.result()
            except StopAsyncIteration:
                return  # the node stopped, or dropped this slow reader
            yield ServerSentEvent(event=str(message.get("type", "message")), data=message)
            step = asyncio.ensure_future(anext(source))
    finally:
        # Cancelling the pending step ends ``events()`` inside its task, which unregisters the queue.
        step.cancel()
        closed.cancel()
        if step.done() and not step.cancelled():
            step.exception()  # retrieved, so asyncio does not report it as lost
