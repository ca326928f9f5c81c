"""Test-suite wide settings.

Hypothesis runs under the ``ci`` profile from ``./dev test`` (derandomized: the same examples every
run, so a failure in CI reproduces locally with ``HYPOTHESIS_PROFILE=ci``). The ``dev`` profile
explores new random examples each run; a failure prints its seed (``--hypothesis-seed``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
