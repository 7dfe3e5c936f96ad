"""`python -m benchmarks`: the benchmark harness (see benchmarks.harness)."""

import sys

from benchmarks.harness import main

sys.exit(main())
