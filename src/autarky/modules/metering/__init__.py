"""The metering module: registered meters, signed readings, consumption records per account and
interval, and billing at shared infrastructure (SPEC C8).

Its specification (state keys, messages, events, errors in precedence order) is README.md. Other
modules use ``MeteringModule.interval_ms``, ``energy`` and ``readings_complete``.
"""

from autarky.modules.metering.module import MeteringModule

__all__ = ["MeteringModule"]
