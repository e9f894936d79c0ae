"""Kaggle through its official client: the library behind `kit download`, `kit submit`, `kit submissions` and
`kit kernel push|status|output`.

`client` (the `Kaggle` wrapper: one-line errors, bounded retries; `import kaggle` only on first use, since it
authenticates at import time), `errors` (one exit code per failure), `credentials` (found in the client's
order, never printed), `ledger` (submissions/ledger.jsonl), `download` (files + archive unpacking),
`submissions` (upload or kernel version with the ledger, reconciliation, waiting for a score), `datasets`
(a package's dataset created or versioned, skipped when unchanged) and `kernels` (push, status, output).
"""

from __future__ import annotations

from kit.kaggle.client import Kaggle, RemoteSubmission
from kit.kaggle.credentials import Credentials, find_credentials, redact
from kit.kaggle.errors import KaggleError
from kit.kaggle.ledger import LEDGER_NAME, Entry, Ledger

__all__ = ["LEDGER_NAME", "Credentials", "Entry", "Kaggle", "KaggleError", "Ledger", "RemoteSubmission",
           "find_credentials", "redact"]
