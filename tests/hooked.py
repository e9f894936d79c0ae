"""`kit ARGV` in a new process that sends itself a real signal (SIGKILL, SIGINT) just before its n-th
os.replace / os.rename: a kill or Ctrl-C at an exact write (used by the tests and bench/reliability.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HOOK = """
import json, os, signal, sys
import matplotlib.font_manager  # noqa: F401  (a first run in a new HOME writes its font cache: not kit's write)
n, sig, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
# a process started in the background by a shell without job control inherits SIGINT ignored: restore Python's
# own handler, so the SIGINT below is a Ctrl-C however the suite was started
signal.signal(signal.SIGINT, signal.default_int_handler)
calls = []
def hooked(real, name):
    def call(src, dst, *a, **k):
        calls.append([name, str(dst)])
        if len(calls) == n:
            os.kill(os.getpid(), getattr(signal, sig))
        return real(src, dst, *a, **k)
    return call
os.replace, os.rename = hooked(os.replace, "replace"), hooked(os.rename, "rename")
try:
    from kit import cli
    code = cli.main(sys.argv[4:])
finally:
    with open(log, "w") as f:
        json.dump(calls, f)
sys.exit(code)
"""


def run_hooked(argv: list[str], n: int, sig: str, log: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `kit ARGV`, signalling `sig` before the n-th rename (n=0: never); `log` gets every [call, target]."""
    return subprocess.run([sys.executable, "-c", HOOK, str(n), sig, str(log), *argv], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
