"""A machine's own key-value storage: SQLite in a directory, or memory (simulations, tests).

Values are canonical CBOR values (ints, text, bytes, lists, maps). Writes are buffered and
committed by ``flush()`` (the machine flushes when it stops), so a simulation does not pay a
SQLite commit per action; ``SqliteStorage(..., autocommit=True)`` commits every write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

from autarky.encoding import canonical_decode, canonical_encode


class Storage(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> list[str]: ...

    def flush(self) -> None: ...


class MemoryStorage:
    """A dict; values are kept as given (no encoding cost)."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(key for key in self._data if key.startswith(prefix))

    def flush(self) -> None:
        pass


class SqliteStorage:
    """``<directory>/<name>.sqlite``: one table ``kv(key TEXT PRIMARY KEY, value BLOB)``."""

    def __init__(self, directory: str | Path, name: str = "storage", *, autocommit: bool = False) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / f"{name}.sqlite"
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        self._db.commit()
        self._autocommit = autocommit

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else canonical_decode(row[0])

    def set(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, canonical_encode(value))
        )
        if self._autocommit:
            self._db.commit()

    def delete(self, key: str) -> None:
        self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
        if self._autocommit:
            self._db.commit()

    def keys(self, prefix: str = "") -> list[str]:
        rows = self._db.execute(
            "SELECT key FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key", (len(prefix), prefix)
        )
        return [row[0] for row in rows]

    def flush(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.close()
