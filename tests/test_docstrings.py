"""Every public name has its own docstring (``help(gc.sin)`` says what ``sin`` computes,
not what a primitive is), every public Tensor member has one, and every parameter of a
public function or class is named in its docstring (NumPy style: a ``Parameters`` entry
``name : type``, or ``name`` in double backquotes in the prose)."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys

import pytest

import gpuchain as gc

# The public modules: gpuchain's own names, and each public subpackage's __all__ (those
# that exist in this version).
MODULES = ["gpuchain", "gpuchain.functional", "gpuchain.pytree", "gpuchain.nn",
           "gpuchain.nn.functional", "gpuchain.nn.init", "gpuchain.nn.utils",
           "gpuchain.optim", "gpuchain.optim.lr_scheduler", "gpuchain.linalg",
           "gpuchain.random", "gpuchain.distributed", "gpuchain.extend", "gpuchain.data",
           "gpuchain.interop", "gpuchain.nn.torch_compat"]


def _modules():
    found = []
    for name in MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but one of its imports is broken
                raise
    return found


def _public_names():
    for module in _modules():
        names = getattr(module, "__all__", None)
        if names is None:  # the functions and classes the module defines
            names = [n for n, v in vars(module).items() if not n.startswith("_")
                     and getattr(v, "__module__", None) == module.__name__]
        for name in names:
            yield f"{module.__name__}.{name}", getattr(module, name)


PUBLIC = list(_public_names())


def _own_doc(obj) -> str:
    """The object's own docstring: an instance (a primitive, a constant) does not count
    its class's docstring as its own."""
    doc = inspect.getdoc(obj) or ""
    if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)) \
            and doc == (inspect.getdoc(type(obj)) or ""):
        return ""
    return doc.strip()


def test_star_import_works_in_a_fresh_interpreter():
    """Every name in ``__all__`` exists right after ``import`` (nothing relies on another
    module having been imported first)."""
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    try:\n"
            "        m = importlib.import_module(name)\n"
            "    except ModuleNotFoundError as e:\n"
            "        if e.name == name: continue\n"
            "        raise\n"
            "    missing = [n for n in getattr(m, '__all__', []) if not hasattr(m, n)]\n"
            "    assert not missing, f'{name}.__all__ names missing attributes: {missing}'\n"
            "    exec(f'from {name} import *', {})\n")
    proc = subprocess.run([sys.executable, "-c", code, *MODULES], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_public_api_is_large_enough_to_check():
    assert len(PUBLIC) > 100 and len(gc.__all__) > 50


@pytest.mark.parametrize("qualname, obj", PUBLIC, ids=[q for q, _ in PUBLIC])
def test_public_name_has_a_docstring(qualname, obj):
    doc = _own_doc(obj)
    assert doc, f"{qualname} has no docstring of its own"
    assert len(doc) >= 12, f"{qualname}: docstring {doc!r} says too little"


def _tensor_members():
    for name, member in inspect.getmembers(gc.Tensor):
        if name.startswith("_"):
            continue
        yield name, member


TENSOR = list(_tensor_members())


def test_tensor_has_many_public_members():
    assert len(TENSOR) >= 36


@pytest.mark.parametrize("name, member", TENSOR, ids=[n for n, _ in TENSOR])
def test_tensor_member_has_a_docstring(name, member):
    raw = inspect.getattr_static(gc.Tensor, name)
    doc = inspect.getdoc(raw) or inspect.getdoc(member) or ""
    if isinstance(raw, property) or inspect.isroutine(raw) or isinstance(
            raw, (staticmethod, classmethod)):
        assert doc.strip(), f"Tensor.{name} has no docstring"
    else:  # a slot or plain attribute: documented in the class docstring
        assert re.search(rf"\b{re.escape(name)}\b", inspect.getdoc(gc.Tensor) or ""), \
            f"Tensor.{name} is not described in the Tensor docstring"


def _documented(param: str, doc: str) -> bool:
    if re.search(rf"``\**{re.escape(param)}(?:=[^`]*)?``", doc):  # ``name`` or ``name=value``
        return True
    # a NumPy "Parameters" entry: "name : type" or "a, name : type"
    return bool(re.search(rf"^\s*(?:\**\w+\s*,\s*)*\**{re.escape(param)}(?:\s*,\s*\**\w+)*"
                          r"\s*:", doc, re.M))


def _signature_targets():
    for qualname, obj in PUBLIC:
        if inspect.ismodule(obj) or not callable(obj):
            continue
        if inspect.isclass(obj):
            if issubclass(obj, BaseException) or "__init__" not in obj.__dict__:
                continue
            target = obj.__init__
            doc = (inspect.getdoc(obj) or "") + "\n" + (inspect.getdoc(target) or "")
        else:
            target, doc = obj, _own_doc(obj)
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            continue
        params = [p for p, v in signature.parameters.items()
                  if p not in ("self", "cls") and not p.startswith("_")]
        if params:
            yield qualname, params, doc


SIGNATURES = list(_signature_targets())


@pytest.mark.parametrize("qualname, params, doc", SIGNATURES,
                         ids=[q for q, _, _ in SIGNATURES])
def test_every_parameter_is_documented(qualname, params, doc):
    missing = [p for p in params if not _documented(p, doc)]
    assert not missing, (f"{qualname}: parameters {missing} are not described in its "
                         "docstring (add a NumPy 'Parameters' section)")
