"""`python -m kit.tune ...` ≡ `kit tune ...` (dispatched by the console script's table, kit.cli)."""

import sys

from kit.cli import main

sys.exit(main(["tune", *sys.argv[1:]]))
