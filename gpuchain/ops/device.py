"""Moving a tensor between NumPy (cpu) and CuPy (cuda), differentiably."""

from __future__ import annotations

from gpuchain.backend import device_of, move_array
from gpuchain.engine.op import defop


@defop("to_device", save="none")
def to_device(xp, x, device="cpu", source="cpu"):
    return move_array(x, device)


@to_device.vjp
def _(ctx, g):
    return (to_device(g, device=ctx.params["source"], source=ctx.params["device"]),)


@to_device.jvp
def _(ctx, t):
    return to_device(t[0], device=ctx.params["device"], source=device_of(t[0]._data))
