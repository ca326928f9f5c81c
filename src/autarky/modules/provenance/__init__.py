"""The provenance module: data anchors (Merkle roots of records), a registry of model files, batches
of machines' decision records, and tracked items with their custody and condition history (SPEC C10).

README.md is its specification (state keys, messages, events, errors in precedence order).
"""

from autarky.modules.provenance.module import ProvenanceModule

__all__ = ["ProvenanceModule"]
