"""`python -m kit <command> ...` ≡ `kit <command> ...`."""

import sys

from kit.cli import main

sys.exit(main())
