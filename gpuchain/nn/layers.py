"""Layers: Dense (the fused dense op), Sequential, MLP, Identity and Flatten."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuchain.backend import get_default_dtype
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import ShapeError
from gpuchain.nn import init
from gpuchain.nn._activations import normalize
from gpuchain.nn.dense_op import dense
from gpuchain.nn.module import Module
from gpuchain.nn.parameter import Parameter


def positive_int(where: str, what: str, value: Any) -> int:
    """``value`` as an int if it is an integer >= 1 (bools, floats and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {what} must be a positive int, got {value!r} "
                         f"({type(value).__name__})")
    return int(value)


class Dense(Module):
    """A fully connected layer y = act(x @ weight + bias), one fused op.

    Parameters
    ----------
    in_features, out_features : int
        Widths (positive); ``weight`` has shape (in_features, out_features).
    activation : str or None
        One of ``gpuchain.nn.functional.ACTIVATIONS`` (None: identity).
    bias : bool
        Whether the layer has a bias.
    seed : int, numpy Generator or None
        Seed of the initial weights (He or Glorot, by activation).
    dtype : dtype, optional
        Parameter dtype (default: ``gc.get_default_dtype()``).
    slope : float
        Negative slope of "leaky_relu".
    """

    def __init__(self, in_features: int, out_features: int, activation: str | None = None,
                 bias: bool = True, seed: init.SeedLike = None, dtype: Any = None,
                 slope: float = 0.01, *, _flatten: bool = True) -> None:
        super().__init__()
        self.in_features = positive_int("Dense", "in_features", in_features)
        self.out_features = positive_int("Dense", "out_features", out_features)
        self.activation = normalize(activation)
        self.slope = float(slope)
        dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.weight = Parameter(init.for_activation(self.activation, self.in_features,
                                                    self.out_features, seed, dtype, slope))
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype)) if bias else None
        if _flatten:
            self.flat_buffers()

    def forward(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor):
            x = coerce_inputs((x,))[0]
        if x.ndim < 2 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"Dense({self.in_features} -> {self.out_features}): expected input width "
                f"{self.in_features} (shape (batch, {self.in_features})), received width "
                f"{x.shape[-1] if x.ndim else 'none'} (shape {tuple(x.shape)})")
        return dense(x, self.weight, self.bias, self.activation, self.slope)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, activation={self.activation!r}, "
                f"bias={self.bias is not None}")


class Sequential(Module):
    """Applies its modules in order; they are named "0", "1", ...

    Parameters
    ----------
    *modules : Module
        The layers, first to last.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)
        self.flat_buffers()

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __iter__(self):
        return iter(list(self._modules.values()))

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x


class MLP(Sequential):
    """Dense layers of widths ``sizes`` (input first), ``activation`` between them and
    ``output_activation`` after the last. Reproducible from ``seed``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first (at least two).
    activation, output_activation : str or None
        Activation between layers and after the last one.
    seed : int, numpy Generator or None
    dtype : dtype, optional
        Parameter dtype (default: ``gc.get_default_dtype()``).
    bias : bool
        Whether the layers have biases.
    """

    def __init__(self, sizes: Sequence[int], activation: str | None = "relu",
                 output_activation: str | None = None, seed: init.SeedLike = 0,
                 dtype: Any = None, bias: bool = True) -> None:
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise TypeError(f"MLP: sizes must be a sequence of ints (input width first), got "
                            f"{type(sizes).__name__} {sizes!r}")
        sizes = [positive_int("MLP", f"sizes[{i}]", s) for i, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes must list at least two positive widths, got {sizes}")
        rng = init.rng_from(seed)
        last = len(sizes) - 2
        layers = [Dense(sizes[i], sizes[i + 1],
                        activation if i < last else output_activation, bias=bias,
                        seed=rng, dtype=dtype, _flatten=False) for i in range(last + 1)]
        super().__init__(*layers)
        self.sizes = sizes


class Identity(Module):
    """Returns its input unchanged."""

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Flattens axes ``start_dim`` .. ``end_dim`` into one (default: all but the batch
    axis), as ``torch.nn.Flatten``.

    Parameters
    ----------
    start_dim, end_dim : int
        First and last axis merged (negative counts from the end).
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor):
            x = coerce_inputs((x,))[0]
        nd = x.ndim
        lo = self.start_dim % nd if nd else 0
        hi = self.end_dim % nd if nd else 0
        if lo > hi:
            raise ShapeError(f"Flatten: start_dim {self.start_dim} comes after end_dim "
                             f"{self.end_dim} for input {tuple(x.shape)}")
        shape = tuple(x.shape)
        merged = int(np.prod(shape[lo:hi + 1], dtype=np.int64))
        return x.reshape(shape[:lo] + (merged,) + shape[hi + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
