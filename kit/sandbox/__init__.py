"""A local Kaggle sandbox: the subset of Kaggle's API the official client uses for download/submit/list.

`python -m kit.sandbox --root DIR [--port 7777] [--generate]` serves the competitions in `DIR/<slug>/`.
See `kit.sandbox.server` for the endpoints and `kit.sandbox.data` for the generated competitions.
"""

from __future__ import annotations

from kit.sandbox.server import Sandbox, client_env

__all__ = ["Sandbox", "client_env"]
