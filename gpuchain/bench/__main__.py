"""``python -m gpuchain.bench ...``: see :func:`gpuchain.bench.main`."""

import sys

from gpuchain.bench import main

sys.exit(main())
