"""Deterministic simulations of a multi-node chain (pure, synchronous, seeded); see ``cluster.py``."""

from autarky.sim.cluster import (
    AppendResult,
    BlockRecord,
    LogEntry,
    MemoryLog,
    NodeDisk,
    SimConfig,
    SimNode,
    SimReport,
    Simulation,
    client_key,
    node_key,
    replay_command,
    sim_genesis,
)

__all__ = [
    "AppendResult",
    "BlockRecord",
    "LogEntry",
    "MemoryLog",
    "NodeDisk",
    "SimConfig",
    "SimNode",
    "SimReport",
    "Simulation",
    "client_key",
    "node_key",
    "replay_command",
    "sim_genesis",
]
