import os

import numpy as np
import pytest

os.environ.setdefault("GPUCHAIN_BACKEND", "numpy")

try:  # property-based tests: a fixed-seed, time-bounded default; `--hypothesis-profile=long`
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci", derandomize=True, max_examples=500, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    settings.register_profile(
        "long", max_examples=5000, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra; the tests that need it skip
    pass


def _gpu_reason() -> str:
    from gpuchain.backend import cupy_unavailable_reason

    return cupy_unavailable_reason()


def pytest_collection_modifyitems(config, items):
    reason = None
    for item in items:
        if "gpu" in item.keywords:
            if reason is None:
                reason = _gpu_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"no usable GPU: {reason}"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
