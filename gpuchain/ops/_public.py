"""Builders of the public NumPy-style functions over primitives: a real name, signature
and docstring for ``help()``, and argument normalization shared by every family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpuchain.engine.op import Primitive
from gpuchain.engine.tensor import Tensor
from gpuchain.ops._args import as_tensor

__all__ = ["as_tensor", "binary", "unary"]

_DOC = """{summary}

Parameters
----------
{params}

Returns
-------
Tensor
    The result, elementwise{bcast}.

Notes
-----
Derivative{s}: {derivative}.
"""


def unary(prim: Primitive, name: str, summary: str, derivative: str
          ) -> Callable[[Any], Tensor]:
    """The public function ``name(x)`` applying the unary primitive ``prim``."""

    def fn(x: Any) -> Tensor:
        return prim(x)

    return _named(fn, name, _DOC.format(
        summary=summary, params="x : Tensor or array_like\n    Input.", bcast="",
        s="", derivative=derivative))


def binary(prim: Primitive, name: str, summary: str, derivative: str
           ) -> Callable[[Any, Any], Tensor]:
    """The public function ``name(x1, x2)`` applying the binary primitive ``prim``."""

    def fn(x1: Any, x2: Any) -> Tensor:
        return prim(x1, x2)

    return _named(fn, name, _DOC.format(
        summary=summary, params="x1, x2 : Tensor or array_like\n    Inputs (broadcast "
        "against each other).", bcast=", with the broadcast shape of the inputs",
        s=" with respect to x1 and x2", derivative=derivative))


def _named(fn: Callable[..., Tensor], name: str, doc: str) -> Callable[..., Tensor]:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__module__ = "gpuchain"
    return fn
