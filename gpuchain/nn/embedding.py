"""Embedding: a lookup table of ``num_embeddings`` vectors; gradients scatter-add back."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, get_default_dtype
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import DTypeError, ShapeError
from gpuchain.nn import init
from gpuchain.nn.layers import positive_int
from gpuchain.nn.module import Module
from gpuchain.nn.parameter import Parameter
from gpuchain.ops import indexing as gops


class Embedding(Module):
    """A lookup table: ``weight[indices]`` with ``weight`` of shape (num_embeddings,
    embedding_dim), initialized N(0, 1) as ``torch.nn.Embedding``.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        Table size and vector width.
    padding_idx : int, optional
        A row that starts at zero and receives no gradient.
    seed : int, numpy Generator or None
    dtype : dtype, optional
        Parameter dtype (default: ``gc.get_default_dtype()``).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 padding_idx: int | None = None, seed: init.SeedLike = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is outside "
                                 f"[-{self.num_embeddings}, {self.num_embeddings})")
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        w = init.rng_from(seed).standard_normal((self.num_embeddings, self.embedding_dim))
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = Parameter(w.astype(dtype))
        self.flat_buffers()

    def forward(self, indices: Any) -> Tensor:
        idx = indices._data if isinstance(indices, Tensor) else indices
        xp = array_module_of(self.weight._data)
        idx = xp.asarray(idx) if not hasattr(idx, "dtype") else idx
        if idx.dtype.kind not in "iu":
            raise DTypeError(f"Embedding: indices must be integers, got {idx.dtype}"
                             f"{tuple(idx.shape)}")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.num_embeddings):
            raise ShapeError(f"Embedding: indices must lie in [0, {self.num_embeddings}), "
                             f"found values in [{int(idx.min())}, {int(idx.max())}]")
        out = gops.take(self.weight, idx, axis=0)
        if self.padding_idx is not None:
            # lookups of the padding row keep their value but pass no gradient to the table
            keep = (idx != self.padding_idx).astype(out.dtype)[..., None]
            out = out * Tensor(keep) + out.detach() * Tensor(1 - keep)
        return out

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
