import sys

from gpuchain.cli import main

sys.exit(main())
