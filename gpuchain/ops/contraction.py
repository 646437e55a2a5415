"""Tensor contractions: einsum (with NumPy's optimized pairwise order), tensordot, dot,
vdot, inner and outer.

``einsum`` normalizes its operands first (repeated labels within an operand become
diagonals; labels found in one operand only and not in the output are summed), then
contracts pairwise in the order ``np.einsum_path`` picks. Each pairwise contraction is
the primitive ``einsum``, which runs as one (batched) GEMM; its rules are einsums again,
so derivatives of any order come out as contractions too.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import ShapeError
from gpuchain.ops._args import as_tensors, index, one_axis
from gpuchain.ops._rules import lin

__all__ = ["dot", "einsum", "inner", "outer", "tensordot", "vdot"]

LETTERS = string.ascii_letters


# --- the primitive -------------------------------------------------------------------

def _parse(subscripts: str) -> tuple[list[str], str]:
    ins, out = subscripts.split("->")
    return ins.split(","), out


def _sum_lone(xp, x, sub, keep):
    """Sum the axes of ``x`` whose labels are not in ``keep``."""
    lone = tuple(i for i, c in enumerate(sub) if c not in keep)
    if not lone:
        return x, sub
    return x.sum(axis=lone), "".join(c for c in sub if c in keep)


def _pair(xp, a, b, sa, sb, so):
    """``einsum(sa,sb->so)`` as one batched GEMM (NumPy's einsum would loop for batch
    labels): permute to (batch, free, contracted) x (batch, contracted, free)."""
    a, sa = _sum_lone(xp, a, sa, sb + so)
    b, sb = _sum_lone(xp, b, sb, sa + so)
    batch = [c for c in so if c in sa and c in sb]
    con = [c for c in sa if c in sb and c not in so]
    fa = [c for c in sa if c not in sb]
    fb = [c for c in sb if c not in sa]
    size = dict(zip(sa, a.shape))
    size.update(zip(sb, b.shape))

    def block(labels):
        return math.prod(size[c] for c in labels)

    A = xp.transpose(a, [sa.index(c) for c in batch + fa + con])
    B = xp.transpose(b, [sb.index(c) for c in batch + con + fb])
    if batch:
        A = A.reshape(block(batch), block(fa), block(con))
        B = B.reshape(block(batch), block(con), block(fb))
    else:
        A = A.reshape(block(fa), block(con))
        B = B.reshape(block(con), block(fb))
    labels = batch + fa + fb
    C = xp.matmul(A, B).reshape([size[c] for c in labels])
    perm = [labels.index(c) for c in so]
    return C if perm == list(range(len(perm))) else xp.transpose(C, perm)


@defop("einsum")
def einsum_p(xp, *arrays, subscripts=""):
    ins, out = _parse(subscripts)
    if len(arrays) == 2:
        return _pair(xp, arrays[0], arrays[1], ins[0], ins[1], out)
    return xp.einsum(subscripts, *arrays)


def _fresh(subscripts: str, n: int) -> str:
    free = [c for c in LETTERS if c not in subscripts]
    if n > len(free):
        raise ValueError(f"einsum: more than {len(LETTERS)} labels needed (batch axes of a "
                         "derivative included)")
    return "".join(free[:n])


@einsum_p.vjp
def _(ctx, g):
    ins, out = _parse(ctx.params["subscripts"])
    batch = _fresh(ctx.params["subscripts"], g.ndim - len(out))
    grads = []
    for i in range(len(ctx.inputs)):
        if not ctx.needs_grad(i):
            grads.append(None)
            continue
        others = [t for k, t in enumerate(ctx.inputs) if k != i]
        subs = [batch + out] + [s for k, s in enumerate(ins) if k != i]
        grads.append(einsum_p(g, *others, subscripts=",".join(subs) + "->" + batch + ins[i]))
    return tuple(grads)


@einsum_p.jvp
def _(ctx, t):
    ins, out = _parse(ctx.params["subscripts"])
    k = next(i for i, tan in enumerate(t) if tan is not None)
    batch = _fresh(ctx.params["subscripts"], t[k].ndim - ctx.inputs[k].ndim)
    terms = []
    for i, tan in enumerate(t):
        if tan is None:
            terms.append(None)
            continue
        operands = list(ctx.inputs)
        operands[i] = tan
        subs = [batch + s if j == i else s for j, s in enumerate(ins)]
        terms.append(einsum_p(*operands, subscripts=",".join(subs) + "->" + batch + out))
    return lin(*terms)


# --- einsum --------------------------------------------------------------------------

def _split_spec(subscripts: str, operands: Sequence[Tensor]) -> tuple[list[str], str]:
    """Explicit per-operand labels (ellipses expanded to fresh labels, right-aligned)
    and the output labels (implicit output: NumPy's rule)."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, out = spec.split("->")
        explicit_out = True
    else:
        lhs, out, explicit_out = spec, "", False
    ins = lhs.split(",")
    if len(ins) != len(operands):
        raise ValueError(f"einsum: {len(ins)} operand subscripts in {subscripts!r} for "
                         f"{len(operands)} operands")
    for s in ins + [out]:
        bad = set(s.replace("...", "")) - set(LETTERS)
        if bad or s.replace("...", "").count(".") or s.count("...") > 1:
            raise ValueError(f"einsum: invalid subscripts {subscripts!r}")
    ell = 0
    for s, x in zip(ins, operands):
        n = len(s.replace("...", ""))
        if ("..." not in s and n != x.ndim) or ("..." in s and n > x.ndim):
            raise ValueError(f"einsum: subscripts {s!r} do not fit an operand of shape "
                             f"{x.shape}")
        ell = max(ell, x.ndim - n)
    ell_labels = _fresh(lhs + out, ell)
    expanded = []
    for s, x in zip(ins, operands):
        if "..." in s:
            k = x.ndim - len(s.replace("...", ""))
            s = s.replace("...", ell_labels[ell - k:])
        expanded.append(s)
    if explicit_out:
        out = out.replace("...", ell_labels)
    else:
        counts = "".join(expanded)
        once = sorted((c for c in set(counts) if counts.count(c) == 1 and c not in ell_labels),
                      key=LETTERS.index)
        out = ell_labels + "".join(once)
    return expanded, out


def _label_sizes(ins: list[str], operands: Sequence[Tensor], subscripts: str) -> dict:
    """The length of each label; length-1 axes broadcast against longer ones."""
    lengths: dict[str, set[int]] = {}
    for s, x in zip(ins, operands):
        for c, n in zip(s, x.shape):
            lengths.setdefault(c, set()).add(n)
    size = {}
    for c, ns in lengths.items():
        long = ns - {1}
        if len(long) > 1:
            raise ValueError(f"einsum: label {c!r} has lengths {sorted(ns)} in "
                             f"{subscripts!r} (shapes {[t.shape for t in operands]})")
        size[c] = long.pop() if long else 1
    return size


def _diagonalize(x: Tensor, s: str) -> tuple[Tensor, str]:
    from gpuchain.ops.linalg import diagonal

    while True:
        repeated = next((c for c in s if s.count(c) > 1), None)
        if repeated is None:
            return x, s
        i = s.index(repeated)
        j = s.index(repeated, i + 1)
        x = diagonal(x, 0, i, j)
        s = "".join(c for k, c in enumerate(s) if k not in (i, j)) + repeated


def einsum(subscripts: str, *operands: Any, optimize: bool | str = "greedy") -> Tensor:
    """Einstein summation over labelled axes, as ``np.einsum`` (explicit ``->`` output,
    implicit output, ``...`` broadcasting, repeated labels for diagonals).

    Contracts pairwise in the order ``np.einsum_path(..., optimize=optimize)`` picks
    (``"greedy"`` by default, ``"optimal"``, or ``False`` for left to right); each
    pairwise contraction runs as one batched GEMM and is differentiable to any order.

    Parameters
    ----------
    subscripts : str
        Labels of each operand's axes, comma separated, optionally ``->`` and the output labels.
    operands : Tensors or array_like
        The operands, one per comma-separated label group.
    optimize : {'greedy', 'optimal'} or False
        Contraction order: ``np.einsum_path``'s strategy, or left to right.
    """
    from gpuchain.ops.reduce import sum_p
    from gpuchain.ops.shape import broadcast_to, transpose

    ops = list(as_tensors(*operands))
    if not ops:
        raise ValueError("einsum: needs at least one operand")
    ins, out = _split_spec(subscripts, ops)
    size = _label_sizes(ins, ops, subscripts)
    bad_out = [c for c in out if c not in "".join(ins)]
    if bad_out or len(set(out)) != len(out):
        raise ValueError(f"einsum: output labels {out!r} must be distinct labels of the "
                         f"operands in {subscripts!r}")
    for k, (s, x) in enumerate(zip(ins, ops)):
        target = tuple(size[c] for c in s)
        if x.shape != target:  # a length-1 axis broadcast against the other operands
            ops[k] = broadcast_to(x, target)
        ops[k], ins[k] = _diagonalize(ops[k], s)
    for k, s in enumerate(ins):
        others = out + "".join(t for j, t in enumerate(ins) if j != k)
        lone = tuple(i - len(s) for i, c in enumerate(s) if c not in others)
        if lone:
            ops[k] = sum_p(ops[k], axis=lone, keepdims=False)
            ins[k] = "".join(c for c in s if c in others)
    while len(ops) > 1:
        step = _path(ins, ops, out, optimize)
        picked = [ops[i] for i in step]
        subs = [ins[i] for i in step]
        rest = [s for i, s in enumerate(ins) if i not in step]
        keep = out + "".join(rest)
        labels = "".join(dict.fromkeys(c for s in subs for c in s if c in keep))
        result = einsum_p(*picked, subscripts=",".join(subs) + "->" + labels)
        ops = [t for i, t in enumerate(ops) if i not in step] + [result]
        ins = rest + [labels]
    x, s = ops[0], ins[0]
    if s != out:
        x = transpose(x, [s.index(c) for c in out])
    return x


def _path(ins: list[str], ops: list[Tensor], out: str, optimize: bool | str) -> tuple:
    """The first contraction of the optimized order (positions in ``ops``)."""
    if len(ops) == 2 or optimize is False:
        return (0, 1)
    dummies = [np.broadcast_to(np.empty((), dtype=np.float64), t.shape) for t in ops]
    path, _ = np.einsum_path(",".join(ins) + "->" + out, *dummies,
                             optimize=optimize if isinstance(optimize, str) else "greedy")
    return tuple(path[1])


# --- tensordot and the products built on it ------------------------------------------

def _normalize_axes(axes: Any, a: Tensor, b: Tensor) -> tuple[list[int], list[int]]:
    if isinstance(axes, (int, np.integer)):
        n = index(axes, "axes", "tensordot")
        if n < 0 or n > min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: cannot contract {n} axes of shapes {a.shape} and "
                             f"{b.shape}")
        return list(range(a.ndim - n, a.ndim)), list(range(n))
    xa, xb = axes
    xa = [xa] if isinstance(xa, (int, np.integer)) else list(xa)
    xb = [xb] if isinstance(xb, (int, np.integer)) else list(xb)
    if len(xa) != len(xb):
        raise ValueError(f"tensordot: {len(xa)} axes of a but {len(xb)} of b")
    xa = [one_axis(i, a.ndim, "tensordot") + a.ndim for i in xa]
    xb = [one_axis(i, b.ndim, "tensordot") + b.ndim for i in xb]
    for i, j in zip(xa, xb):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: contracted axes differ in length: a axis {i} "
                             f"({a.shape[i]}) and b axis {j} ({b.shape[j]})")
    return xa, xb


def tensordot(a: Any, b: Any, axes: int | Sequence[Any] = 2) -> Tensor:
    """Sum of products over the given axes: the last ``axes`` of ``a`` with the first of
    ``b`` (an int), or the listed pairs ``(axes_a, axes_b)``; the result has ``a``'s free
    axes then ``b``'s. Runs as one GEMM.

    Parameters
    ----------
    a : Tensor or array_like
        First operand.
    b : Tensor or array_like
        Second operand.
    axes : int or pair of sequences
        The number of trailing/leading axes, or the axes of each operand.
    """
    x, y = as_tensors(a, b)
    xa, xb = _normalize_axes(axes, x, y)
    la = LETTERS[:x.ndim]
    letters_b = list(LETTERS[x.ndim:x.ndim + y.ndim])
    for i, j in zip(xa, xb):
        letters_b[j] = la[i]
    lb = "".join(letters_b)
    out = "".join(c for c in la if c not in lb) + "".join(c for c in lb if c not in la)
    return einsum_p(x, y, subscripts=f"{la},{lb}->{out}")


def dot(a: Any, b: Any) -> Tensor:
    """NumPy's dot: a product with a scalar, the inner product of vectors, the matrix
    product, or a sum over the last axis of ``a`` and the second-to-last of ``b``.

    Parameters
    ----------
    a : Tensor or array_like
        First operand.
    b : Tensor or array_like
        Second operand.
    """
    from gpuchain.ops.linalg import matmul

    x, y = as_tensors(a, b)
    if x.ndim == 0 or y.ndim == 0:
        return x * y
    if y.ndim <= 2:
        return matmul(x, y)
    return tensordot(x, y, axes=([-1], [-2]))


def vdot(a: Any, b: Any) -> Tensor:
    """The dot product of the flattened inputs (real inputs: no conjugation).

    Parameters
    ----------
    a : Tensor or array_like
        First operand (flattened).
    b : Tensor or array_like
        Second operand (flattened).
    """
    from gpuchain.ops.shape import ravel

    x, y = as_tensors(a, b)
    if x.size != y.size:
        raise ValueError(f"vdot: inputs of {x.size} and {y.size} elements")
    return tensordot(ravel(x), ravel(y), axes=1)


def inner(a: Any, b: Any) -> Tensor:
    """Sum of products over the last axes (a product when either is a scalar).

    Parameters
    ----------
    a : Tensor or array_like
        First operand.
    b : Tensor or array_like
        Second operand.
    """
    x, y = as_tensors(a, b)
    if x.ndim == 0 or y.ndim == 0:
        return x * y
    return tensordot(x, y, axes=([-1], [-1]))


def outer(a: Any, b: Any) -> Tensor:
    """``out[i, j] = a.ravel()[i] * b.ravel()[j]``.

    Parameters
    ----------
    a : Tensor or array_like
        First operand (flattened).
    b : Tensor or array_like
        Second operand (flattened).
    """
    from gpuchain.ops.shape import reshape

    x, y = as_tensors(a, b)
    return reshape(x, (-1, 1)) * reshape(y, (1, -1))

