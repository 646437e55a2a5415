"""gpuchain's CUDA layer: kernel sources, loader, launchers, compile check, telemetry.

Importing this package never imports CuPy; launchers import it when called.
Submodules: ``loader`` (find/inline/compile sources), ``kernels`` (launchers),
``memory`` (``translate_oom``), ``compile`` (offline NVRTC check, also
``python -m gpuchain.cuda compile``), ``telemetry`` (NVML).
"""

from gpuchain.cuda.memory import translate_oom

__all__ = ["translate_oom"]
