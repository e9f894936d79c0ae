"""`kit kernel run --package DIR --data-dir DIR`: runs a packaged kernel offline as Kaggle would, then checks it.
No network (unshare --net), Kaggle's folder layout, a runtime cap and a memory cap; status, runtime and submission."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kit.errors import KitError


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit kernel`."""
    p = argparse.ArgumentParser(prog="kit kernel", description=__doc__.splitlines()[0].split(": ", 1)[1])
    sub = p.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run", help="run a package's kernel offline (unshare --net) and check its submission")
    r.add_argument("--package", type=Path, required=True, help="package folder packages/<comp>/<run>")
    r.add_argument("--data-dir", type=Path, required=True, help="folder with the competition's files")
    r.add_argument("--timeout", type=float, default=None, help="runtime cap in seconds (default 9 h, Kaggle's)")
    r.add_argument("--memory-mb", type=int, default=None, help="memory cap in MB (default 30720, Kaggle's)")
    r.add_argument("--work-dir", type=Path, default=None,
                   help="where the Kaggle folders and the log go (default a new folder under kernel-runs/)")
    return p


def _main(argv: Sequence[str] | None) -> int:
    from kit import kernel_runner as kr

    args = build_parser().parse_args(argv)
    kernel_dir, dataset_dir = args.package / "kernel", args.package / "dataset"
    if not kernel_dir.is_dir() or not dataset_dir.is_dir():
        raise KitError(f"{args.package}: not a package (no kernel/ and dataset/; `kit package` makes one)")
    work = args.work_dir
    if work is None:
        root = Path("kernel-runs")
        root.mkdir(exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{args.package.resolve().name}.", dir=root))
    result = kr.run_kernel(kernel_dir, args.data_dir, dataset_dir,
                           kr.DEFAULT_TIMEOUT_S if args.timeout is None else args.timeout,
                           kr.DEFAULT_MEMORY_MB if args.memory_mb is None else args.memory_mb, work)
    reason = f": {result.error}" if result.error else ""
    print(f"status {result.status}{reason}")
    print(f"runtime {result.seconds:.1f} s; log {result.log_path}")
    print(f"submission {result.submission_path}" if result.submission_path else "submission none")
    if not result.ok:
        print(f"error: kernel {result.status}{reason}", file=sys.stderr)
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit kernel`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
