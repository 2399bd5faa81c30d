"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# No per-example deadline: these machines are shared and timing noise is not a failure.
settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile(
    "ci", deadline=None, max_examples=300, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
