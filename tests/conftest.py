import os

import numpy as np
import pytest

os.environ.setdefault("GPUCHAIN_BACKEND", "numpy")


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
