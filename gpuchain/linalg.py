"""``gc.linalg``: solvers, decompositions and norms, differentiable in both modes.

NumPy's signatures (``np.linalg``); stacks of matrices in the leading axes work
throughout. The primitives (``inv``, ``solve``, ``det``, ``slogdet``, ``cholesky``,
``qr``, ``eigh``, ``svd``) have rules written with gpuchain ops, so they are
differentiable to any order. A decomposition with several results returns them packed
in one array, split by the public function, so one primitive serves every output.

Derivative conventions (those of PyTorch and JAX):

- ``cholesky`` and ``eigh`` read one triangle of a symmetric input; their gradient is the
  symmetric matrix (the derivative along symmetric perturbations).
- ``eigh``: eigenvalue derivatives always exist. Eigenvector derivatives are undefined at
  repeated eigenvalues: reverse mode raises :class:`gpuchain.LinAlgError` when a nonzero
  cotangent reaches eigenvectors of a repeated eigenvalue; forward mode returns the
  tangent without rotation inside that eigenspace.
- ``svd``: the same for repeated singular values (and zero singular values of a
  non-square matrix); gradients need ``full_matrices=False`` unless the matrix is square.
- ``qr``: gradients for ``mode="reduced"`` (or ``"r"``) with ``m >= n``, as in JAX.
- A singular matrix given to ``inv``, ``solve``, ``det``' derivative or ``slogdet``'s
  derivative raises (``det``'s value itself is fine).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import LinAlgError
from gpuchain.ops._args import as_tensor, as_tensors
from gpuchain.ops._rules import const_like, lin
from gpuchain.ops.linalg import diagonal, tril
from gpuchain.ops.shape import concatenate, reshape, swapaxes

__all__ = ["cholesky", "det", "eigh", "inv", "norm", "qr", "slogdet", "solve", "svd"]


# --- helpers ---------------------------------------------------------------------------

def _T(x: Tensor) -> Tensor:
    return swapaxes(x, -1, -2)


def _eye(n: int, like: Tensor) -> Tensor:
    return const_like(array_module_of(like._data).eye(n), like)


def _diag_embed(v: Tensor) -> Tensor:
    n = v.shape[-1]
    return reshape(v, v.shape[:-1] + (1, n)) * _eye(n, v)


def _trace(x: Tensor) -> Tensor:
    from gpuchain.ops.reduce import sum_p

    return sum_p(diagonal(x, 0, -2, -1), axis=(-1,), keepdims=False)


def _square_matrix(a: Any, fn: str) -> Tensor:
    """``a`` as a floating Tensor holding a (stack of) square matrices, or a clear error."""
    x = _float(a)
    _square(x, fn)
    return x


def _square(a: Tensor, fn: str) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"linalg.{fn}: expected a (stack of) square matrices, got shape "
                         f"{a.shape}")
    if a.dtype.kind not in "f":
        raise TypeError(f"linalg.{fn}: expected a floating matrix, got {a.dtype}")


def _float(a: Any) -> Tensor:
    x = as_tensor(a)
    if x.dtype.kind in "iub":
        x = x.astype(np.float64)
    return x


class _Packing:
    """Several results of one decomposition as one array: each result flattened over
    its core axes and joined along the last axis (the stack axes stay in front)."""

    def __init__(self, shapes: list[tuple[int, ...]]) -> None:
        self.shapes = shapes
        self.sizes = [math.prod(s) for s in shapes]

    def pack(self, xp: Any, arrays: list[Any]) -> Any:
        lead = arrays[0].shape[:arrays[0].ndim - len(self.shapes[0])]
        return xp.concatenate([a.reshape(lead + (-1,)) for a in arrays], axis=-1)

    def unpack(self, t: Tensor) -> list[Tensor]:
        out, start = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            piece = t[..., start:start + size]
            out.append(reshape(piece, piece.shape[:-1] + shape))
            start += size
        return out

    def join(self, parts: list[Tensor]) -> Tensor:
        flat = [reshape(p, p.shape[:p.ndim - len(s)] + (-1,)) for p, s in zip(parts,
                                                                             self.shapes)]
        return concatenate(flat, axis=-1)


def _degenerate(gaps: Any, scale: Any, dtype: np.dtype) -> Any:
    """Pairs (off the diagonal) whose gap is at rounding level: treated as repeated."""
    xp = array_module_of(gaps)
    n = gaps.shape[-1]
    tol = 100 * np.finfo(dtype).eps * xp.maximum(scale, 1.0)
    return (xp.abs(gaps) <= tol[..., None, None]) & ~xp.eye(n, dtype=bool)


# --- inv, solve, det, slogdet --------------------------------------------------------

@defop("inv", save="output")
def inv_p(xp, a):
    return xp.linalg.inv(a)


@inv_p.vjp
def _(ctx, g):
    ai = _T(ctx.out)
    return (-(ai @ g @ ai),)


@inv_p.jvp
def _(ctx, t):
    ai = ctx.out
    return -(ai @ t[0] @ ai)


def inv(a: Any) -> Tensor:
    """The inverse of a (stack of) square matrices. Derivative: ``-A⁻ᵀ G A⁻ᵀ``.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    """
    x = _square_matrix(a, "inv")
    return inv_p(x)


def _batch_broadcast(xp, a, b):
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return (xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(b, batch + b.shape[-2:]))


_SCIPY: dict[str, Any] = {}


def _lapack(xp: Any, a: Any) -> Any:
    """``scipy.linalg`` (NumPy) or ``cupyx.scipy.linalg`` (CuPy) for a single matrix ``a``
    when installed (LU factors to reuse, triangular solves); None otherwise."""
    if a.ndim != 2:
        return None
    key = "numpy" if xp is np else "cupy"
    if key not in _SCIPY:
        try:
            if xp is np:
                import scipy.linalg as sl
            else:
                import cupyx.scipy.linalg as sl
        except ImportError:
            sl = None
        _SCIPY[key] = sl
    return _SCIPY[key]


def _as_columns(xp, b):
    """``b`` (..., M, K) as one (M, N) block of columns, and the map back."""
    m, k = b.shape[-2:]
    lead = b.shape[:-2]
    cols = xp.moveaxis(b, -2, 0).reshape(m, -1)
    return cols, lambda x: xp.moveaxis(x.reshape((m,) + lead + (k,)), 0, -2)


def _lu_factor(sl, xp, a):
    with warnings.catch_warnings():  # a singular matrix raises below instead
        warnings.simplefilter("ignore")
        lu, piv = sl.lu_factor(a, check_finite=False)
    if bool((xp.diagonal(lu) == 0).any()):
        raise np.linalg.LinAlgError("Singular matrix")
    return lu, piv


# Stacks broadcast, as in matmul. With SciPy, the LU factors of the forward are the
# residuals, and the backward's transposed solve reuses them (as PyTorch does).
@defop("solve", save="both", residuals=True, broadcasts=True)
def solve_p(xp, a, b, transpose=False, factors=None):
    sl = _lapack(xp, a)
    if sl is None:
        a, b = _batch_broadcast(xp, a, b)
        return xp.linalg.solve(xp.swapaxes(a, -1, -2) if transpose else a, b), None
    if factors is None:
        factors = _lu_factor(sl, xp, a)
    cols, back = _as_columns(xp, b)
    return back(sl.lu_solve(factors, cols, trans=1 if transpose else 0,
                            check_finite=False)), factors


@solve_p.vjp
def _(ctx, g):
    a, _ = ctx.inputs
    tr = ctx.params.get("transpose", False)
    gb = solve_p(a, g, transpose=not tr, factors=ctx.residuals)
    ga = None
    if ctx.needs_grad(0):
        ga = -(ctx.out @ _T(gb)) if tr else -(gb @ _T(ctx.out))
    return ga, gb


@solve_p.jvp
def _(ctx, t):
    a, _ = ctx.inputs
    tr = ctx.params.get("transpose", False)
    da = None if t[0] is None else (_T(t[0]) if tr else t[0])
    rhs = lin(t[1], None if da is None else -(da @ ctx.out))
    return solve_p(a, rhs, transpose=tr, factors=ctx.residuals)


@defop("solve_triangular", save="both", broadcasts=True)
def solve_triangular_p(xp, a, b, lower=True):
    """``a⁻¹ b`` for a triangular ``a`` (only its ``lower`` or upper triangle is read)."""
    sl = _lapack(xp, a)
    if sl is None:
        tri = xp.tril(a) if lower else xp.triu(a)
        tri, b = _batch_broadcast(xp, tri, b)
        return xp.linalg.solve(tri, b)
    cols, back = _as_columns(xp, b)
    return back(sl.solve_triangular(a, cols, lower=lower, check_finite=False))


def _triangle_of(x: Tensor, lower: bool) -> Tensor:
    from gpuchain.ops.linalg import triu

    return tril(x) if lower else triu(x)


@solve_triangular_p.vjp
def _(ctx, g):
    a, _ = ctx.inputs
    lower = ctx.params.get("lower", True)
    gb = solve_triangular_p(_T(a), g, lower=not lower)
    ga = -_triangle_of(gb @ _T(ctx.out), lower) if ctx.needs_grad(0) else None
    return ga, gb


@solve_triangular_p.jvp
def _(ctx, t):
    a, _ = ctx.inputs
    lower = ctx.params.get("lower", True)
    da = None if t[0] is None else -(_triangle_of(t[0], lower) @ ctx.out)
    return solve_triangular_p(a, lin(t[1], da), lower=lower)


def solve(a: Any, b: Any) -> Tensor:
    """``x`` with ``a @ x == b``: ``a`` (..., M, M); ``b`` (M,) or (..., M, K), stacks
    broadcast (NumPy 2 rules). Derivatives: ``Ḃ = A⁻ᵀ G``, ``Ā = -Ḃ xᵀ``.

    Parameters
    ----------
    a : Tensor or array_like
        The (stack of) square coefficient matrices.
    b : Tensor or array_like
        Right-hand side: a vector or a (stack of) matrices.
    """
    x, y = as_tensors(_float(a), b)
    _square(x, "solve")
    vector = y.ndim == 1
    if vector:
        y = reshape(y, (y.shape[0], 1))
    if y.shape[-2] != x.shape[-1]:
        raise ValueError(f"linalg.solve: a of shape {x.shape} and b of shape {tuple(y.shape)}"
                         " do not fit")
    out = solve_p(x, y.astype(x.dtype) if y.dtype != x.dtype else y)
    return reshape(out, out.shape[:-1]) if vector else out


@defop("det", save="both")
def det_p(xp, a):
    return xp.linalg.det(a)


def _expand2(v: Tensor) -> Tensor:
    return reshape(v, v.shape + (1, 1))


@det_p.vjp
def _(ctx, g):
    a = ctx.inputs[0]
    return (_expand2(g * ctx.out) * _T(inv(a)),)


@det_p.jvp
def _(ctx, t):
    return ctx.out * _trace(solve_p(ctx.inputs[0], t[0]))


def det(a: Any) -> Tensor:
    """The determinant of a (stack of) square matrices. Derivative ``det(A) A⁻ᵀ``
    (undefined, and raising, at singular matrices).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    """
    x = _square_matrix(a, "det")
    return det_p(x)


@defop("slogdet", save="inputs")
def slogdet_p(xp, a):
    return xp.linalg.slogdet(a)[1]


@slogdet_p.vjp
def _(ctx, g):
    return (_expand2(g) * _T(inv(ctx.inputs[0])),)


@slogdet_p.jvp
def _(ctx, t):
    return _trace(solve_p(ctx.inputs[0], t[0]))


class SlogdetResult(NamedTuple):
    sign: Tensor
    logabsdet: Tensor


def slogdet(a: Any) -> SlogdetResult:
    """``(sign, log|det a|)``; the sign is not differentiable, the log-determinant has
    derivative ``A⁻ᵀ``.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    """
    x = _square_matrix(a, "slogdet")
    xp = array_module_of(x._data)
    sign = Tensor._from_op(xp.asarray(xp.linalg.slogdet(x._data)[0]), None)
    return SlogdetResult(sign, slogdet_p(x))


# --- cholesky ------------------------------------------------------------------------

def _phi(x: Tensor) -> Tensor:
    """The lower triangle with the diagonal halved."""
    n = x.shape[-1]
    w = np.tril(np.ones((n, n))) - 0.5 * np.eye(n)
    return x * const_like(array_module_of(x._data).asarray(w), x)


def _sym(x: Tensor) -> Tensor:
    return 0.5 * (x + _T(x))


@defop("cholesky", save="output")
def cholesky_p(xp, a):
    return xp.linalg.cholesky(a)


@cholesky_p.vjp
def _(ctx, g):
    L = ctx.out
    p = _phi(_T(L) @ g)
    z = solve_triangular_p(_T(L), p, lower=False)  # L⁻ᵀ P
    return (_sym(_T(solve_triangular_p(_T(L), _T(z), lower=False))),)  # L⁻ᵀ P L⁻¹, sym.


@cholesky_p.jvp
def _(ctx, t):
    L = ctx.out
    w = solve_triangular_p(L, _sym(t[0]), lower=True)  # L⁻¹ Ȧ
    return L @ _phi(_T(solve_triangular_p(L, _T(w), lower=True)))  # L Φ(L⁻¹ Ȧ L⁻ᵀ)


def cholesky(a: Any) -> Tensor:
    """The lower-triangular ``L`` with ``L @ L.T == a`` for a symmetric positive-definite
    ``a`` (its lower triangle is read). Gradient: the symmetric one.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    """
    x = _square_matrix(a, "cholesky")
    return cholesky_p(x)


# --- qr ------------------------------------------------------------------------------

@defop("qr", save="output")
def qr_p(xp, a, packing=None, mode="reduced", shape=None):
    q, r = xp.linalg.qr(a, mode=mode)
    return packing.pack(xp, [q, r])


def _qr_parts(ctx):
    return ctx.params["packing"].unpack(ctx.out)


def _check_qr_grad(ctx):
    m, n = ctx.params["shape"]
    if m < n or (ctx.params["mode"] == "complete" and m != n):
        raise NotImplementedError(
            f"linalg.qr: derivatives need m >= n and mode 'reduced' (as JAX); got a "
            f"{m}x{n} matrix with mode {ctx.params['mode']!r}")


@qr_p.vjp
def _(ctx, g):
    _check_qr_grad(ctx)
    q, r = _qr_parts(ctx)
    gq, gr = ctx.params["packing"].unpack(g)
    m = _T(q) @ gq - gr @ _T(r)
    k = gq + q @ (tril(m - _T(m), -1) - m)
    return (_T(solve_triangular_p(r, _T(k), lower=False)),)  # K R⁻ᵀ


@qr_p.jvp
def _(ctx, t):
    _check_qr_grad(ctx)
    q, r = _qr_parts(ctx)
    c = _T(solve_triangular_p(_T(r), _T(t[0]), lower=True))  # Ȧ R⁻¹
    x = _T(q) @ c
    low = tril(x, -1)
    do = low - _T(low)
    return ctx.params["packing"].join([q @ (do - x) + c, (x - do) @ r])


class QRResult(NamedTuple):
    Q: Tensor
    R: Tensor


def qr(a: Any, mode: str = "reduced") -> QRResult | Tensor:
    """The QR decomposition ``a = Q R`` (``mode`` "reduced", "complete" or "r", which
    returns R only). Derivatives for m >= n in the reduced form (Walter and Lehmann;
    JAX's rule).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    mode : {'reduced', 'complete', 'r'}
        Which factors to return.
    """
    x = _float(a)
    if x.ndim < 2:
        raise ValueError(f"linalg.qr: expected a (stack of) matrices, got shape {x.shape}")
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    m, n = x.shape[-2:]
    full = "complete" if mode == "complete" else "reduced"
    k = m if full == "complete" else min(m, n)
    packing = _Packing([(m, k), (k, n)])
    parts = packing.unpack(qr_p(x, packing=packing, mode=full, shape=(m, n)))
    return parts[1] if mode == "r" else QRResult(*parts)


# --- eigh ----------------------------------------------------------------------------

@defop("eigh", save="output")
def eigh_p(xp, a, packing=None, UPLO="L"):
    w, v = xp.linalg.eigh(a, UPLO=UPLO)
    return packing.pack(xp, [w, v])


def _gap_matrix(w: Tensor) -> tuple[Tensor, Any]:
    """``E[i, j] = w[j] - w[i]`` with the diagonal (and repeated pairs) set to 1, and the
    boolean array of repeated pairs."""
    n = w.shape[-1]
    gaps = reshape(w, w.shape[:-1] + (1, n)) - reshape(w, w.shape[:-1] + (n, 1))
    xp = array_module_of(w._data)
    scale = xp.abs(w._data).max(axis=-1) if n else xp.zeros(w.shape[:-1])
    repeated = _degenerate(gaps._data, scale, w.dtype)
    fill = repeated | xp.eye(n, dtype=bool)
    return gaps + const_like(fill, gaps), repeated


def _raise_if_used(fn: str, what: str, coupling: Any, repeated: Any, values: Any) -> None:
    xp = array_module_of(coupling)
    hit = xp.abs(coupling) * repeated > 0
    if bool(hit.any()):
        raise LinAlgError(
            f"linalg.{fn}: the derivative of the {what} is undefined at repeated values "
            f"({np.asarray(getattr(values, 'get', lambda: values)()).round(12).tolist()}); "
            f"only functions of the {what} that do not separate them (or of the values "
            "alone) can be differentiated there")


@eigh_p.vjp
def _(ctx, g):
    w, v = ctx.params["packing"].unpack(ctx.out)
    gw, gv = ctx.params["packing"].unpack(g)
    e, repeated = _gap_matrix(w)
    vtgv = _T(v) @ gv
    skew = 0.5 * (vtgv - _T(vtgv))
    _raise_if_used("eigh", "eigenvectors", skew._data, repeated, w._data)
    inner = _diag_embed(gw) + skew / e
    return (v @ inner @ _T(v),)


@eigh_p.jvp
def _(ctx, t):
    w, v = ctx.params["packing"].unpack(ctx.out)
    e, repeated = _gap_matrix(w)
    m = _T(v) @ _sym(t[0]) @ v
    xp = array_module_of(w._data)
    off = const_like(~(repeated | xp.eye(w.shape[-1], dtype=bool)), e)
    dw = diagonal(m, 0, -2, -1)
    dv = v @ (m / e * off)
    return ctx.params["packing"].join([dw, dv])


class EighResult(NamedTuple):
    eigenvalues: Tensor
    eigenvectors: Tensor


def eigh(a: Any, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a symmetric
    matrix, reading its ``UPLO`` triangle. Gradient: the symmetric one; see the module
    docstring for repeated eigenvalues.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    UPLO : {'L', 'U'}
        The triangle read.
    """
    x = _square_matrix(a, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    n = x.shape[-1]
    packing = _Packing([(n,), (n, n)])
    return EighResult(*packing.unpack(eigh_p(x, packing=packing, UPLO=UPLO)))


# --- svd -----------------------------------------------------------------------------

@defop("svd", save="output")
def svd_p(xp, a, packing=None, full_matrices=False, shape=None):
    u, s, vh = xp.linalg.svd(a, full_matrices=full_matrices)
    return packing.pack(xp, [u, s, vh])


def _svd_check(ctx):
    m, n = ctx.params["shape"]
    if ctx.params["full_matrices"] and m != n:
        raise NotImplementedError(
            f"linalg.svd: derivatives of the full decomposition of a non-square {m}x{n} "
            "matrix are not unique; use full_matrices=False (as PyTorch and JAX)")


@svd_p.vjp
def _(ctx, g):
    _svd_check(ctx)
    u, s, vh = ctx.params["packing"].unpack(ctx.out)
    gu, gs, gvh = ctx.params["packing"].unpack(g)
    m, n = ctx.params["shape"]
    k = s.shape[-1]
    e, repeated = _gap_matrix(s * s)
    uhgu = _T(u) @ gu
    vhgv = vh @ _T(gvh)
    uhgu = uhgu - _T(uhgu)
    vhgv = vhgv - _T(vhgv)
    xp = array_module_of(s._data)
    _raise_if_used("svd", "singular vectors", xp.abs(uhgu._data) + xp.abs(vhgv._data), repeated,
                   s._data)
    row = reshape(s, s.shape[:-1] + (1, k))
    col = reshape(s, s.shape[:-1] + (k, 1))
    inner = (uhgu * row + col * vhgv) / e + _diag_embed(gs)
    if m > n:
        if bool((s._data == 0).any()) and bool((gu._data != 0).any()):
            raise LinAlgError("linalg.svd: the derivative of U is undefined for a tall "
                              "matrix with a zero singular value")
        gus = gu / row
        ga = (u @ inner + gus - u @ (_T(u) @ gus)) @ vh
    elif n > m:
        if bool((s._data == 0).any()) and bool((gvh._data != 0).any()):
            raise LinAlgError("linalg.svd: the derivative of Vh is undefined for a wide "
                              "matrix with a zero singular value")
        gvs = gvh / col
        ga = u @ (inner @ vh + gvs - (gvs @ _T(vh)) @ vh)
    else:
        ga = u @ inner @ vh
    return (ga,)


@svd_p.jvp
def _(ctx, t):
    _svd_check(ctx)
    u, s, vh = ctx.params["packing"].unpack(ctx.out)
    m, n = ctx.params["shape"]
    k = s.shape[-1]
    da = t[0]
    v = _T(vh)
    ds_mat = _T(u) @ da @ v
    e, repeated = _gap_matrix(s * s)
    xp = array_module_of(s._data)
    f = const_like(~(repeated | xp.eye(k, dtype=bool)), e) / e  # 1 / (s_j² - s_i²)
    row = reshape(s, s.shape[:-1] + (1, k))
    col = reshape(s, s.shape[:-1] + (k, 1))
    dss = ds_mat * row
    sds = col * ds_mat
    du = u @ (f * (dss + _T(dss)))
    dv = v @ (f * (sds + _T(sds)))
    if m > n:
        dav = da @ v
        du = du + (dav - u @ (_T(u) @ dav)) / row
    if n > m:
        dahu = _T(da) @ u
        dv = dv + (dahu - v @ (vh @ dahu)) / row
    return ctx.params["packing"].join([du, diagonal(ds_mat, 0, -2, -1), _T(dv)])


class SVDResult(NamedTuple):
    U: Tensor
    S: Tensor
    Vh: Tensor


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True) -> SVDResult | Tensor:
    """``a = U @ diag(S) @ Vh`` with singular values ``S`` descending; only ``S`` when
    ``compute_uv`` is False. Derivatives as PyTorch's and JAX's (see the module
    docstring for repeated or zero singular values and ``full_matrices``).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    full_matrices : bool
        Square ``U`` and ``Vh`` (only differentiable for square inputs).
    compute_uv : bool
        Return ``U`` and ``Vh`` too (else only ``S``).
    """
    x = _float(a)
    if x.ndim < 2:
        raise ValueError(f"linalg.svd: expected a (stack of) matrices, got shape {x.shape}")
    m, n = x.shape[-2:]
    k = min(m, n)
    full = bool(full_matrices) and compute_uv and m != n
    packing = _Packing([(m, m if full else k), (k,), (n if full else k, n)])
    u, s, vh = packing.unpack(svd_p(x, packing=packing, full_matrices=full, shape=(m, n)))
    return SVDResult(u, s, vh) if compute_uv else s


# --- norm ----------------------------------------------------------------------------

def _vector_norm(x: Tensor, ord: Any, axis: tuple[int, ...],  # noqa: A002
                 keepdims: bool) -> Tensor:
    from gpuchain.ops import elementwise as ew
    from gpuchain.ops import reduce as red

    if ord is None or ord == 2:
        return ew.sqrt(red.sum(x * x, axis=axis, keepdims=keepdims))
    a = ew.abs(x)
    if ord == np.inf:
        return red.max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return red.min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return red.sum(const_like(x._data != 0, x), axis=axis, keepdims=keepdims)  # no grad
    if ord == 1:
        return red.sum(a, axis=axis, keepdims=keepdims)
    p = float(ord)
    return red.sum(a ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _matrix_norm(x: Tensor, ord: Any, axis: tuple[int, int],  # noqa: A002
                 keepdims: bool) -> Tensor:
    from gpuchain.ops import elementwise as ew
    from gpuchain.ops import reduce as red
    from gpuchain.ops.shape import moveaxis

    r, c = axis
    if ord in (None, "fro"):
        return ew.sqrt(red.sum(x * x, axis=axis, keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        summed, other = (r, c) if ord in (1, -1) else (c, r)
        sums = red.sum(ew.abs(x), axis=summed, keepdims=True)
        pick = red.max if ord in (1, np.inf) else red.min
        out = pick(sums, axis=other, keepdims=True)
    elif ord in (2, -2, "nuc"):
        s = svd(moveaxis(x, (r, c), (-2, -1)), compute_uv=False)
        out = red.sum(s, axis=-1) if ord == "nuc" else (red.max(s, axis=-1) if ord == 2
                                                         else red.min(s, axis=-1))
        out = reshape(out, out.shape + (1, 1))
        out = moveaxis(out, (-2, -1), (r, c))
    else:
        raise ValueError(f"linalg.norm: invalid ord {ord!r} for a matrix norm")
    if keepdims:
        return out
    return reshape(out, tuple(s for i, s in enumerate(out.shape)
                              if i - out.ndim not in (r, c)))


def norm(x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
         keepdims: bool = False) -> Tensor:
    """Vector or matrix norm, as ``np.linalg.norm``.

    ``axis`` None: the 2-norm of the flattened input when ``ord`` is None, else a vector
    (1-D input) or matrix (2-D) norm. One axis: vector norms (``ord`` None/2, 1, inf,
    -inf, 0, any p). Two axes: matrix norms (None/"fro", "nuc", 1, -1, 2, -2, inf, -inf).
    The 2-norm's derivative ``x / |x|`` is undefined at 0; ``ord`` inf and 1 pick one
    subgradient (ties share, ``|x|``'s derivative is 0 at 0).

    Parameters
    ----------
    x : Tensor or array_like
        Input.
    ord : {None, 'fro', 'nuc', int, inf, -inf}
        The norm (see above).
    axis : int, pair of ints or None
        One axis (vector norm), two (matrix norm), or None.
    keepdims : bool
        Keep the normed axes with length 1.
    """
    from gpuchain.ops._args import all_axes
    from gpuchain.ops._args import axes as norm_axes

    t = _float(x)
    if axis is None:
        if ord is None:
            flat = reshape(t, (-1,))
            out = _vector_norm(flat, None, (-1,), False)
            return reshape(out, (1,) * t.ndim) if keepdims else out
        if t.ndim not in (1, 2):
            raise ValueError(f"linalg.norm: ord={ord!r} with axis=None needs a 1-D or 2-D "
                             f"input, got shape {t.shape}")
        axis = tuple(range(t.ndim))
    ax = all_axes(norm_axes(axis, t.ndim, "linalg.norm"), t.ndim)  # axis is set by now
    if len(ax) == 1:
        return _vector_norm(t, ord, ax, keepdims)
    if len(ax) == 2:
        given = axis if isinstance(axis, (tuple, list)) else (axis,)
        r, c = (a - t.ndim if a >= 0 else a for a in given)
        return _matrix_norm(t, ord, (r, c), keepdims)
    raise ValueError(f"linalg.norm: axis must name 1 or 2 axes, got {axis!r}")

