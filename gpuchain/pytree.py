"""Pytrees: nested tuples, lists and dicts whose leaves are arrays, Tensors or numbers.

The function transforms accept and return pytrees with JAX's conventions: tuples (named
tuples included), lists and dicts are containers, ``None`` is an empty container, dict
entries are visited in sorted key order, and everything else is a leaf.

>>> leaves, tree = tree_flatten({"b": [1.0, 2.0], "a": (3.0, None)})
>>> leaves
[3.0, 1.0, 2.0]
>>> tree_unflatten(tree, [x * 10 for x in leaves])
{'a': (30.0, None), 'b': [10.0, 20.0]}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpuchain.errors import TreeStructureError

_LEAF = "leaf"


class TreeDef:
    """The structure of a pytree with its leaves taken out (compare with ``==``).

    Parameters
    ----------
    kind : type or marker
        The container type (tuple, list, dict, a named tuple class), None, or the leaf
        marker.
    meta : tuple or None
        The sorted dict keys, for dicts.
    children : tuple of TreeDef
        The structures of the entries.
    """

    __slots__ = ("kind", "meta", "children", "num_leaves")

    def __init__(self, kind: Any, meta: Any, children: tuple[TreeDef, ...]) -> None:
        self.kind = kind  # _LEAF, None, tuple, list, dict or a named-tuple class
        self.meta = meta  # sorted dict keys, or None
        self.children = children
        self.num_leaves: int = 1 if kind == _LEAF else sum(c.num_leaves for c in children)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TreeDef) and self.kind == other.kind
                and self.meta == other.meta and self.children == other.children)

    def __hash__(self) -> int:
        return hash((str(self.kind), self.meta, self.children))

    def __repr__(self) -> str:
        if self.kind == _LEAF:
            return "*"
        if self.kind is None:
            return "None"
        inner = [repr(c) for c in self.children]
        if self.kind is dict:
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(self.meta, inner)) + "}"
        if self.kind is list:
            return "[" + ", ".join(inner) + "]"
        if self.kind is tuple:
            return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"
        return f"{self.kind.__name__}(" + ", ".join(inner) + ")"


_LEAF_DEF = TreeDef(_LEAF, None, ())


def _is_container(x: Any) -> bool:
    return x is None or type(x) in (tuple, list, dict) or (
        isinstance(x, tuple) and hasattr(type(x), "_fields"))


def _sorted_keys(d: dict, where: str) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError as exc:
        raise TreeStructureError(f"{where}: dict keys {list(d)!r} cannot be sorted, so the "
                                 "dict has no fixed leaf order") from exc


def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None
                 ) -> tuple[list[Any], TreeDef]:
    """The leaves of ``tree`` in a fixed order, and its structure.

    Parameters
    ----------
    tree : pytree
        Nested tuples, lists, dicts and ``None`` with anything else as leaves.
    is_leaf : callable, optional
        Called on every node; a True answer makes that node a leaf.

    Returns
    -------
    leaves : list
        The leaves, depth first, dict entries in sorted key order.
    treedef : TreeDef
        The structure, for ``tree_unflatten``.
    """
    leaves: list[Any] = []

    def walk(node: Any) -> TreeDef:
        if (is_leaf is not None and is_leaf(node)) or not _is_container(node):
            leaves.append(node)
            return _LEAF_DEF
        if node is None:
            return TreeDef(None, None, ())
        if isinstance(node, dict):
            keys = _sorted_keys(node, "tree_flatten")
            return TreeDef(dict, keys, tuple(walk(node[k]) for k in keys))
        return TreeDef(type(node), None, tuple(walk(c) for c in node))

    treedef = walk(tree)
    return leaves, treedef


def tree_unflatten(treedef: TreeDef, leaves: Any) -> Any:
    """Rebuild a pytree of structure ``treedef`` from ``leaves`` (in flatten order)."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise TreeStructureError(f"tree_unflatten: the structure {treedef!r} has "
                                 f"{treedef.num_leaves} leaves but {len(leaves)} were given")
    it = iter(leaves)

    def build(d: TreeDef) -> Any:
        if d.kind == _LEAF:
            return next(it)
        if d.kind is None:
            return None
        kids = [build(c) for c in d.children]
        if d.kind is dict:
            return dict(zip(d.meta, kids))
        if d.kind in (tuple, list):
            return d.kind(kids)
        return d.kind(*kids)  # a named tuple

    return build(treedef)


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree`` (see ``tree_flatten``)."""
    return tree_flatten(tree)[0]


def tree_structure(tree: Any) -> TreeDef:
    """The structure of ``tree`` (see ``tree_flatten``)."""
    return tree_flatten(tree)[1]


def check_same_structure(expected: TreeDef, got: TreeDef, what: str) -> None:
    """Raise TreeStructureError naming ``what`` when two structures differ.

    Parameters
    ----------
    expected, got : TreeDef
        The structures to compare.
    what : str
        What is being checked, for the message.
    """
    if expected != got:
        raise TreeStructureError(f"{what}: expected a pytree of structure {expected!r}, got "
                                 f"{got!r}")


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` applied leaf by leaf to ``tree`` and the trees in ``rest`` (same structure)."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for k, other in enumerate(rest):
        other_leaves, other_def = tree_flatten(other)
        check_same_structure(treedef, other_def, f"tree_map: tree {k + 1}")
        others.append(other_leaves)
    return tree_unflatten(treedef, [fn(*xs) for xs in zip(leaves, *others)])


__all__ = ["TreeDef", "check_same_structure", "tree_flatten", "tree_leaves", "tree_map",
           "tree_structure", "tree_unflatten"]
