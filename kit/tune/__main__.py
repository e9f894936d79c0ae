"""`python -m kit.tune ...` ≡ `kit tune ...`."""

import sys

from kit.commands.tune import main

sys.exit(main())
