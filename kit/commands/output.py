"""What the commands print: one place for the lines every run ends with."""

from __future__ import annotations

from typing import Any


def print_run(comp: Any, result: Any, note: str = "") -> None:
    """`CV ...`, `OOF ...`, the run folder and, last (scripts read it), the submission's path."""
    print(f"CV {result.cv.summary()}{note}")
    print(f"OOF {comp.metric}: {result.decoder.summary()}")
    print(f"run folder: {result.run_dir}")
    print(result.submission)
