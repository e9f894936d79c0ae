"""`kit kernel run|push|status|output`: code-competition notebooks, rehearsed offline and sent through Kaggle.

  run     run a package's kernel here as Kaggle would: no network (unshare --net), Kaggle's folders, runtime and
          memory caps; then check its submission.csv
  push    upload the package's dataset (skipped when Kaggle already holds the same content), push its kernel
          (Kaggle runs it); --wait follows the run and fetches its output and log
  status  a kernel version's run status (USER/SLUG or USER/SLUG/VERSION)
  output  download a kernel version's output files and log
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kit.errors import KitError


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit kernel`."""
    p = argparse.ArgumentParser(prog="kit kernel", description=__doc__.splitlines()[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    sub = p.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run", help="run a package's kernel offline (unshare --net) and check its submission")
    r.add_argument("--package", type=Path, required=True, help="package folder packages/<comp>/<run>")
    r.add_argument("--data-dir", type=Path, required=True, help="folder with the competition's files")
    r.add_argument("--timeout", type=float, default=None, help="runtime cap in seconds (default 9 h, Kaggle's)")
    r.add_argument("--memory-mb", type=int, default=None, help="memory cap in MB (default 30720, Kaggle's)")
    r.add_argument("--work-dir", type=Path, default=None,
                   help="where the Kaggle folders and the log go (default a new folder under kernel-runs/)")
    pu = sub.add_parser("push", help="upload the package's dataset and push its kernel to Kaggle")
    pu.add_argument("--package", type=Path, required=True, help="package folder packages/<comp>/<run>")
    pu.add_argument("-m", "--notes", default=None, help="dataset version notes (default: the package's run)")
    pu.add_argument("--wait", action="store_true", help="wait for Kaggle's run, then fetch its output and log")
    pu.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits (default 3600)")
    pu.add_argument("--session-timeout", type=int, default=None,
                    help="ask Kaggle to stop the run after this many seconds (default: Kaggle's limit)")
    st = sub.add_parser("status", help="a kernel version's run status")
    st.add_argument("kernel", help="USER/SLUG (newest version) or USER/SLUG/VERSION")
    st.add_argument("--wait", action="store_true", help="wait until the run has ended")
    st.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits (default 3600)")
    out = sub.add_parser("output", help="download a kernel version's output files and log")
    out.add_argument("kernel", help="USER/SLUG (newest version) or USER/SLUG/VERSION")
    out.add_argument("--dir", type=Path, default=None,
                     help="where to put them (default kernel-output/<slug>/v<VERSION>/)")
    return p


def _package_dirs(package: Path) -> tuple[Path, Path]:
    kernel_dir, dataset_dir = package / "kernel", package / "dataset"
    if not kernel_dir.is_dir() or not dataset_dir.is_dir():
        raise KitError(f"{package}: not a package (no kernel/ and dataset/; `kit package` makes one)")
    return kernel_dir, dataset_dir


def _run(args: argparse.Namespace) -> int:
    from kit import kernel_runner as kr

    kernel_dir, dataset_dir = _package_dirs(args.package)
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


def _fetch(kg, ref, dest: Path | None) -> list[Path]:
    from kit.kaggle import kernels

    dest = dest if dest is not None else Path("kernel-output") / ref.slug / f"v{ref.version}"
    return kernels.output(kg, ref, dest)


def _finished(kg, st, dest: Path | None) -> int:
    """Print a finished run's status, fetch its output; 0 when it completed."""
    files = _fetch(kg, st.ref, dest)
    print(f"kernel {st.ref}: {st.status}" + (f": {st.failure}" if st.failure else ""))
    for f in files:
        print(f)
    if st.status != "complete":
        print(f"error: kernel {st.ref} {st.status}" + (f": {st.failure}" if st.failure else ""), file=sys.stderr)
        return 1
    return 0


def _push(args: argparse.Namespace) -> int:
    from kit.kaggle import datasets, kernels
    from kit.kaggle.client import Kaggle
    from kit.package import PLACEHOLDER_OWNER

    kernel_dir, dataset_dir = _package_dirs(args.package)
    meta = kernels.read_metadata(kernel_dir)
    ref = kernels.KernelRef.parse(str(meta.get("id", "")))
    if ref.owner == PLACEHOLDER_OWNER:
        raise KitError(f"{args.package}: packaged without a Kaggle username (ids {ref.name}); re-run `kit package` "
                       "with Kaggle credentials set or --owner YOUR_USERNAME")
    comps = meta.get("competition_sources") or []
    kg = Kaggle(comps[0] if comps else "")
    if comps and kg.is_code_competition(comps[0]) is False:
        print(f"note: {comps[0]} is not a code competition: Kaggle will run the notebook, but submit its "
              "submission.csv as a file (`kit kernel output`, then `kit submit --file`)", file=sys.stderr)
    notes = args.notes or f"kit package {args.package.resolve().name}"
    pub = datasets.publish(kg, dataset_dir, notes)
    state = "uploaded" if pub.uploaded else "unchanged on Kaggle, not uploaded again"
    print(f"dataset {pub.ref} version {pub.version}: {state} (content {pub.content[:12]})", flush=True)
    pushed = kernels.push(kg, kernel_dir, args.session_timeout)
    print(f"kernel {pushed.ref}: pushed; Kaggle runs it ({pushed.url})", flush=True)
    if not args.wait:
        print(f"follow it with `kit kernel status {pushed.ref} --wait`")
        return 0
    st = kernels.wait(kg, pushed.ref, args.timeout)
    return _finished(kg, st, args.package / "output" / f"v{pushed.ref.version}")


def _status(args: argparse.Namespace) -> int:
    from kit.kaggle import kernels
    from kit.kaggle.client import Kaggle

    kg = Kaggle()
    ref = kernels.versioned(kg, kernels.KernelRef.parse(args.kernel))
    st = kernels.wait(kg, ref, args.timeout) if args.wait else kernels.status(kg, ref)
    print(f"kernel {st.ref}: {st.status}" + (f": {st.failure}" if st.failure else ""))
    return 1 if st.status in ("error", "cancel_acknowledged") else 0


def _output(args: argparse.Namespace) -> int:
    from kit.kaggle import kernels
    from kit.kaggle.client import Kaggle

    kg = Kaggle()
    ref = kernels.versioned(kg, kernels.KernelRef.parse(args.kernel))
    st = kernels.status(kg, ref)
    if not st.finished:
        raise KitError(f"kernel {ref} is still {st.status}: its output exists once the run ends "
                       f"(`kit kernel status {ref} --wait`)")
    for f in _fetch(kg, ref, args.dir):
        print(f)
    return 0


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    return {"run": _run, "push": _push, "status": _status, "output": _output}[args.action](args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit kernel`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
