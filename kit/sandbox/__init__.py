"""A local Kaggle sandbox: the subset of Kaggle's API the official client uses for download/submit/list and for
code competitions (datasets, kernels run with no network, submission by kernel version).

`kit sandbox --root DIR [--port 7777] [--generate] [--code-competition SLUG]` (≡ `python -m kit.sandbox`) serves
the competitions in `DIR/<slug>/`. See `kit.sandbox.server` for the endpoints, `kit.sandbox.competitions` for
competition files and submissions, `kit.sandbox.datasets` and `kit.sandbox.kernels` for code competitions,
`kit.sandbox.data` for the generated competitions and `kit.sandbox.demo` for `make demo` / `make demo-code`.
"""

from __future__ import annotations

from kit.sandbox.server import Sandbox, client_env

__all__ = ["Sandbox", "client_env"]
