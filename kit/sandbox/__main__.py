"""`python -m kit.sandbox --root DIR [--port 7777]` ≡ `kit sandbox ...` (dispatched by kit.cli)."""

import sys

from kit.cli import main

sys.exit(main(["sandbox", *sys.argv[1:]]))
