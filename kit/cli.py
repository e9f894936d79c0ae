"""`kit` console script: `kit <command> ...` (≡ `python -m kit <command> ...`) runs `kit.commands.<command>`."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence

from kit.errors import KitError

# name -> module holding `main(argv) -> int`
COMMANDS: dict[str, str] = {
    "init": "kit.commands.init",
    "train": "kit.commands.train",
    "predict": "kit.commands.predict",
    "package": "kit.commands.package",
    "tune": "kit.commands.tune",
    "download": "kit.commands.download",
    "submit": "kit.commands.submit",
    "submissions": "kit.commands.submissions",
    "sandbox": "kit.commands.sandbox",
    "blend": "kit.commands.blend",
    "board": "kit.commands.board",
    "kernel": "kit.commands.kernel",
}


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command's `main`, turning KitError into one line on stderr and its exit code."""
    try:
        return int(main(argv) or 0)
    except KitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log lines to stderr, timestamped; `quiet` (the commands' --quiet): warnings and errors only."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if quiet:  # Optuna logs its per-trial lines through a handler of its own
        logging.getLogger("optuna").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `kit <command>` to the command's module."""
    argv = list(sys.argv[1:] if argv is None else argv)
    available = {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v) is not None}
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: kit <command> [options]\n\ncommands: " + ", ".join(sorted(available)))
        print("run `kit <command> --help` for a command's options")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in available:
        print(f"error: unknown command {name!r}; commands: {', '.join(sorted(available))}", file=sys.stderr)
        return 2
    module = importlib.import_module(available[name])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
