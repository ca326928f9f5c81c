"""``HttpLedgerView``: the ledger as ``autarky.provenance.explain`` sees it, read from a node's API.

Synchronous (``explain`` is a plain function; the CLI calls it once). Hashes come back as bytes so
the answers compare equal to ``ChainLedgerView``'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

_HASH_FIELDS = frozenset({"head", "root", "hash", "card_hash", "id", "tx"})


def _from_json(value: Mapping[str, Any]) -> dict[str, Any]:
    document = dict(value)
    for name in _HASH_FIELDS & document.keys():
        if isinstance(document[name], str):
            document[name] = bytes.fromhex(document[name])
    if "training_anchors" in document:
        document["training_anchors"] = [bytes.fromhex(a) for a in document["training_anchors"]]
    return document


class HttpLedgerView:
    """A ``LedgerView`` over ``/api/v1/tx/{hash}`` and ``/api/v1/provenance/...`` of one node."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        headers = {} if api_key is None else {"X-API-Key": api_key}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpLedgerView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> dict[str, Any] | None:
        response = self._http.get(path, params=params or None)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def tx(self, tx_hash: bytes) -> Mapping[str, Any] | None:
        found = self._get(f"/api/v1/tx/{tx_hash.hex()}")
        if found is None or found.get("status") != "committed":
            return None
        receipt = found.get("receipt") or {}
        sender = (found.get("tx") or {}).get("sender")
        return {"height": found["height"], "code": receipt.get("code", "unknown"), "sender": sender}

    def decision_batch(self, machine: str, seq: int) -> Mapping[str, Any] | None:
        found = self._get(f"/api/v1/provenance/decisions/{machine}/batch", seq=seq)
        return None if found is None else _from_json(found)

    def decision_batches(self, machine: str, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every anchored batch of ``machine``, oldest first, read ``page_size`` at a time (as the
        node answers them: hashes as hex)."""
        from_seq: int | None = 0
        while from_seq is not None:
            page = self._get(f"/api/v1/provenance/decisions/{machine}", from_seq=from_seq, limit=page_size)
            if page is None:
                return
            yield from page["batches"]
            from_seq = page["next_seq"]

    def model(self, file_hash: bytes) -> Mapping[str, Any] | None:
        found = self._get(f"/api/v1/provenance/models/{file_hash.hex()}")
        return None if found is None else _from_json(found)

    def anchor(self, anchor_id: bytes) -> Mapping[str, Any] | None:
        found = self._get(f"/api/v1/provenance/anchors/{anchor_id.hex()}")
        return None if found is None else _from_json(found)
