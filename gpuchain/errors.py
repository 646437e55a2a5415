"""Exception types raised by gpuchain.

Every error names the op (or component) involved and the shapes, dtypes or
devices that caused it, so a failure can be read without a debugger.
"""

from __future__ import annotations


class GpuchainError(Exception):
    """Base class of every error gpuchain raises on purpose."""


class ShapeError(GpuchainError, ValueError):
    """Operands whose shapes do not fit the op."""


class DTypeError(GpuchainError, TypeError):
    """An operand of a dtype the op cannot take (e.g. an int tensor that requires grad)."""


class DeviceMismatchError(GpuchainError, TypeError):
    """NumPy and CuPy arrays mixed in one op."""


class BackendUnavailableError(GpuchainError, RuntimeError):
    """A backend was asked for where it cannot run; the message says why."""


class OutOfMemoryError(GpuchainError, MemoryError):
    """The device could not allocate; states the bytes requested and the bytes free."""

    def __init__(self, what: str, requested_bytes: int | None, free_bytes: int | None):
        self.requested_bytes = requested_bytes
        self.free_bytes = free_bytes
        req = "unknown" if requested_bytes is None else f"{requested_bytes:,}"
        free = "unknown" if free_bytes is None else f"{free_bytes:,}"
        super().__init__(f"{what}: GPU out of memory (requested {req} bytes, {free} bytes free)")


class AnomalyError(GpuchainError, FloatingPointError):
    """Raised inside gc.detect_anomaly() by the first op producing NaN or Inf."""


class NonFiniteGradError(GpuchainError, FloatingPointError):
    """A gradient holds NaN or Inf; the optimizer step was refused and nothing changed."""


class OptimizerStateError(GpuchainError, ValueError):
    """An optimizer state dict does not fit this optimizer; nothing was loaded."""


class StateDictError(GpuchainError, ValueError):
    """load_state_dict found missing, unexpected or mis-shaped entries (all are listed)."""


class SerializationError(GpuchainError, ValueError):
    """An object cannot be saved, or a file is not a readable gpuchain archive."""


class GradcheckError(GpuchainError, AssertionError):
    """A derivative disagreed with finite differences; the message names the worst case."""


class MissingRuleError(GpuchainError, NotImplementedError):
    """A gradient or tangent must flow through a primitive that defines no rule for it."""


class TreeStructureError(GpuchainError, TypeError):
    """Pytrees (nested tuples, lists, dicts) whose structures should match but do not, or
    a transform argument that is not the container it must be (e.g. jvp primals)."""


class DistributedError(GpuchainError, RuntimeError):
    """A gpuchain.distributed operation failed (backend unavailable, used before init,
    a collective issued in a state that cannot succeed); the message names the rank."""


class CollectiveMismatchError(DistributedError, ValueError):
    """Ranks called a collective with different shapes, dtypes or ops; the message lists
    every rank's arguments. Every rank raises it, so none is left waiting."""


class LinAlgError(GpuchainError, ValueError):
    """A linear-algebra derivative that is not defined at this point (e.g. eigenvector
    gradients at repeated eigenvalues); the message names the function and the values."""


class IndexingError(GpuchainError, IndexError):
    """An index out of range for the tensor it is applied to."""
