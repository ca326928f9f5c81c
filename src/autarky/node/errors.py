"""Operational faults of the node: storage, configuration, engine. Never raised by the core.

NodeError
├── StorageError        the database is unusable or inconsistent
│   └── CorruptState    stored state does not reproduce the stored state root
├── ConfigError         a configuration value is wrong; the message says what to change
├── EngineError         the ordering engine failed
└── ProofUnavailable    a proof was asked against a block the node no longer (or not yet) keeps
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of every operational fault raised by the node layer."""


class StorageError(NodeError):
    pass


class CorruptState(StorageError):
    pass


class ConfigError(NodeError):
    pass


class EngineError(NodeError):
    pass


class ProofUnavailable(NodeError):
    pass
