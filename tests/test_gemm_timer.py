"""gpuchain.cuda.gemm_timer: which GEMMs a step issues, their FLOPs and time."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from gpuchain.cuda.gemm_timer import GemmTimer, matmul_flops


def test_matmul_flops():
    assert matmul_flops((4, 3), (3, 2)) == 2 * 4 * 3 * 2
    assert matmul_flops((5, 4, 3), (3, 2)) == 5 * 2 * 4 * 3 * 2
    assert matmul_flops((3,), (3, 2)) == 2 * 3 * 2
    with pytest.raises(ValueError, match=r"\(4, 3\) @ \(2, 2\)"):
        matmul_flops((4, 3), (2, 2))


def test_numpy_calls_are_recorded_and_matmul_restored():
    original = np.matmul
    a, b = np.ones((6, 4)), np.ones((4, 5))
    with GemmTimer(np) as t:
        assert np.matmul is not original
        np.matmul(a, b)
        np.matmul(b.T, a.T, out=np.empty((5, 6)))
    assert np.matmul is original
    calls = t.calls()
    assert [c.flops for c in calls] == [2 * 6 * 4 * 5] * 2
    assert [(c.a_transposed, c.b_transposed) for c in calls] == [(False, False), (True, True)]
    assert all(c.seconds >= 0 for c in calls) and t.flops() == 480
    t.reset()
    assert t.calls() == []


def test_matmul_is_restored_after_an_error():
    original = np.matmul
    with pytest.raises(ZeroDivisionError):
        with GemmTimer(np):
            1 / 0
    assert np.matmul is original


def test_gpuchain_dense_gemms_are_seen(rng):
    import gpuchain as gc
    from gpuchain import nn

    model = nn.MLP([8, 16, 16, 4], activation="relu", seed=0, dtype=np.float32)
    x = gc.tensor(rng.standard_normal((32, 8)).astype(np.float32))
    with GemmTimer(np) as t:
        gc.nn.functional.cross_entropy(model(x), gc.tensor(np.arange(32) % 4)).backward()
    per_layer = [2 * 32 * 8 * 16, 2 * 32 * 16 * 16, 2 * 32 * 16 * 4]
    # forward and weight gradient for every layer, input gradient for all but the first
    assert t.flops() == 3 * sum(per_layer) - per_layer[0]


def test_cupy_path_records_event_pairs(monkeypatch):
    """With a stand-in for CuPy's events: one event pair per call, time from them."""
    stamps = iter(range(100))

    class Event:
        def record(self):
            self.t = next(stamps)

        def synchronize(self):
            pass

    def elapsed(start, end):
        return (end.t - start.t) * 1.0  # ms

    fake = types.ModuleType("cupy")
    fake.matmul = np.matmul
    fake.cuda = types.SimpleNamespace(Event=Event, get_elapsed_time=elapsed)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with GemmTimer(fake) as t:
        fake.matmul(np.ones((2, 3)), np.ones((3, 4)))
    assert fake.matmul is np.matmul
    (call,) = t.calls()
    assert call.seconds == pytest.approx(1e-3) and call.flops == 48
