"""gpuchain benchmark suites; run them with ``python -m benchmarks`` (see README.md)."""
