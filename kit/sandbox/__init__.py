"""A local Kaggle sandbox: the subset of Kaggle's API the official client uses for download/submit/list.

`kit sandbox --root DIR [--port 7777] [--generate]` (≡ `python -m kit.sandbox`) serves the competitions in
`DIR/<slug>/`. See `kit.sandbox.server` for the endpoints, `kit.sandbox.data` for the generated competitions
and `kit.sandbox.demo` for `make demo`.
"""

from __future__ import annotations

from kit.sandbox.server import Sandbox, client_env

__all__ = ["Sandbox", "client_env"]
