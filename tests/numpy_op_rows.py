"""Op-table rows for the NumPy-coverage functions: reductions, shape and indexing,
creation-free linear algebra, contractions and ``gc.linalg``.

Data only: tests/op_table.py appends these rows to ROWS, so test_ops.py runs the same
checks on them (forward vs NumPy, gradcheck both modes to second order, reverse ==
forward Jacobians) and tests/gpu reruns them on CuPy. A row's ``op`` is the registry
name for a primitive and the public function's name for a composed function (so
``pytest -k <name>`` selects it); ``extra_ops`` lists the primitives a row exercises.
"""

from __future__ import annotations

import numpy as np

import gpuchain as gc
from gpuchain import linalg as gla
from gpuchain.ops import contraction as con
from gpuchain.ops import indexing as ix
from gpuchain.ops import linalg as la_ops
from gpuchain.ops import reduce as red
from gpuchain.ops import shape as sh

IDX = np.array([[2, 0, 1, 1], [0, 0, 2, 1], [1, 2, 2, 0]])  # for (3, 4) along axis 0


def _rows(Row):  # Row is passed in: op_table imports this module, not the other way
    return (_reduce_rows(Row) + _shape_rows(Row) + _matrix_rows(Row) + _contraction_rows(Row)
            + _linalg_rows(Row))


def _mask(x, zero_at):
    """Ones along the last axis with one zero, in ``x``'s dtype."""
    m = np.ones(x.shape[-1], dtype=x.dtype)
    m[zero_at] = 0
    return m


def _weighted(pieces):
    """One output from several (the split functions): piece k scaled by k + 1."""
    return gc.concatenate([gc.reshape(p, (-1,)) * (k + 1) for k, p in enumerate(pieces)])


def _np_weighted(pieces):
    return np.concatenate([p.reshape(-1) * (k + 1) for k, p in enumerate(pieces)])


def _reduce_rows(Row):
    s1 = [((),), ((5,),), ((3, 4),)]
    return [
        Row("min", lambda x: red.min(x, axis=1), lambda x: np.min(x, axis=1), [((3, 4),)]),
        Row("min", lambda x: red.min(x), np.min, s1),
        Row("min", lambda x: red.min(x, axis=(0, 2), keepdims=True),
            lambda x: np.min(x, axis=(0, 2), keepdims=True), [((2, 3, 4),)]),
        Row("max", lambda x: red.max(x, axis=np.int64(0)), lambda x: np.max(x, axis=0),
            [((3, 4),)]),
        Row("prod", lambda x: red.prod(x), np.prod, s1 + [((7,),)]),
        Row("prod", lambda x: red.prod(x, axis=(0, 2), keepdims=True),
            lambda x: np.prod(x, axis=(0, 2), keepdims=True), [((2, 3, 5),)]),
        # an exact zero: the derivative is the product of the others, not 0/0
        Row("prod", lambda x: red.prod(x * _mask(x, 1), axis=-1),
            lambda x: np.prod(x * np.array([1.0, 0.0, 1.0, 1.0]), axis=-1), [((3, 4),)]),
        Row("var", lambda x: red.var(x), np.var, [((5,),), ((3, 4),)]),
        Row("var", lambda x: red.var(x, axis=0, ddof=1), lambda x: np.var(x, 0, ddof=1),
            [((3, 4),)]),
        Row("std", lambda x: red.std(x, axis=-1, keepdims=True),
            lambda x: np.std(x, axis=-1, keepdims=True), [((5,),), ((3, 4),)]),
        Row("cumsum", lambda x: red.cumsum(x, axis=1), lambda x: np.cumsum(x, axis=1),
            [((3, 4),)]),
        Row("cumsum", lambda x: red.cumsum(x), np.cumsum, s1),
        # long enough for the blocked scan (with a partial last block), both axes
        Row("cumsum", lambda x: red.cumsum(x, axis=0), lambda x: np.cumsum(x, axis=0),
            [((70, 2),)]),
        Row("cumsum", lambda x: red.cumsum(x, axis=-1), lambda x: np.cumsum(x, axis=-1),
            [((2, 96),)]),
        Row("cumsum", lambda x: red.cumsum_p(x, axis=-1, reverse=True),
            lambda x: np.cumsum(x[..., ::-1], axis=-1)[..., ::-1], [((5,),), ((2, 70),)]),
        Row("cumprod", lambda x: red.cumprod(x, axis=0), lambda x: np.cumprod(x, axis=0),
            [((5,),), ((6, 2),)]),
        Row("cumprod", lambda x: red.cumprod(x * _mask(x, 2)),
            lambda x: np.cumprod(x * np.array([1.0, 1.0, 0.0, 1.0])), [((4,),), ((3, 4),)]),
        Row("average", lambda a, w: red.average(a, axis=1, weights=w),
            lambda a, w: np.average(a, axis=1, weights=w), [((3, 4), (4,))], domain="positive"),
        Row("average", lambda a, w: red.average(a, weights=w),
            lambda a, w: np.average(a, weights=w), [((3, 4), (3, 4))], domain="positive"),
        Row("mean", lambda a, b: red.mean([a, b + 2.0], axis=0),
            lambda a, b: np.mean([a, b + 2.0], axis=0), [((3,), (3,)), ((2, 3), (2, 3))]),
        Row("sum", lambda a, b: red.sum((a, b)), lambda a, b: np.sum((a, b)),
            [((3,), (3,))]),
        Row("logsumexp", lambda x: red.logsumexp(x, axis=(0, 1)),
            lambda x: np.log(np.exp(x).sum(axis=(0, 1))), [((3, 4, 2),)]),
    ]


def _shape_rows(Row):
    return [
        Row("squeeze", lambda x: sh.squeeze(x), np.squeeze, [((1, 3, 1),), ((1,),)]),
        Row("squeeze", lambda x: sh.squeeze(x, axis=-1), lambda x: np.squeeze(x, -1),
            [((3, 1),)]),
        Row("expand_dims", lambda x: sh.expand_dims(x, (0, -1)),
            lambda x: np.expand_dims(x, (0, -1)), [((),), ((3,),), ((2, 3),)]),
        Row("ravel", lambda x: sh.ravel(x), np.ravel, [((),), ((3, 4),)]),
        Row("moveaxis", lambda x: sh.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1),
            [((2, 3, 4),)]),
        Row("moveaxis", lambda x: sh.moveaxis(x, (0, 1), (2, 0)),
            lambda x: np.moveaxis(x, (0, 1), (2, 0)), [((2, 3, 4),)]),
        Row("swapaxes", lambda x: sh.swapaxes(x, 0, 2), lambda x: np.swapaxes(x, 0, 2),
            [((2, 3, 4),)]),
        Row("atleast_3d", lambda x: sh.atleast_3d(x), np.atleast_3d,
            [((),), ((3,),), ((2, 3),)]),
        Row("atleast_2d", lambda x: sh.atleast_2d(x), np.atleast_2d, [((),), ((3,),)]),
        Row("split", lambda x: _weighted(sh.split(x, 2, axis=1)),
            lambda x: _np_weighted(np.split(x, 2, axis=1)), [((3, 4),)]),
        Row("split", lambda x: _weighted(sh.split(x, [1, 3])),
            lambda x: _np_weighted(np.split(x, [1, 3])), [((5,),), ((4, 2),)]),
        Row("array_split", lambda x: _weighted(sh.array_split(x, 3)),
            lambda x: _np_weighted(np.array_split(x, 3)), [((7,),), ((4, 2),)]),
        Row("hsplit", lambda x: _weighted(sh.hsplit(x, 2)),
            lambda x: _np_weighted(np.hsplit(x, 2)), [((4,),), ((3, 4),)]),
        Row("vsplit", lambda x: _weighted(sh.vsplit(x, 3)),
            lambda x: _np_weighted(np.vsplit(x, 3)), [((3, 4),)]),
        Row("dsplit", lambda x: _weighted(sh.dsplit(x, [1])),
            lambda x: _np_weighted(np.dsplit(x, [1])), [((2, 2, 3),)]),
        Row("hstack", lambda a, b: sh.hstack([a, b]), lambda a, b: np.hstack([a, b]),
            [((), ()), ((3,), (2,)), ((3, 2), (3, 1))]),
        Row("vstack", lambda a, b: sh.vstack([a, b]), lambda a, b: np.vstack([a, b]),
            [((3,), (3,)), ((2, 3), (1, 3))]),
        Row("dstack", lambda a, b: sh.dstack([a, b]), lambda a, b: np.dstack([a, b]),
            [((3,), (3,)), ((2, 3), (2, 3))]),
        Row("column_stack", lambda a, b: sh.column_stack([a, b]),
            lambda a, b: np.column_stack([a, b]), [((3,), (3,)), ((3,), (3, 2))]),
        Row("tile", lambda x: sh.tile(x, (2, 1, 3)), lambda x: np.tile(x, (2, 1, 3)),
            [((),), ((3,),), ((2, 3),)]),
        Row("tile", lambda x: sh.tile(x, 2), lambda x: np.tile(x, 2), [((2, 3),)]),
        Row("repeat", lambda x: sh.repeat(x, 2, axis=1), lambda x: np.repeat(x, 2, axis=1),
            [((3, 2),)]),
        Row("repeat", lambda x: sh.repeat(x, [1, 0, 3], axis=0),
            lambda x: np.repeat(x, [1, 0, 3], axis=0), [((3,),), ((3, 2),)]),
        Row("repeat", lambda x: sh.repeat(x, 3), lambda x: np.repeat(x, 3), [((),), ((2, 2),)]),
        Row("pad", lambda x: sh.pad(x, ((1, 2), (0, 1)), constant_values=1.5),
            lambda x: np.pad(x, ((1, 2), (0, 1)), constant_values=1.5), [((3, 4),)]),
        Row("pad", lambda x: sh.pad(x, 2), lambda x: np.pad(x, 2), [((3,),)]),
    ] + [
        Row("pad", lambda x, m=mode: sh.pad(x, ((2, 1), (1, 3)), mode=m),
            lambda x, m=mode: np.pad(x, ((2, 1), (1, 3)), mode=m), [((3, 4),)],
            extra_ops=("getitem",))
        for mode in ("edge", "reflect", "symmetric", "wrap")
    ] + [
        Row("roll", lambda x: sh.roll(x, 2), lambda x: np.roll(x, 2), [((5,),), ((3, 4),)]),
        Row("roll", lambda x: sh.roll(x, (1, -1), axis=(0, 1)),
            lambda x: np.roll(x, (1, -1), axis=(0, 1)), [((3, 4),)]),
        Row("flip", lambda x: sh.flip(x), np.flip, [((),), ((5,),), ((3, 4),)]),
        Row("flip", lambda x: sh.flip(x, -1), lambda x: np.flip(x, -1), [((2, 3, 4),)]),
        Row("fliplr", lambda x: sh.fliplr(x), np.fliplr, [((3, 4),)]),
        Row("flipud", lambda x: sh.flipud(x), np.flipud, [((5,),), ((3, 4),)]),
    ] + [
        Row("rot90", lambda x, k=k: sh.rot90(x, k), lambda x, k=k: np.rot90(x, k), [((3, 4),)])
        for k in (1, 2, 3)
    ] + [
        Row("rot90", lambda x: sh.rot90(x, 1, axes=(2, 0)),
            lambda x: np.rot90(x, 1, axes=(2, 0)), [((2, 3, 4),)]),
        Row("take", lambda x: ix.take(x, np.array([[0, 2], [1, 1]]), axis=1),
            lambda x: np.take(x, np.array([[0, 2], [1, 1]]), axis=1), [((3, 4),)]),
        Row("take", lambda x: ix.take(x, [4, 0, -1]), lambda x: np.take(x, [4, 0, -1]),
            [((5,),), ((3, 4),)]),
        Row("take_along_axis", lambda x: ix.take_along_axis(x, IDX, axis=0),
            lambda x: np.take_along_axis(x, IDX, axis=0), [((3, 4),)]),
        Row("take_along_axis", lambda x: ix.take_along_axis(x, IDX[:1], axis=0),
            lambda x: np.take_along_axis(x, IDX[:1], axis=0), [((3, 4),)]),
        Row("put_along_axis", lambda x, v: ix.put_along_axis(x, IDX[:1].T, v, axis=1),
            lambda x, v: _np_put_along(x, IDX[:1].T, v, 1), [((4, 3), (4, 1)), ((4, 3), ())],
            extra_ops=("index_update",)),
        Row("sort", lambda x: ix.sort(x), np.sort, [((5,),), ((3, 4),)]),
        Row("sort", lambda x: ix.sort(x, axis=0), lambda x: np.sort(x, axis=0), [((3, 4),)]),
        Row("sort", lambda x: ix.sort(x, axis=None), lambda x: np.sort(x, axis=None),
            [((3, 4),)]),
        Row("index_update", lambda x, v: ix.index_update(x, (slice(1, None), 2), v),
            lambda x, v: _np_set(x, (slice(1, None), 2), v), [((3, 4), (2,)), ((3, 4), ())]),
        Row("index_update", lambda x, v: ix.index_update(x, np.array([2, 0]), v),
            lambda x, v: _np_set(x, np.array([2, 0]), v), [((3, 4), (2, 4)), ((3, 4), (4,))]),
        Row("index_update", lambda x, v: ix.At(x)[..., 1].set(v),
            lambda x, v: _np_set(x, (Ellipsis, 1), v), [((5,), ()), ((2, 3), (2,))]),
        Row("scatter_add", lambda x, v: ix.At(x)[np.array([0, 2, 0])].add(v),
            lambda x, v: _np_add(x, np.array([0, 2, 0]), v), [((3, 2), (3, 2)), ((4,), ())]),
        Row("copy", lambda x: sh.copy(x), np.copy, [((),), ((3, 4),)]),
    ]


def _np_set(x, idx, v):
    out = x.copy()
    out[idx] = v
    return out


def _np_add(x, idx, v):
    out = x.copy()
    np.add.at(out, idx, np.broadcast_to(v, out[idx].shape))
    return out


def _np_put_along(x, idx, v, axis):
    out = x.copy()
    np.put_along_axis(out, idx, v, axis)
    return out


def _matrix_rows(Row):
    return [
        Row("diagonal", lambda x: la_ops.diagonal(x), np.diagonal, [((3, 4),), ((4, 3),)]),
        Row("diagonal", lambda x: la_ops.diagonal(x, 1, 0, 2),
            lambda x: np.diagonal(x, 1, 0, 2), [((3, 2, 4),)]),
        Row("diagonal", lambda x: la_ops.diagonal(x, -1), lambda x: np.diagonal(x, -1),
            [((3, 4),)]),
        Row("trace", lambda x: la_ops.trace(x), np.trace, [((3, 4),), ((4, 4),)]),
        Row("trace", lambda x: la_ops.trace(x, offset=1, axis1=1, axis2=2),
            lambda x: np.trace(x, offset=1, axis1=1, axis2=2), [((2, 3, 4),)]),
        Row("diag", lambda x: la_ops.diag(x), np.diag, [((3,),), ((3, 4),)]),
        Row("diag", lambda x: la_ops.diag(x, -2), lambda x: np.diag(x, -2),
            [((3,),), ((4, 4),)]),
        Row("triu", lambda x: la_ops.triu(x), np.triu, [((3, 4),), ((2, 3, 3),)]),
        Row("tril", lambda x: la_ops.tril(x, -1), lambda x: np.tril(x, -1), [((4, 3),)]),
        Row("matmul", lambda a, b: la_ops.matmul(a, b), np.matmul,
            [((2, 3, 0), (0, 4)), ((3, 0), (2, 0, 4))]),
    ]


def _einsum_row(Row, spec, shapes, **kw):
    return Row("einsum", lambda *xs: con.einsum(spec, *xs, **kw),
               lambda *xs: np.einsum(spec, *xs), shapes)


def _contraction_rows(Row):
    return [
        _einsum_row(Row, "ij,jk->ik", [((3, 4), (4, 2))]),
        _einsum_row(Row, "bij,bjk->bik", [((2, 3, 4), (2, 4, 5))]),
        _einsum_row(Row, "ij,jk,kl->il", [((3, 4), (4, 5), (5, 2))]),
        _einsum_row(Row, "ij,jk,kl->il", [((3, 4), (4, 5), (5, 2))], optimize=False),
        _einsum_row(Row, "i,i", [((5,), (5,))]),
        _einsum_row(Row, "i,j", [((3,), (4,))]),
        _einsum_row(Row, "ii->i", [((3, 3),)]),
        _einsum_row(Row, "ii", [((3, 3),)]),
        _einsum_row(Row, "ij->", [((3, 4),)]),
        _einsum_row(Row, "ij->ji", [((3, 4),)]),
        _einsum_row(Row, "ij,ik->i", [((3, 4), (3, 2))]),
        _einsum_row(Row, "...ij,...jk->...ik", [((2, 3, 4), (4, 2)), ((3, 4), (1, 4, 2))]),
        _einsum_row(Row, "ba,ab", [((3, 4), (4, 3))]),
        _einsum_row(Row, ",ij->ij", [((), (3, 4))]),
        _einsum_row(Row, "abc,cd,bd->a", [((2, 3, 4), (4, 5), (3, 5))]),
        Row("tensordot", lambda a, b: con.tensordot(a, b), np.tensordot,
            [((2, 3, 4), (3, 4, 5)), ((3, 4), (3, 4))]),
        Row("tensordot", lambda a, b: con.tensordot(a, b, axes=([0, 2], [2, 1])),
            lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 1])), [((2, 3, 4), (5, 4, 2))]),
        Row("tensordot", lambda a, b: con.tensordot(a, b, axes=0),
            lambda a, b: np.tensordot(a, b, axes=0), [((2,), (3, 2))]),
        Row("dot", lambda a, b: con.dot(a, b), np.dot,
            [((), (3,)), ((4,), (4,)), ((3, 4), (4,)), ((3, 4), (4, 2)), ((2, 3, 4), (5, 4, 2)),
             ((4,), (3, 4, 2))]),
        Row("vdot", lambda a, b: con.vdot(a, b), np.vdot, [((4,), (4,)), ((2, 3), (3, 2))]),
        Row("inner", lambda a, b: con.inner(a, b), np.inner,
            [((), (3,)), ((4,), (4,)), ((3, 4), (2, 4)), ((2, 3, 4), (4,))]),
        Row("outer", lambda a, b: con.outer(a, b), np.outer, [((3,), (4,)), ((2, 2), (3,))]),
    ]


# gc.linalg rows: inputs shifted to well-conditioned matrices; functions of eigenvectors
# and singular vectors that do not depend on their signs (V * V, U @ Vh).

def _g_spd(x):
    return x @ sh.swapaxes(x, -1, -2) + 3.0 * np.eye(x.shape[-1], dtype=x.dtype)


def _np_spd(x):
    return x @ np.swapaxes(x, -1, -2) + 3.0 * np.eye(x.shape[-1])


def _g_sym(x):
    return 0.5 * (x + sh.swapaxes(x, -1, -2))


def _np_sym(x):
    return 0.5 * (x + np.swapaxes(x, -1, -2))


def _g_eigh(x):
    w, v = gla.eigh(_g_sym(x))
    return gc.concatenate([w, gc.reshape(v * v, v.shape[:-2] + (-1,))], axis=-1)


def _np_eigh(x):
    w, v = np.linalg.eigh(_np_sym(x))
    return np.concatenate([w, (v * v).reshape(v.shape[:-2] + (-1,))], axis=-1)


def _g_svd(x):
    u, s, vh = gla.svd(x, full_matrices=False)
    flat = lambda t: gc.reshape(t, t.shape[:-2] + (-1,))  # noqa: E731
    return gc.concatenate([s, flat(u @ vh), flat(u * u), flat(vh * vh)], axis=-1)


def _np_svd(x):
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    flat = lambda t: t.reshape(t.shape[:-2] + (-1,))  # noqa: E731
    return np.concatenate([s, flat(u @ vh), flat(u * u), flat(vh * vh)], axis=-1)


def _g_qr(x):
    # sign-invariant (Q D, D R with D = diag(±1) is an equally valid QR, and cuSOLVER and
    # LAPACK may pick different signs): squares, and the products of matching rank-1 terms
    q, r = gla.qr(x)
    flat = lambda t: gc.reshape(t, t.shape[:-2] + (-1,))  # noqa: E731
    return gc.concatenate([flat(q * q), flat(r * r), flat(q[..., :, :1] * r[..., :1, :])],
                          axis=-1)


def _np_qr(x):
    q, r = np.linalg.qr(x)
    flat = lambda t: t.reshape(t.shape[:-2] + (-1,))  # noqa: E731
    return np.concatenate([flat(q * q), flat(r * r), flat(q[..., :, :1] * r[..., :1, :])],
                          axis=-1)


def _linalg_rows(Row):
    sq = [((3, 3),), ((2, 3, 3),)]
    shift_g = lambda x: x + 3.0 * np.eye(x.shape[-1], dtype=x.dtype)  # noqa: E731
    shift_n = lambda x: x + 3.0 * np.eye(x.shape[-1])  # noqa: E731
    rows = [
        Row("inv", lambda x: gla.inv(shift_g(x)), lambda x: np.linalg.inv(shift_n(x)), sq),
        Row("solve", lambda a, b: gla.solve(shift_g(a), b),
            lambda a, b: np.linalg.solve(shift_n(a), b),
            [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (3, 1)), ((2, 3, 3), (2, 3, 2))]),
        Row("solve", lambda a, b: gla.solve(shift_g(a), b),
            lambda a, b: np.linalg.solve(shift_n(a), b), [((3, 3), (2, 3, 2))]),
        Row("solve_triangular",
            lambda a, b: gla.solve_triangular_p(la_ops.tril(shift_g(a)), b, lower=True),
            lambda a, b: np.linalg.solve(np.tril(shift_n(a)), b),
            [((3, 3), (3, 2)), ((3, 3), (2, 3, 1)), ((2, 3, 3), (3, 2))]),
        Row("solve_triangular",
            lambda a, b: gla.solve_triangular_p(la_ops.triu(shift_g(a)), b, lower=False),
            lambda a, b: np.linalg.solve(np.triu(shift_n(a)), b), [((3, 3), (3, 2))]),
        Row("det", lambda x: gla.det(shift_g(x)), lambda x: np.linalg.det(shift_n(x)), sq),
        Row("slogdet", lambda x: gla.slogdet(shift_g(x)).logabsdet,
            lambda x: np.linalg.slogdet(shift_n(x))[1], sq),
        Row("cholesky", lambda x: gla.cholesky(_g_spd(x)),
            lambda x: np.linalg.cholesky(_np_spd(x)), sq),
        Row("qr", _g_qr, _np_qr, [((4, 3),), ((3, 3),), ((2, 4, 3),)]),
        Row("qr", lambda x: gla.qr(x, mode="r") ** 2, lambda x: np.linalg.qr(x, mode="r") ** 2,
            [((4, 3),)]),
        Row("eigh", _g_eigh, _np_eigh, [((3, 3),), ((2, 4, 4),)]),
        Row("eigh", lambda x: gla.eigh(_g_sym(x)).eigenvalues,
            lambda x: np.linalg.eigvalsh(_np_sym(x)), [((3, 3),)]),
        Row("svd", _g_svd, _np_svd, [((4, 3),), ((3, 4),), ((3, 3),), ((2, 4, 3),)]),
        Row("svd", lambda x: gla.svd(x, compute_uv=False),
            lambda x: np.linalg.svd(x, compute_uv=False), [((4, 3),), ((3, 4),)]),
        Row("norm", lambda x: gla.norm(x), np.linalg.norm, [((5,),), ((3, 4),), ((2, 3, 4),)]),
        Row("norm", lambda x: gla.norm(x, axis=-1, keepdims=True),
            lambda x: np.linalg.norm(x, axis=-1, keepdims=True), [((3, 4),)]),
        Row("norm", lambda x: gla.norm(x, "fro", axis=(0, 2)),
            lambda x: np.linalg.norm(x, "fro", axis=(0, 2)), [((2, 3, 4),)]),
        Row("norm", lambda x: gla.norm(x, 2), lambda x: np.linalg.norm(x, 2),
            [((5,),), ((4, 3),)], extra_ops=("svd",)),
        Row("norm", lambda x: gla.norm(x, "nuc"), lambda x: np.linalg.norm(x, "nuc"),
            [((4, 3),)]),
        Row("norm", lambda x: gla.norm(x, -2), lambda x: np.linalg.norm(x, -2), [((3, 4),)]),
    ]
    for o in (1, -1, np.inf, -np.inf, 3):
        rows.append(Row("norm", lambda x, o=o: gla.norm(x, o), lambda x, o=o: np.linalg.norm(x, o),
                        [((5,),), ((3, 4),)] if o != 3 else [((5,),)],
                        domain="away_from_zero"))
    rows.append(Row("norm", lambda x: gla.norm(x, 0.5, axis=0),
                    lambda x: np.linalg.norm(x, 0.5, axis=0), [((3, 4),)],
                    domain="away_from_zero"))
    return rows
