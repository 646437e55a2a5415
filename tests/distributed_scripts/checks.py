"""Data-parallel checks run under ``mpiexec -n N``; each rank writes its findings as JSON.

Usage: ``mpiexec -n N python checks.py OUT_DIR``. Every check computes its own oracle in
this process (the full-batch, single-process computation), so the pytest side only reads
the numbers. A failing rank raises, which aborts the whole job (gpuchain.distributed's
abort hook) and the pytest side reports the traceback.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import gpuchain.distributed as dist
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import CollectiveMismatchError
from gpuchain.nn import MLP, Module, Parameter
from gpuchain.nn.functional import cross_entropy
from gpuchain.optim import Adam

SIZES = [6, 9, 7, 4]


def data(n: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.normal(size=(n, SIZES[0])).astype(dtype), rng.integers(0, SIZES[-1], n)


def model(seed: int, dtype: type) -> MLP:
    return MLP(SIZES, activation="tanh", seed=seed, dtype=dtype)


def grads(m: Module) -> list[np.ndarray]:
    return [p.grad.numpy().copy() for p in m.parameters()]


def flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.ravel() for a in arrays])


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def identical_on_all_ranks(values: np.ndarray) -> bool:
    gathered = dist.all_gather(np.ascontiguousarray(values))
    return all(np.array_equal(gathered[0], row) for row in gathered)


def full_batch_grads(x: np.ndarray, y: np.ndarray, dtype: type, seed: int
                     ) -> list[np.ndarray]:
    ref = model(seed, dtype)
    cross_entropy(ref(Tensor(x)), Tensor(y)).backward()
    return grads(ref)


def check_grads(out: dict) -> None:
    rank = dist.get_rank()
    for dtype in (np.float64, np.float32):
        for n in (12 * dist.get_world_size(), 12 * dist.get_world_size() + 1):
            x, y = data(n, dtype)
            ref = flat(full_batch_grads(x, y, dtype, seed=7))  # rank 0's weights
            m = model(rank + 7, dtype)  # different weights per rank: DP broadcasts rank 0's
            dp = dist.DataParallel(m, bucket_mb=1e-4)  # tiny buckets: several per model
            part = dist.shard(n, seed=3)
            loss = cross_entropy(dp(Tensor(x[part.indices])), Tensor(y[part.indices]))
            (loss * part.weight).backward()
            got = flat(grads(m))
            kind = "even" if n % 12 == 0 else "uneven"  # 12 W + 1: uneven when W > 1
            key = f"grads_{np.dtype(dtype).name}_{kind}_{n}"
            out[key] = {"rel_err": rel_err(got, ref), "identical": identical_on_all_ranks(got),
                        "shard": len(part.indices),
                        "in_slots": all(p.grad._data is p.grad_view for p in m.parameters())}


def check_adam(out: dict) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    n = 10 * world + 1
    x, y = data(n, np.float64)
    ref = model(1, np.float64)  # rank 0's initial weights, which DataParallel broadcasts
    ref_opt = Adam(ref, lr=0.05)
    m = model(rank + 1, np.float64)
    dp = dist.DataParallel(m)
    opt = Adam(dp, lr=0.05)
    part = dist.shard(n, seed=5)
    xs, ys = Tensor(x[part.indices]), Tensor(y[part.indices])
    for _ in range(10):
        ref_opt.zero_grad()
        cross_entropy(ref(Tensor(x)), Tensor(y)).backward()
        ref_opt.step()
        opt.zero_grad()
        (cross_entropy(dp(xs), ys) * part.weight).backward()
        opt.step()
    got = flat([p.numpy() for p in m.parameters()])
    want = flat([p.numpy() for p in ref.parameters()])
    moved = flat([p.numpy() for p in model(1, np.float64).parameters()])
    out["adam_10_steps"] = {"rel_err": rel_err(got, want), "identical": identical_on_all_ranks(got),
                            "moved": rel_err(want, moved)}


def check_no_sync(out: dict) -> None:
    world = dist.get_world_size()
    n = 8 * world + 3
    x, y = data(n, np.float64)
    ref = flat(full_batch_grads(x, y, np.float64, seed=0))
    m = model(0, np.float64)
    dp = dist.DataParallel(m)
    part = dist.shard(n)
    first, second = np.array_split(part.indices, 2)
    local = model(0, np.float64)
    cross_entropy(local(Tensor(x[first])), Tensor(y[first])).backward()
    with dp.no_sync():
        loss = cross_entropy(dp(Tensor(x[first])), Tensor(y[first]))
        (loss * len(first) * world / n).backward()
    after_first = flat(grads(m))
    local_first = flat(grads(local)) * len(first) * world / n
    loss = cross_entropy(dp(Tensor(x[second])), Tensor(y[second]))
    (loss * len(second) * world / n).backward()
    got = flat(grads(m))
    out["no_sync"] = {"local_rel_err": rel_err(after_first, local_first),
                      "first_identical": identical_on_all_ranks(after_first),
                      "rel_err": rel_err(got, ref), "identical": identical_on_all_ranks(got)}


def check_broadcast_at_construction(out: dict) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    root = world - 1
    m = model(100 + rank, np.float32)
    dist.DataParallel(m, root=root)
    want = flat([p.numpy() for p in model(100 + root, np.float32).parameters()])
    got = flat([p.numpy() for p in m.parameters()])
    mine = flat([p.numpy() for p in model(100 + rank, np.float32).parameters()])
    out["broadcast_at_construction"] = {"equal_root": bool(np.array_equal(got, want)),
                                        "differed": bool(not np.array_equal(mine, want)),
                                        "root": root}


class TwoHeads(Module):
    """y = x @ a (+ x @ b on the ranks that use b): b gets no gradient on the others."""

    def __init__(self, use_b: bool) -> None:
        super().__init__()
        rng = np.random.default_rng(9)
        self.a = Parameter(rng.normal(size=(3, 2)))
        self.b = Parameter(rng.normal(size=(3, 2)))
        self.use_b = use_b
        self.flat_buffers()

    def forward(self, x: Tensor) -> Tensor:
        y = x @ self.a
        return y + x @ self.b if self.use_b else y


def check_unused(out: dict) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    x = np.random.default_rng(rank).normal(size=(5, 3))
    users = [r for r in range(world) if r % 2 == 0]
    m = TwoHeads(rank in users)
    dp = dist.DataParallel(m, bucket_mb=1e-5)
    (dp(Tensor(x)) ** 2).sum().backward()
    # Oracle: every rank's local gradients, computed from the same data locally.
    want_a, want_b = np.zeros((3, 2)), np.zeros((3, 2))
    for r in range(world):
        xr = np.random.default_rng(r).normal(size=(5, 3))
        local = TwoHeads(r in users)
        (local(Tensor(xr)) ** 2).sum().backward()
        want_a += local.a.grad.numpy()
        if local.b.grad is not None:
            want_b += local.b.grad.numpy()
    got = flat(grads(m))
    out["unused_param"] = {"rel_err": rel_err(got, flat([want_a / world, want_b / world])),
                           "identical": identical_on_all_ranks(got)}


def _value(rank: int, shape: tuple, dtype: np.dtype) -> np.ndarray:
    base = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) % 5 + rank
    if dtype.kind == "b":
        return np.asarray(base.astype(np.int64) % 2 == rank % 2)
    if dtype.kind == "c":
        return np.asarray(base + 1j * rank, dtype=dtype)
    return np.asarray(base, dtype=dtype)


def check_collectives(out: dict) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    cases = []
    dtypes = ["float16", "float32", "float64", "int32", "int64", "uint8", "complex128", "bool"]
    for name in dtypes:
        dtype = np.dtype(name)
        for shape in ((), (3,), (2, 3, 4)):
            every = [_value(r, shape, dtype) for r in range(world)]
            ops = ["max", "min"] if dtype.kind == "b" else ["sum"] if dtype.kind == "c" else \
                ["sum", "max", "min"] + (["mean"] if dtype.kind == "f" else [])
            for op in ops:
                for as_tensor in (False, True):
                    x = _value(rank, shape, dtype)
                    if as_tensor:
                        x = Tensor(x)
                    result = dist.all_reduce(x, op)
                    got = result.numpy() if isinstance(result, Tensor) else result
                    stack = np.stack(every)
                    want = {"sum": lambda s: s.sum(0, dtype=s.dtype),
                            "mean": lambda s: s.sum(0) / world,
                            "max": lambda s: s.max(0), "min": lambda s: s.min(0)}[op](stack)
                    ok = result is x and np.array_equal(got, np.asarray(want, dtype=dtype))
                    cases.append((f"all_reduce {op} {name}{shape}", bool(ok)))
            x = _value(rank, shape, dtype)
            ok = dist.broadcast(x, root=world - 1) is x and np.array_equal(x, every[-1])
            cases.append((f"broadcast {name}{shape}", bool(ok)))
            gathered = dist.all_gather(Tensor(_value(rank, shape, dtype)))
            cases.append((f"all_gather {name}{shape}",
                          isinstance(gathered, Tensor) and np.array_equal(gathered.numpy(),
                                                                          np.stack(every))))
    # non-contiguous views are reduced in place too
    base = np.arange(12.0).reshape(3, 4) + rank
    view = base.T
    dist.all_reduce(view)
    want = sum(np.arange(12.0).reshape(3, 4) + r for r in range(world)).T
    cases.append(("all_reduce non-contiguous view", bool(np.array_equal(base.T, want))))
    number = dist.all_reduce(rank + 1, "sum")
    cases.append(("all_reduce python int", number == world * (world + 1) // 2))
    cases.append(("all_gather python float", dist.all_gather(float(rank)) ==
                  [float(r) for r in range(world)]))
    out["collectives"] = {"failed": [c for c, ok in cases if not ok], "count": len(cases)}


def check_mismatch(out: dict) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    message = ""
    try:
        dist.all_reduce(np.zeros(3 + rank, dtype=np.float32))
    except CollectiveMismatchError as exc:
        message = str(exc)
    layout = ""
    try:  # ranks building different models: caught before any gradient is exchanged
        dist.DataParallel(MLP([3, 4 + rank, 2], seed=0))
    except CollectiveMismatchError as exc:
        layout = str(exc)
    buckets = ""
    try:
        dist.DataParallel(MLP([3, 4, 2], seed=0), bucket_mb=1 + rank)
    except CollectiveMismatchError as exc:
        buckets = str(exc)
    # the group still works afterwards (no rank was left inside a collective)
    after = dist.all_reduce(1, "sum")
    out["mismatch"] = {"message": message, "layout": layout, "buckets": buckets,
                       "after": after, "world": world}


def check_checkpoint(out: dict, folder: str) -> None:
    rank = dist.get_rank()
    m = model(rank, np.float64)
    dp = dist.DataParallel(m)
    opt = Adam(dp, lr=0.1)
    x, y = data(8, np.float64)
    cross_entropy(dp(Tensor(x)), Tensor(y)).backward()
    opt.step()
    path = os.path.join(folder, "ckpt.npz")
    dist.save_checkpoint(path, dp, opt, extra={"epoch": 3})
    fresh = model(50 + rank, np.float64)
    fresh_opt = Adam(fresh, lr=0.1)
    extra = dist.load_checkpoint(path, fresh, fresh_opt)
    same = all(np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(m.parameters(), fresh.parameters()))
    out["checkpoint"] = {"params_equal": bool(same), "extra": extra,
                         "step": fresh_opt.step_count}


def main() -> None:
    dist.init()
    out: dict = {"rank": dist.get_rank(), "world_size": dist.get_world_size(),
                 "local_rank": dist.get_local_rank(), "backend": dist.get_backend()}
    check_grads(out)
    check_adam(out)
    check_no_sync(out)
    check_broadcast_at_construction(out)
    check_unused(out)
    check_collectives(out)
    check_mismatch(out)
    check_checkpoint(out, sys.argv[1])
    dist.barrier()
    with open(os.path.join(sys.argv[1], f"rank{out['rank']}.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
