"""DataParallel: the same model on every rank, gradients averaged across ranks in buckets.

How the gradients are caught as they become final, with no hook in the engine: during the
wrapped forward each Parameter temporarily carries a private "gradient ready" node as its
``_node``, so every op that consumes it records an edge to that node instead of to the
leaf. The reverse pass then calls the node's rule exactly once, with the parameter's
total gradient, when its last consumer is done. The rule puts the gradient in its slot of
the flat gradient buffer, marks it ready in its bucket and starts the bucket's all-reduce
once the whole bucket is ready. All those nodes feed one "gradients final" node that the
pass reaches only after every one of them; it fills parameters that received no gradient
with zeros, reduces what is left and waits, so ``loss.backward()`` returns with averaged
gradients and the optimizers need no change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.distributed import collectives, mpi
from gpuchain.distributed.buckets import DEFAULT_BUCKET_MB, Bucket, BucketComm, make_buckets
from gpuchain.distributed.group import Group, current
from gpuchain.engine.mode import state
from gpuchain.engine.op import Node, Primitive, grad_node
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import DistributedError
from gpuchain.nn.buffer import FlatBuffer
from gpuchain.nn.module import Module
from gpuchain.nn.parameter import Parameter


def _never(*_: Any, **__: Any) -> Any:
    raise RuntimeError("internal op of gpuchain.distributed: it has no forward")


# Private primitives (not in the op registry): they only appear as nodes in a reverse pass.
_GRAD_READY = Primitive("distributed.grad_ready", _never, save="none")
_GRADS_FINAL = Primitive("distributed.grads_final", _never, save="none")


class DataParallel(Module):
    """Wrap ``module`` for data-parallel training over the process group.

    At construction rank ``root``'s parameters are broadcast, so every rank starts
    identical. Use the wrapper like the module (``model(x)``, ``Adam(model)``); after
    ``loss.backward()`` every parameter's ``.grad`` holds the mean of the ranks' gradients,
    bitwise identical on every rank. Scale each rank's loss with ``shard(...).weight``
    (or ``loss_weight``) when shards differ in size, so the mean equals the full-batch
    gradient.

    Parameters
    ----------
    module : Module
        The model; its flat parameter buffers are shared, not copied.
    bucket_mb : float
        Approximate bucket size in MiB (25 by default, as in PyTorch DDP).
    root : int
        The rank whose initial parameters everyone takes.
    check : bool
        Verify at construction that every rank has the same parameter names, shapes and
        dtypes (raises ``CollectiveMismatchError`` on every rank otherwise).

    Notes
    -----
    One backward per forward: a second forward before the backward of the first makes
    the first one's graph unusable for reduction (its backward raises). Differentiating
    the reduced gradients (``create_graph=True``) and batched cotangents are not supported.
    """

    def __init__(self, module: Module, *, bucket_mb: float = DEFAULT_BUCKET_MB,
                 root: int = 0, check: bool = True) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a gpuchain Module, got "
                            f"{type(module).__name__}")
        if not (isinstance(bucket_mb, (int, float)) and bucket_mb > 0):
            raise ValueError(f"DataParallel: bucket_mb must be a positive number, "
                             f"got {bucket_mb!r}")
        super().__init__()
        self.module = module
        self.bucket_bytes = int(bucket_mb * (1 << 20))
        self.group: Group = current()
        self._sync = True
        self._layout: tuple[list[int], list[Bucket], dict[int, int]] | None = None
        self._pass: _Pass | None = None
        buffers = module.flat_buffers()
        if check and self.group.world_size > 1:
            _check_layout(self.group, module, self.bucket_bytes, root)
        for buf in buffers:
            collectives.broadcast(buf.data, root, check=False)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the wrapped module's own attributes
        # (``model.sizes``, a custom method) read as before.
        inner = self.__dict__.get("module")
        if inner is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(inner, name)

    def flat_buffers(self) -> list[FlatBuffer]:
        """The wrapped module's flat buffers (never a second copy)."""
        return self.module.flat_buffers()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if not (self._sync and state.grad_enabled):
            return self.module(*args, **kwargs)
        buckets, bucket_of = self._buckets()
        if self._pass is not None:
            self._pass.stale = True
        run = _Pass(self.group, buckets, bucket_of)
        self._pass = run
        params = [p for b in buckets for p in b.params]
        for p in params:
            # ops that consume p now record an edge to its "gradient ready" node
            p._node = run.node_for(p)  # type: ignore[assignment]
        try:
            return self.module(*args, **kwargs)
        finally:
            for p in params:
                p._node = None

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside this block, backward passes accumulate local gradients without any
        communication; the first synchronized backward after it averages the sum."""
        previous = self._sync
        self._sync = False
        try:
            yield
        finally:
            self._sync = previous

    def _buckets(self) -> tuple[list[Bucket], dict[int, int]]:
        buffers = self.module.flat_buffers()
        ids = [id(b) for b in buffers]
        if self._layout is None or self._layout[0] != ids:
            buckets = make_buckets(buffers, self.bucket_bytes)
            bucket_of = {id(p): i for i, b in enumerate(buckets) for p in b.params}
            self._layout = (ids, buckets, bucket_of)
        return self._layout[1], self._layout[2]

    def extra_repr(self) -> str:
        return (f"world_size={self.group.world_size}, rank={self.group.rank}, "
                f"bucket_mb={self.bucket_bytes / (1 << 20):g}")


def _check_layout(group: Group, module: Module, bucket_bytes: int, root: int) -> None:
    """Every rank must hold the same parameters and cut the same buckets from the same
    root, or the reductions would pair unrelated slices."""
    params = tuple((name, tuple(p.shape), p.dtype.str) for name, p in module.named_parameters())

    def describe(s: tuple[Any, ...]) -> str:
        ps, cap, src = s
        shown = ", ".join(f"{n} {np.dtype(d).name}{shape}" for n, shape, d in ps[:4])
        return (f"{len(ps)} parameters [{shown}{', ...' if len(ps) > 4 else ''}], "
                f"bucket {cap} bytes, root {src}")

    with group.watch("DataParallel (parameter layout check)"):
        mpi.check_same(group.comm, "DataParallel (parameter layout)",
                       (params, bucket_bytes, root), describe)


class _Pass:
    """The reduction state of one forward/backward."""

    def __init__(self, group: Group, buckets: list[Bucket], bucket_of: dict[int, int]) -> None:
        self.buckets = buckets
        self.bucket_of = bucket_of
        self.missing = [len(b.params) for b in buckets]
        self.received: set[int] = set()
        self.next = 0
        self.stale = False
        self.done = False
        self.anchor_sent = False
        self.comm = BucketComm(group)
        self.final = _node(_GRADS_FINAL, self, (), (), ())

    def node_for(self, p: Parameter) -> Node:
        return _node(_GRAD_READY, (self, p), (grad_node(p), self.final), (p.shape, ()),
                     (p.dtype, np.dtype(np.float64)))

    def _usable(self, what: str) -> None:
        if self.stale:
            raise DistributedError(
                f"DataParallel: {what} of a forward that a later forward replaced; call "
                "backward once per forward (use no_sync() for all but the last micro-batch)")
        if self.done:
            raise DistributedError(f"DataParallel: {what} reached a forward whose gradients "
                                   "were already reduced; run the forward again")
        if state.grad_enabled:
            raise DistributedError("DataParallel: backward with create_graph=True is not "
                                   "supported (the reduced gradients are not differentiable)")

    def grad_ready(self, p: Parameter, g: Tensor) -> tuple[Tensor, Tensor | None]:
        self._usable("backward")
        if tuple(g.shape) != tuple(p.shape):
            raise DistributedError(
                f"DataParallel: gradient of shape {tuple(g.shape)} for a parameter of shape "
                f"{tuple(p.shape)} (batched cotangents are not supported)")
        self._take(p, g._data)
        i = self.bucket_of[id(p)]
        self.received.add(id(p))
        self.missing[i] -= 1
        if self.missing[i] == 0:
            self._launch_ready()
        anchor = None
        if not self.anchor_sent:  # one cotangent reaches the final node, so its rule runs
            self.anchor_sent = True
            anchor = Tensor(np.zeros((), dtype=np.float64))
        return Tensor._from_op(p.grad_view, None), anchor

    def _take(self, p: Parameter, g: Any) -> None:
        """Put the local gradient (plus any accumulated under no_sync) in p's slot."""
        slot = p.grad_view
        p.claim_grad_slot()
        if p.grad is not None:
            array_module_of(slot).add(p.grad._data, g, out=slot)
            p.grad = None
        elif g is not slot:
            slot[...] = g

    def _launch_ready(self) -> None:
        while self.next < len(self.buckets) and self.missing[self.next] == 0:
            self.comm.start(self.buckets[self.next].view)
            self.next += 1

    def finish(self) -> tuple[()]:
        self._usable("the end of backward")
        for i in range(self.next, len(self.buckets)):
            for p in self.buckets[i].params:
                if id(p) not in self.received:
                    self._zero_fill(p)
            self.missing[i] = 0
        self._launch_ready()
        self.comm.finish()
        self.done = True
        return ()

    def _zero_fill(self, p: Parameter) -> None:
        slot = p.grad_view
        p.claim_grad_slot()
        if p.grad is None:
            slot[...] = 0
        elif p.grad._data is not slot:
            slot[...] = p.grad._data
        p.grad = Tensor._from_op(slot, None)


def _node(op: Primitive, residuals: Any, edges: tuple[Any, ...], shapes: tuple[Any, ...],
          dtypes: tuple[Any, ...]) -> Node:
    """A recorded node that saves nothing (its rule reads only ``residuals``)."""
    return Node(op, {}, edges, shapes, dtypes, inputs=None, out_data=None,
                residuals=residuals, recorded_at=None, created_at=None)


@_GRAD_READY.vjp
def _grad_ready_rule(node: Node, g: Tensor) -> tuple[Tensor, Tensor | None]:
    run, p = node.residuals
    return run.grad_ready(p, g)


@_GRADS_FINAL.vjp
def _grads_final_rule(node: Node, g: Tensor) -> tuple[()]:
    return node.residuals.finish()
