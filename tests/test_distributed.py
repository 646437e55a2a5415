"""gpuchain.distributed in one process (world size 1, no MPI needed): the same API, the
DataParallel bookkeeping, sharding and buckets. Multi-process runs: test_distributed_mpi.py."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain.distributed as dist
from gpuchain.distributed.buckets import make_buckets
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import DistributedError, DTypeError
from gpuchain.nn import MLP, Module, Parameter
from gpuchain.nn.functional import cross_entropy
from gpuchain.optim import Adam


@pytest.fixture(autouse=True)
def single_process(monkeypatch):
    for var in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALRANKID",
                "MV2_COMM_WORLD_SIZE", "HYDI_CONTROL_FD"):
        monkeypatch.delenv(var, raising=False)
    dist.init()


def _data(n=10):
    rng = np.random.default_rng(0)
    return Tensor(rng.normal(size=(n, 4))), Tensor(rng.integers(0, 3, n))


def _mlp(seed=0):
    return MLP([4, 8, 5, 3], activation="tanh", seed=seed, dtype=np.float64)


def test_group_of_one_without_a_launcher():
    assert not dist.launched_by_mpi()
    assert dist.is_initialized()
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    assert dist.get_backend() in ("single", "nccl")
    dist.barrier()
    dist.init()  # idempotent


def test_init_rejects_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'gloo'"):
        dist.init("gloo")


def test_collectives_at_world_size_one():
    x = np.arange(6.0).reshape(2, 3)
    assert dist.all_reduce(x, "mean") is x and np.array_equal(x, np.arange(6.0).reshape(2, 3))
    t = Tensor(np.ones(3, dtype=np.float32))
    assert dist.broadcast(t) is t
    g = dist.all_gather(t)
    assert isinstance(g, Tensor) and g.shape == (1, 3) and g._data is not t._data
    assert dist.all_reduce(3, "max") == 3
    assert dist.all_gather(2.5) == [2.5]


@pytest.mark.parametrize("call,error,match", [
    (lambda: dist.all_reduce(np.ones(2), "prod"), ValueError, "unknown op 'prod'"),
    (lambda: dist.all_reduce(np.ones(2, dtype=np.int32), "mean"), DTypeError, "int32"),
    (lambda: dist.all_reduce(np.ones(2, dtype=bool), "sum"), DTypeError, "bool"),
    (lambda: dist.all_reduce(np.ones(2, dtype=np.complex64), "max"), DTypeError, "complex"),
    (lambda: dist.broadcast(np.ones(2), root=1), ValueError, r"0\.\.0, got 1"),
    (lambda: dist.all_reduce("text"), TypeError, "got str"),
])
def test_collective_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_collective_refuses_a_recorded_op_output():
    w = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(DistributedError, match="output of a recorded op"):
        dist.all_reduce(w * 2.0)


def test_data_parallel_gradients_match_plain_backward_bitwise():
    x, y = _data()
    plain = _mlp()
    cross_entropy(plain(x), y).backward()
    wrapped = _mlp()
    dp = dist.DataParallel(wrapped)
    cross_entropy(dp(x), y).backward()
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        assert np.array_equal(p.grad.numpy(), q.grad.numpy())
        assert q.grad._data is q.grad_view  # in the flat gradient buffer, no copy left to do


def test_data_parallel_shares_the_module_buffers():
    m = _mlp()
    buffers = m.flat_buffers()
    dp = dist.DataParallel(m)
    assert dp.flat_buffers() == buffers
    assert Adam(dp).buffers == buffers
    assert [id(p) for p in dp.parameters()] == [id(p) for p in m.parameters()]
    assert all(p.is_leaf for p in m.parameters())  # the forward's rewiring is undone


def test_adam_through_data_parallel_equals_plain():
    x, y = _data()
    plain, wrapped = _mlp(), _mlp()
    dp = dist.DataParallel(wrapped, bucket_mb=1e-4)
    opts = Adam(plain, lr=0.1), Adam(dp, lr=0.1)
    for _ in range(3):
        for net, opt in zip((plain, dp), opts):
            opt.zero_grad()
            cross_entropy(net(x), y).backward()
            opt.step()
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        assert np.array_equal(p.numpy(), q.numpy())


def test_no_sync_accumulates():
    x, y = _data()
    plain, wrapped = _mlp(), _mlp()
    dp = dist.DataParallel(wrapped)
    for net in (plain, dp):
        ctx = dp.no_sync() if net is dp else None
        if ctx:
            with ctx:
                cross_entropy(net(x[:4]), y[:4]).backward()
        else:
            cross_entropy(net(x[:4]), y[:4]).backward()
        cross_entropy(net(x[4:]), y[4:]).backward()
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-14, atol=1e-16)


class _OneHead(Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = Parameter(np.ones((4, 2)))
        self.b = Parameter(np.ones((4, 2)))  # never used by forward
        self.flat_buffers()

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.a


def test_parameter_without_gradient_is_reduced_as_zeros():
    m = _OneHead()
    dp = dist.DataParallel(m)
    dp.flat_buffers()[0].grad[...] = 7.0  # stale values in the flat gradient
    (dp(Tensor(np.ones((3, 4)))) * 2.0).sum().backward()
    assert np.array_equal(m.a.grad.numpy(), np.full((4, 2), 6.0))
    assert m.b.grad is not None and np.array_equal(m.b.grad.numpy(), np.zeros((4, 2)))


def test_backward_through_a_replaced_forward_raises():
    x, y = _data()
    dp = dist.DataParallel(_mlp())
    first = cross_entropy(dp(x), y)
    dp(x)  # a second forward (e.g. an evaluation) replaces the first
    with pytest.raises(DistributedError, match="later forward replaced"):
        first.backward()


def test_second_backward_of_one_forward_raises():
    x, y = _data()
    dp = dist.DataParallel(_mlp())
    loss = cross_entropy(dp(x), y)
    loss.backward(retain_graph=True)
    with pytest.raises(DistributedError, match="already reduced"):
        loss.backward()


def test_forward_without_grad_records_nothing():
    from gpuchain.engine.mode import no_grad

    dp = dist.DataParallel(_mlp())
    with no_grad():
        out = dp(_data()[0])
    assert out._node is None


@pytest.mark.parametrize("cap_elems", [1, 40, 100, 10_000])
def test_buckets_cover_the_buffer_last_layer_first(cap_elems):
    m = _mlp()
    (buf,) = m.flat_buffers()
    buckets = make_buckets([buf], cap_elems * buf.dtype.itemsize)
    assert buckets[0].hi == buf.size and buckets[-1].lo == 0
    for a, b in zip(buckets, buckets[1:]):
        assert a.lo == b.hi  # contiguous, walking backwards
    params = [p for b in buckets for p in b.params]
    assert [id(p) for p in params] == [id(p) for p in reversed(buf.params)]
    for b in buckets:
        assert len(b.params) == 1 or (b.hi - b.lo) <= cap_elems
        assert b.view.size == b.hi - b.lo
    if cap_elems == 10_000:
        assert len(buckets) == 1


@pytest.mark.parametrize("n,world", [(10, 1), (10, 2), (11, 3), (7, 7), (100, 3)])
def test_shard_partitions_and_weights(n, world):
    parts = [dist.shard(n, seed=1, epoch=2, rank=r, world_size=world) for r in range(world)]
    allidx = np.concatenate([p.indices for p in parts])
    assert sorted(allidx.tolist()) == list(range(n))
    sizes = [len(p.indices) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sum(p.weight * len(p.indices) for p in parts) / world == pytest.approx(
        sum(len(p.indices) ** 2 for p in parts) * world / n / world)
    assert sum(p.weight for p in parts) == pytest.approx(world)  # equal-size shards: 1 each
    assert all(p.total == n for p in parts)


def test_shard_shuffles_by_seed_and_epoch():
    a = dist.shard(50, seed=1, epoch=0, rank=0, world_size=2).indices
    assert np.array_equal(a, dist.shard(50, seed=1, epoch=0, rank=0, world_size=2).indices)
    assert not np.array_equal(a, dist.shard(50, seed=1, epoch=1, rank=0, world_size=2).indices)
    assert np.array_equal(dist.shard(6, rank=1, world_size=2).indices, [3, 4, 5])


def test_shard_drop_last_and_errors():
    parts = [dist.shard(11, drop_last=True, rank=r, world_size=3) for r in range(3)]
    assert [len(p.indices) for p in parts] == [3, 3, 3] and parts[0].weight == 1.0
    with pytest.raises(ValueError, match="2 samples cannot be split over 3 ranks"):
        dist.shard(2, rank=0, world_size=3)
    with pytest.raises(ValueError, match="rank must lie in 0..1"):
        dist.shard(10, rank=2, world_size=2)


def test_loss_weight_single_process():
    assert dist.loss_weight(7) == 1.0
    with pytest.raises(ValueError, match="no samples"):
        dist.loss_weight(0)


def test_checkpoint_round_trip(tmp_path):
    x, y = _data()
    m = _mlp()
    dp = dist.DataParallel(m)
    opt = Adam(dp, lr=0.1)
    cross_entropy(dp(x), y).backward()
    opt.step()
    path = tmp_path / "run.npz"
    dist.save_checkpoint(path, dp, opt, extra={"epoch": 4})
    fresh = _mlp(seed=9)
    fresh_opt = Adam(fresh, lr=0.1)
    assert dist.load_checkpoint(path, fresh, fresh_opt) == {"epoch": 4}
    for p, q in zip(m.parameters(), fresh.parameters()):
        assert np.array_equal(p.numpy(), q.numpy())
    assert fresh_opt.step_count == 1
    with pytest.raises(DistributedError, match="rank 0 could not write"):
        dist.save_checkpoint(tmp_path / "missing" / "x.npz", dp)


def test_init_with_another_backend_after_init_raises():
    if dist.get_backend() != "single":
        pytest.skip("this process already uses MPI")
    with pytest.raises(DistributedError, match="already initialized with backend 'single'"):
        dist.init("mpi")


def test_mpi_requested_without_mpi4py_says_what_to_install(monkeypatch):
    import sys

    from gpuchain.distributed import group
    from gpuchain.errors import BackendUnavailableError

    monkeypatch.setitem(sys.modules, "mpi4py", None)  # "import mpi4py" now fails
    with pytest.raises(BackendUnavailableError, match=r"install gpuchain\[mpi\]"):
        group._mpi_world("mpi")
    monkeypatch.setenv("PMI_RANK", "0")
    assert dist.launched_by_mpi()
    with pytest.raises(BackendUnavailableError, match="started by an MPI launcher"):
        group._mpi_world("auto")


def test_single_process_needs_no_mpi_at_all():
    import os
    import subprocess
    import sys

    code = ("import sys; sys.modules['mpi4py'] = None\n"  # as if mpi4py were not installed
            "import numpy as np, gpuchain.distributed as dist\n"
            "from gpuchain.nn import MLP\n"
            "dist.init(); dist.DataParallel(MLP([2, 3], seed=0)); dist.barrier()\n"
            "print(dist.get_world_size(), dist.get_backend(), dist.all_reduce(2.0))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "OMPI", "MPI_"))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env | {"GPUCHAIN_BACKEND": "numpy"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "single", "2.0"]


def test_buckets_follow_rebuilt_buffers():
    x, y = _data()
    wrapped = _mlp()
    dp = dist.DataParallel(wrapped)
    cross_entropy(dp(x), y).backward()
    first = [id(b) for b in wrapped.flat_buffers()]
    dp.to("cpu")  # re-homes every parameter in new flat buffers
    assert [id(b) for b in wrapped.flat_buffers()] != first
    dp.zero_grad()
    cross_entropy(dp(x), y).backward()
    plain = _mlp()
    cross_entropy(plain(x), y).backward()
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        assert np.array_equal(p.grad.numpy(), q.grad.numpy())
        assert q.grad._data is q.grad_view
    buckets, _ = dp._buckets()
    assert {id(b.buffer) for b in buckets} == {id(b) for b in wrapped.flat_buffers()}


def test_wrapper_reads_the_module_attributes():
    m = _mlp()
    dp = dist.DataParallel(m)
    assert dp.sizes == m.sizes == [4, 8, 5, 3]
    assert dp.module is m and "world_size=1" in repr(dp)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        dp.nonexistent


def test_collective_timeout_setting(monkeypatch):
    from gpuchain.distributed.watchdog import DEFAULT_TIMEOUT_S, timeout_from

    monkeypatch.delenv("GPUCHAIN_DIST_TIMEOUT", raising=False)
    assert timeout_from(None) == DEFAULT_TIMEOUT_S
    assert timeout_from(5) == 5.0 and timeout_from(0) is None
    monkeypatch.setenv("GPUCHAIN_DIST_TIMEOUT", "12.5")
    assert timeout_from(None) == 12.5
    monkeypatch.setenv("GPUCHAIN_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="'soon' is not a number of seconds"):
        timeout_from(None)


def test_benchmark_skips_without_mpi(tmp_path, monkeypatch, capsys):
    from gpuchain.distributed import benchmark

    monkeypatch.setattr(benchmark, "_missing_mpi", lambda: "mpi4py is not installed")
    rows = tmp_path / "rows.json"
    assert benchmark.main(["--quick", "--json", str(rows)]) == 0
    assert "skipped: mpi4py is not installed" in capsys.readouterr().out
    assert rows.read_text() == "[]" and list(tmp_path.iterdir()) == [rows]
