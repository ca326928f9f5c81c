"""Refusing replays with bounded memory: remember each (sender, nonce) until its message expires.

A message is valid only before its ``expires_ms``, so its nonce needs remembering only until then:
after that the expiry check refuses it anyway. Two bounds keep memory finite whatever senders do:

* ``max_ttl_ms``: a message that expires further ahead than this is refused (``msg.ttl_too_long``)
  rather than remembered for a long time;
* ``max_entries``: at most this many unexpired nonces are held; when full, a new message is refused
  (``msg.overloaded``) rather than evicting a nonce early, which would let its message be replayed.

Time is injected. The guard keeps the latest ``now_ms`` it has seen and never forgets a nonce before
that time reaches its expiry, so a clock stepping backwards cannot resurrect a forgotten message:
a message whose expiry is at or before that high-water mark is refused as expired.

Only messages whose signature verified reach :meth:`ReplayGuard.check_and_remember`
(``open_envelope`` checks it last), so nobody can fill the guard with nonces they did not sign.
"""

from __future__ import annotations

import heapq

from autarky.messaging import errors

DEFAULT_MAX_TTL_MS = 300_000
DEFAULT_MAX_ENTRIES = 1_000_000


class ReplayGuard:
    """Remembers (sender, nonce) pairs until their expiry. Not thread-safe: one per receiver loop."""

    def __init__(
        self, *, max_ttl_ms: int = DEFAULT_MAX_TTL_MS, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        if max_ttl_ms < 1 or max_entries < 1:
            raise ValueError("max_ttl_ms and max_entries must be positive")
        self.max_ttl_ms = max_ttl_ms
        self.max_entries = max_entries
        self._seen: dict[tuple[str, bytes], int] = {}  # (sender, nonce) -> expires_ms
        self._expiries: list[tuple[int, str, bytes]] = []  # min-heap of what _seen holds
        self._high_water_ms = 0

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_remember(self, sender: str, nonce: bytes, expires_ms: int, now_ms: int) -> None:
        """Remember the pair, or raise MessageError.

        Codes: ``msg.expired``, ``msg.ttl_too_long``, ``msg.replay``, ``msg.overloaded``, in that order.
        """
        self._forget_expired(now_ms)
        if expires_ms <= self._high_water_ms:
            raise errors.EXPIRED(
                f"expired at {expires_ms} ms; the receiver has seen time {self._high_water_ms} ms"
            )
        if expires_ms - self._high_water_ms > self.max_ttl_ms:
            raise errors.TTL_TOO_LONG(f"expires more than {self.max_ttl_ms} ms ahead")
        key = (sender, nonce)
        if key in self._seen:
            raise errors.REPLAY(f"nonce {nonce.hex()} from {sender} was already received")
        if len(self._seen) >= self.max_entries:
            raise errors.OVERLOADED(f"{len(self._seen)} unexpired nonces held (the limit)")
        self._seen[key] = expires_ms
        heapq.heappush(self._expiries, (expires_ms, sender, nonce))

    def seen(self, sender: str, nonce: bytes) -> bool:
        return (sender, nonce) in self._seen

    def _forget_expired(self, now_ms: int) -> None:
        if now_ms > self._high_water_ms:
            self._high_water_ms = now_ms
        expiries = self._expiries
        while expiries and expiries[0][0] <= self._high_water_ms:
            _, sender, nonce = heapq.heappop(expiries)
            del self._seen[(sender, nonce)]


__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_MAX_TTL_MS", "ReplayGuard"]
