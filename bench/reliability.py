"""Bad-input and fault cases against `kit train`, `kit tune`, `kit submit`, `kit download` (issue 12's probe, kept).

Every case runs the real command in this process against real files and, for Kaggle, the local sandbox (with
its fault injection); the table records the exit code and the first line the command printed to stderr, and
checks that the case's secret never appears. Usage: python bench/reliability.py [--out FILE]
Writes bench/results/reliability.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECRET = "benchSECRETkey0123456789"
PASSWORD = "benchPASSWORD42"


def run(argv: list[str]) -> tuple[int, str]:
    """(exit code, first stderr line) of `kit ARGV`, in this process."""
    from kit import cli

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(argv)
    text = err.getvalue() + out.getvalue()
    assert SECRET not in text and PASSWORD not in text, f"secret printed by {argv}"
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    picks = ([ln for ln in lines if ln.startswith("error:")] or [ln for ln in lines if "***" in ln]
             or [ln for ln in lines if not ln.startswith(("[I ", "[W ", "  ")) and " INFO " not in ln
                 and "Warning" not in ln] or out.getvalue().splitlines()[-1:] or [""])
    return code, picks[0]


def main() -> None:
    """Run every case and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/reliability.md")
    a = ap.parse_args()
    from competitions.titanic.synthetic import generate
    from kit.sandbox import Sandbox, client_env
    from kit.sandbox.data import make_competition

    tmp = Path(tempfile.mkdtemp(prefix="kit-reliability-"))
    os.chdir(tmp)
    src = tmp / "titanic"
    generate(src, n_train=150, n_test=40, seed=0)
    cases: list[tuple[str, str, Callable[[], tuple[int, str]]]] = []

    def data(name: str, edit: Callable[[str], str] | None = None, file: str = "train.csv") -> Path:
        d = tmp / name
        shutil.copytree(src, d)
        if edit is not None:
            (d / file).write_text(edit((d / file).read_text()))
        return d

    def lines(t: str, n: int, f: Callable[[str], str]) -> str:
        ls = t.split("\n")
        ls[n - 1] = f(ls[n - 1])
        return "\n".join(ls)

    fast = ["--folds", "2", "--set", "epochs=1", "--threads", "1"]

    def train(d: Path, *extra: str) -> Callable[[], tuple[int, str]]:
        return lambda: run(["train", "--comp", "titanic", "--data-dir", str(d), *fast, *extra])

    train_cases = [
        ("unknown competition", train(src, "--comp", "nosuch")),
        ("missing data folder", train(tmp / "nowhere")),
        ("train.csv cut mid-row", train(data("cut", lambda t: t[: t.rindex(",", 0, len(t) - 40)]))),
        ("short row in the middle", train(data("short", lambda t: lines(t, 5, lambda ln: ln.rsplit(",", 2)[0])))),
        ("extra field", train(data("extra", lambda t: lines(t, 7, lambda ln: ln + ",x")))),
        ("header only", train(data("hdr", lambda t: t.split("\n")[0] + "\n"))),
        ("empty train.csv", train(data("empty", lambda t: ""))),
        ("non-numeric Pclass", train(data("num", lambda t: lines(t, 4, lambda ln: ",".join(
            [*ln.split(",")[:2], "third", *ln.split(",")[3:]]))))),
        ("missing column", train(data("col", lambda t: t.replace("Fare", "Fair", 1)))),
        ("bad --set value", train(src, "--set", "dropout=1.5")),
        ("unknown --set name", train(src, "--set", "nosuch=1")),
    ]
    cases += [("train", n, f) for n, f in train_cases]

    db = tmp / "o.db"
    base = ["tune", "--comp", "titanic", "--data-dir", str(src), "--folds", "2", "--threads", "1", "--n-trials", "1",
            "--no-refit", "--storage", f"sqlite:///{db}?password={PASSWORD}"]
    tune_cases = [
        ("storage with ?password= (masked)", lambda: run([*base, "--set", "epochs=1"])),
        ("resume with another --set", lambda: run([*base, "--set", "epochs=2"])),
        ("resume with another --seed", lambda: run([*base, "--set", "epochs=1", "--seed", "7"])),
        ("unknown sampler", lambda: run([*base, "--sampler", "grid"])),
        ("--n-trials 0", lambda: run([*base, "--n-trials", "0"])),
        ("not a storage URL", lambda: run([*base, "--storage", "not a url"])),
        ("unreachable PostgreSQL (password masked)",
         lambda: run([*base, "--storage", f"postgresql://kit:{PASSWORD}@127.0.0.1:9/optuna"])),
        ("journal in a missing folder", lambda: run([*base, "--storage", "journal:/nonexistent/j.log"])),
    ]
    cases += [("tune", n, f) for n, f in tune_cases]

    root = tmp / "sandbox"
    make_competition(root, "titanic", seed=3, n_train=160, n_test=60)
    sb = Sandbox(root, username="bench", key=SECRET, daily_limit=3).start()
    cfg = tmp / "kaggle"
    sb.write_credentials(cfg)
    for k in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        os.environ.pop(k, None)
    os.environ.update({**client_env(sb.url, cfg), "KIT_KAGGLE_RETRIES": "2", "KIT_KAGGLE_BACKOFF_S": "0.01",
                       "KIT_KAGGLE_TIMEOUT_S": "5", "KIT_KAGGLE_POLL_S": "0.05"})
    from kit.sandbox.server import Fault

    def with_fault(spec: str, argv: Callable[[], list[str]]) -> Callable[[], tuple[int, str]]:
        def go() -> tuple[int, str]:
            args = argv()
            sb.faults.clear()
            sb.add_fault(Fault.parse(spec))
            try:
                return run(args)
            finally:
                sb.faults.clear()
        return go

    def sub(name: str, edit: Callable[[list[str]], None] | None = None) -> str:
        ls = (tmp / "data/titanic/gender_submission.csv").read_text().splitlines()
        if edit is not None:
            edit(ls)
        (tmp / name).write_text("\n".join(ls) + "\n")
        return str(tmp / name)

    def flip(ls: list[str], i: int) -> None:
        ls[i] = ls[i][:-1] + ("1" if ls[i].endswith("0") else "0")

    submit = ["submit", "--comp", "titanic", "--file"]
    kaggle_cases = [
        ("download", "no credentials", lambda: run_env({"KAGGLE_CONFIG_DIR": str(tmp / "none")},
                                                     ["download", "--comp", "titanic", "--quiet"])),
        ("download", "500 on the archive", with_fault("download:500x9", lambda: ["download", "--comp", "titanic",
                                                                                   "--quiet"])),
        ("download", "ok", lambda: run(["download", "--comp", "titanic", "--quiet"])),
        ("submit", "file with a NaN", lambda: run([*submit, sub("nan.csv", lambda ls: ls.__setitem__(3, ls[3][:-1]))])),
        ("submit", "ids out of order", lambda: run([*submit, sub("ord.csv", lambda ls: ls.insert(1, ls.pop(2)))])),
        ("submit", "values with spaces around them",
         lambda: run([*submit, sub("pad.csv", lambda ls: ls.__setitem__(1, ls[1].replace(",", " , ")))])),
        ("submit", "a valid file", lambda: run([*submit, sub("a.csv", lambda ls: flip(ls, 1)), "-m", "a"])),
        ("submit", "the same file again", lambda: run([*submit, str(tmp / "a.csv")])),
        ("submit", "--wait through 503s",
         with_fault("ListSubmissions:503x3",
                    lambda: [*submit, sub("e.csv", lambda ls: flip(ls, 5)), "--wait", "--timeout", "20"])),
        ("submit", "CreateSubmission 500 (after retries)",
         with_fault("CreateSubmission:500x9", lambda: [*submit, sub("c.csv", lambda ls: flip(ls, 3))])),
        ("submit", "429 on every call",
         with_fault("*:429x99", lambda: [*submit, sub("d.csv", lambda ls: flip(ls, 4))])),
        ("submit", "torn last ledger line, then a new file", lambda: torn_then(
            lambda: run([*submit, sub("b.csv", lambda ls: flip(ls, 2)), "-m", "b"]))),
        ("submit", "daily limit reached", lambda: run([*submit, sub("f.csv", lambda ls: flip(ls, 6))])),
        ("submit", "bad key (401)", lambda: run_env({"KAGGLE_KEY": "wrong", "KAGGLE_USERNAME": "bench"},
                                                    [*submit, sub("g.csv", lambda ls: flip(ls, 7))])),
        ("submissions", "listing", lambda: run(["submissions", "--comp", "titanic"])),
    ]

    def run_env(env: dict[str, str], argv: list[str]) -> tuple[int, str]:
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return run(argv)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def torn_then(go: Callable[[], tuple[int, str]]) -> tuple[int, str]:
        with open(tmp / "submissions/ledger.jsonl", "a") as f:
            f.write('{"event": "pending", "id": "torn", "sha2')
        return go()

    cases += kaggle_cases
    rows = []
    try:
        for cmd, name, go in cases:
            code, first = go()
            rows.append(f"| `kit {cmd}` | {name} | {code} | `{first.replace('|', '/')[:150]}` |")
            print(rows[-1], flush=True)
    finally:
        sb.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = ["# Reliability: bad input and faults", "",
            "`python bench/reliability.py` (real commands, real files, the local Kaggle sandbox with injected "
            "faults; paths shortened to their temp folder). Exit codes: 0 ok, 2 usage, 3 bad data, 4 invalid "
            "submission, 20-31 Kaggle (README). No case printed the Kaggle key or the database password.", "",
            f"{len(rows)} cases.", "", "| command | case | exit | first line |", "|---|---|---|---|",
            *[r.replace(str(tmp), "TMP") for r in rows], ""]
    a.out.write_text("\n".join(text))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
