"""Python's cyclic garbage collector while a graph is being recorded.

Recording a graph allocates several container objects per op (the output Tensor, its
Node, tuples), none of them in a reference cycle. With the default young-generation
threshold (700 allocations) the collector then runs over and over, each full run
traversing the whole graph recorded so far, which took the forward of a 100,000-op chain
from about 4 to 13 µs per op. gc.disable() between ops is not safe (the user's own code
runs there and may make cyclic garbage), so instead the young-generation threshold is
raised tenfold from the first recorded op until the next reverse pass ends: the collector
keeps running, just less often, and the user's cyclic garbage stays bounded. A threshold
the user changed in between is left as the user set it.
"""

from __future__ import annotations

import gc

SCALE = 10
_raised: tuple[int, int, int] | None = None  # the thresholds we set, while raised
_previous: tuple[int, int, int] | None = None


def raise_threshold() -> None:
    """Called when an op is recorded: raise the young-generation threshold (once)."""
    global _raised, _previous
    if _raised is not None:
        return
    current = gc.get_threshold()
    if current[0] == 0:  # collection disabled by threshold: nothing to do
        return
    _previous = current
    _raised = (current[0] * SCALE, current[1], current[2])
    gc.set_threshold(*_raised)


def restore_threshold() -> None:
    """Called when a reverse pass ends: put the user's thresholds back."""
    global _raised, _previous
    if _raised is None:
        return
    if gc.get_threshold() == _raised and _previous is not None:
        gc.set_threshold(*_previous)
    _raised = _previous = None
