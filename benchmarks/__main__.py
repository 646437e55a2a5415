"""``python -m benchmarks ...`` from a source checkout: the same runner as
``gpuchain bench`` (the suites live in :mod:`gpuchain.bench`; this folder keeps the
results and the GPU check script)."""

import sys

from gpuchain.bench import main

if __name__ == "__main__":
    sys.exit(main())
