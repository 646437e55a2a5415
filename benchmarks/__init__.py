"""Benchmark results and the GPU check script; the suites are gpuchain.bench
(``python -m benchmarks`` runs them from a checkout, see README.md)."""
