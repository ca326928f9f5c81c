"""Clusters of Autarky nodes on the ``nats`` engine: :mod:`autarky.cluster.local` runs one on this machine.

Layer: above ``web`` (it starts nodes that serve the API), below ``demo``, ``bench`` and ``cli``.
"""

from autarky.cluster.local import ClusterError, LocalAutarkyCluster, NodeProcess

__all__ = ["ClusterError", "LocalAutarkyCluster", "NodeProcess"]
