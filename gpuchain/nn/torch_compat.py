"""Loading a PyTorch state dict (``nn.Linear`` / ``nn.Sequential`` / ``nn.LayerNorm`` /
``nn.Embedding`` weights) into a gpuchain model, with a report of every mismatch.

The k-th PyTorch module that holds parameters maps to the k-th gpuchain module that holds
parameters (so ``torch.nn.Sequential(Linear, ReLU, Linear)`` maps onto ``nn.MLP`` as well
as onto ``nn.Sequential(Dense, ReLU, Dense)``); within a module, names map as they are
(``weight``, ``bias``). A ``Dense`` weight is stored (in, out), PyTorch's ``Linear``
(out, in): it is transposed. PyTorch is not imported; tensors are read with
``.detach().cpu().numpy()`` or ``np.asarray``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, move_array
from gpuchain.errors import StateDictError
from gpuchain.nn.module import Module


@dataclass
class TorchLoadReport:
    """What ``load_torch_state_dict`` did: ``mapped`` (torch key, gpuchain name,
    transposed), ``missing`` gpuchain parameters, ``unexpected`` torch keys and
    ``mismatched`` shapes. ``ok`` when everything was mapped."""

    mapped: list[tuple[str, str, bool]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        parts = [f"{len(self.mapped)} tensors mapped"]
        if self.missing:
            parts.append("missing in the torch state dict: " + ", ".join(self.missing))
        if self.unexpected:
            parts.append("unexpected torch keys: " + ", ".join(self.unexpected))
        if self.mismatched:
            parts.append("shape mismatches: " + "; ".join(self.mismatched))
        return ". ".join(parts)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach()
        value = value.cpu() if hasattr(value, "cpu") else value
        return np.asarray(value.numpy())
    return np.asarray(move_array(value, "cpu") if hasattr(value, "dtype") else value)


def load_torch_state_dict(model: Module, state_dict: Mapping[str, Any],
                          strict: bool = True) -> TorchLoadReport:
    """Copy a PyTorch ``state_dict`` into ``model``'s parameters (in place).

    Parameters
    ----------
    model : gpuchain Module
    state_dict : mapping of str to torch tensors or arrays
        E.g. ``torch_model.state_dict()``.
    strict : bool
        Raise StateDictError (and change nothing) unless every parameter and every
        torch tensor is mapped with a matching shape. With ``strict=False`` what can be
        mapped is loaded and the report lists the rest.

    Returns
    -------
    TorchLoadReport
    """
    if not isinstance(state_dict, Mapping):
        raise StateDictError(f"load_torch_state_dict: expected a mapping (a torch "
                             f"state_dict()), got {type(state_dict).__name__}")
    torch_modules: dict[str, list[str]] = {}
    for key in state_dict:
        prefix, _, _ = str(key).rpartition(".")
        torch_modules.setdefault(prefix, []).append(str(key))
    ours = [(name, m) for name, m in model.named_modules() if m._params]
    report = TorchLoadReport()
    values: list[tuple[Any, np.ndarray]] = []
    used: set[str] = set()
    for prefix, (name, m) in zip(torch_modules, ours, strict=False):
        for pname, p in m._params.items():
            gname = f"{name}.{pname}" if name else pname
            tkey = f"{prefix}.{pname}" if prefix else pname
            if tkey not in state_dict:
                report.missing.append(gname)
                continue
            used.add(tkey)
            v = _to_numpy(state_dict[tkey])
            transposed = type(m).__name__ == "Dense" and pname == "weight" and v.ndim == 2
            if transposed:
                v = v.T
            if tuple(v.shape) != tuple(p.shape):
                shown = tuple(v.T.shape) if transposed else tuple(v.shape)
                report.mismatched.append(f"{tkey} {shown} -> {gname} {tuple(p.shape)}")
                continue
            report.mapped.append((tkey, gname, transposed))
            values.append((p, v))
    mapped_names = {g for _, g, _ in report.mapped} | set(report.missing) | {
        s.split(" -> ")[1].split(" ")[0] for s in report.mismatched}
    for gname, _ in model.named_parameters():
        if gname not in mapped_names:
            report.missing.append(gname)
    report.unexpected = [k for k in map(str, state_dict) if k not in used]
    if strict and not report.ok:
        raise StateDictError(f"load_torch_state_dict into {type(model).__name__}: {report}. "
                             "Nothing was loaded.")
    for p, v in values:
        xp = array_module_of(p._data)
        p.data[...] = xp.asarray(move_array(v, "cuda" if xp is not np else "cpu"),
                                 dtype=p.dtype)
    return report
