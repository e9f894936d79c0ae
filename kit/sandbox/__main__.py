"""`python -m kit.sandbox --root DIR [--port 7777]` ≡ `kit sandbox ...`."""

import sys

from kit.commands.sandbox import main

sys.exit(main())
