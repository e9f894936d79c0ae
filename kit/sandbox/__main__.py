"""`python -m kit.sandbox --root DIR [--port 7777]`."""

import sys

from kit.sandbox.server import main

sys.exit(main())
