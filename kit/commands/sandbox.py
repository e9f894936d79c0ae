"""`kit sandbox --root DIR [--generate] [--config-dir DIR] [--port 7777] [--code-competition SLUG]`: serve a local
Kaggle until interrupted.

Also `python -m kit.sandbox ...`. `--generate` creates every competition with a `synthetic` module
(see `kit.sandbox.data`); `--fault` makes requests misbehave (see `kit.sandbox.server`).
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from kit.errors import KitError


def main(argv: Sequence[str] | None = None) -> int:
    """`kit sandbox`: one-line errors and exit codes through `kit.cli.run`."""
    from kit.cli import run

    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="kit sandbox", description="A local Kaggle for offline rehearsals and tests.")
    p.add_argument("--root", type=Path, required=True, help="folder of competitions: ROOT/<slug>/")
    p.add_argument("--port", type=int, default=None, help="0 picks a free port (default 7777)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--generate", action="store_true",
                   help="create the competitions that have a synthetic module, if missing")
    p.add_argument("--config-dir", type=Path, default=None,
                   help="write a kaggle.json with the sandbox's credentials here (use it as KAGGLE_CONFIG_DIR)")
    p.add_argument("--username", default="sandbox")
    p.add_argument("--daily-limit", type=int, default=5)
    p.add_argument("--score-delay", type=float, default=1.0, help="seconds a submission stays pending")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="misbehave: CreateSubmission:500x2, ListSubmissions:drop, *:delay=3 (repeatable)")
    p.add_argument("--port-file", type=Path, default=None, help="write the port here once listening")
    p.add_argument("--code-competition", action="append", default=[], metavar="SLUG",
                   help="make this competition a code competition: notebook submissions only, each run with no "
                        "network under the caps below (repeatable)")
    p.add_argument("--kernel-runtime", type=float, default=None,
                   help="with --code-competition: a notebook's runtime cap in seconds (default 9 h)")
    p.add_argument("--kernel-memory-mb", type=int, default=None,
                   help="with --code-competition: a notebook's memory cap in MB (default 30720)")
    a = p.parse_args(argv)
    # after parsing: `--help` and usage errors need no library
    from kit.sandbox.data import META_FILE, CompetitionMeta, generate_all, make_code_competition
    from kit.sandbox.server import DEFAULT_PORT, Fault, Sandbox, client_env
    a.port = DEFAULT_PORT if a.port is None else a.port
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox: %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("kit.sandbox")
    faults = [Fault.parse(spec) for spec in a.fault]  # bad specs fail before anything is generated or bound
    if a.generate:
        for d in generate_all(a.root):
            log.info("generated %s", d)
    if not a.root.is_dir():
        raise KitError(f"--root {a.root}: not a folder (add --generate to create the demo competitions)")
    slugs = sorted(d.name for d in a.root.iterdir() if (d / META_FILE).is_file())
    for slug in slugs:
        CompetitionMeta.load(a.root / slug)  # metadata from an older kit: one line now, not at the first submit
    for slug in a.code_competition:
        if slug not in slugs:
            raise KitError(f"--code-competition {slug}: not served here ({', '.join(slugs) or 'no competitions'})")
        m = make_code_competition(a.root / slug, a.kernel_runtime, a.kernel_memory_mb)
        log.info("%s is a code competition (notebooks run offline, %g s and %d MB caps)", slug,
                 m.kernel_runtime_s, m.kernel_memory_mb)
    try:
        sb = Sandbox(a.root, username=a.username, daily_limit=a.daily_limit, score_delay=a.score_delay,
                     host=a.host, port=a.port)
    except OSError as e:
        raise KitError(f"cannot listen on {a.host}:{a.port}: {e.strerror}; pick another --port (0 = any free)",
                       exit_code=5) from None
    for f in faults:
        sb.add_fault(f)
    print(f"Kaggle sandbox on {sb.url} serving {', '.join(slugs) or '(no competitions)'}", flush=True)
    if a.config_dir:
        print(f"credentials written to {sb.write_credentials(a.config_dir)}", flush=True)
    else:
        print("no --config-dir given: the key is random, so clients cannot authenticate; pass --config-dir DIR",
              flush=True)
    env = client_env(sb.url, a.config_dir)
    print("point kit (and the official client) at it with:\n  export "
          + " ".join(f"{k}={v}" for k, v in env.items() if k.isupper()), flush=True)
    if a.port_file:
        a.port_file.write_text(str(sb.port))

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)  # `kill PID` stops it as cleanly as Ctrl-C
    sb.kernels.start()  # the worker that runs pushed notebooks
    try:
        sb.httpd.serve_forever()
    except KeyboardInterrupt:
        print("sandbox stopped", flush=True)
    finally:
        sb.kernels.stop()
        sb.httpd.server_close()
    return 0
