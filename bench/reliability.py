"""Bad-input and fault cases against `kit train`, `kit tune`, `kit submit`, `kit download` (issue 12's probe, kept)
and against `kit blend`, `kit predict`, `kit package`, `kit board`, `kit kernel run` (issue 21's).

Every case runs the real command in this process against real files and, for Kaggle, the local sandbox (with
its fault injection); kills and Ctrl-C run the command in a new process that signals itself at a chosen write
(tests/hooked.py); a full disk is a real, filled 256 kB tmpfs (when this user can mount one). The table records
the exit code, the first line the command printed to stderr and the files the case left, and checks that the
case's secret never appears. Usage: python bench/reliability.py [--out FILE] [--only run-folders]
Writes bench/results/reliability.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
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


STAMP = re.compile(r"\d{8}T\d{9}Z")
OUTPUTS = ("submissions", "runs", "packages", "full", "kr")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under the output folders of `root`."""
    out = {}
    for name in OUTPUTS:
        for p in (root / name).rglob("*") if (root / name).is_dir() else []:
            if p.is_file():
                st = p.stat()
                out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def left(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> str:
    """The files a case added or changed, by folder: `runs/titanic/<run>: 9; submissions/titanic: 2`."""
    new = [f for f, v in after.items() if before.get(f) != v and not f.endswith(("ledger.jsonl", ".lock"))]
    by: dict[str, int] = {}
    for f in new:
        parts = STAMP.sub("<run>", f).split("/")
        folder = "/".join(parts[:-1][:3]) or "."  # a kernel's work folder: its first levels only
        if parts[-1].startswith("."):
            folder += " (hidden temp file)"
        by[folder] = by.get(folder, 0) + 1
    return "; ".join(f"{k}: {v}" for k, v in sorted(by.items())) or "none"


def run_folder_cases(tmp: Path, src: Path) -> list[tuple[str, str, Callable[[], tuple[int, str, str]]]]:
    """Issue 21's cases: blend, predict, package, board and kernel run on good, damaged and foreign run folders,
    outputs that cannot be written, kills and interrupts at chosen writes."""
    from kit import runs
    from tests.hooked import run_hooked

    fast = ["--folds", "2", "--seed", "3", "--threads", "1", "--quiet"]
    for extra in (["--set", "epochs=1", "--set", "width=16"], ["--set", "epochs=1", "--set", "width=48"],
                  ["--model", "lightgbm", "--set", "n_estimators=20"]):
        assert run(["train", "--comp", "titanic", "--data-dir", str(src), *fast, *extra])[0] == 0
    a, b, g = runs.run_folders(tmp / "runs", "titanic")
    for name in ("runs", "submissions"):
        shutil.copytree(tmp / name, tmp / f".pristine-{name}")

    def fresh() -> None:
        """Every case starts from the three trained runs and their submissions, nothing else."""
        for name in OUTPUTS:
            shutil.rmtree(tmp / name, ignore_errors=True) if (tmp / name).is_dir() and name != "full" else None
        for name in ("runs", "submissions"):
            shutil.copytree(tmp / f".pristine-{name}", tmp / name)
        Path(tmp / "taken").write_text("x\n")

    def measured(act: Callable[[], tuple[int, str]]) -> tuple[int, str, str]:
        before = snapshot(tmp)
        code, first = act()
        return code, first, left(before, snapshot(tmp))

    def case(argv: list[str], damage: Callable[[], object] | None = None) -> Callable[[], tuple[int, str, str]]:
        def go() -> tuple[int, str, str]:
            fresh()
            if damage is not None:
                damage()
            return measured(lambda: run(argv))
        return go

    def edit_record(d: Path, drop_hashes: bool = False, **changes) -> None:
        rec = json.loads((d / "record.json").read_text())
        if drop_hashes:
            rec.pop(runs.HASHES)
        for k, v in changes.items():
            rec[k] = v
        (d / "record.json").write_text(json.dumps(rec))

    def set_cell(path: Path, row: int, value: str) -> None:
        lines = path.read_text().split("\n")
        cells = lines[row - 1].split(",")
        cells[1] = value
        lines[row - 1] = ",".join(cells)
        path.write_text("\n".join(lines))

    def full_disk() -> Path | None:
        mnt = tmp / "full"
        if not mnt.is_dir():
            mnt.mkdir()
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                              capture_output=True).returncode != 0:
                return None
        for p in mnt.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while f.write(b"\0" * 4096):
                    pass
            except OSError:
                pass
        return mnt

    def on_full(argv: Callable[[Path], list[str]]) -> Callable[[], tuple[int, str, str]]:
        def go() -> tuple[int, str, str]:
            fresh()
            mnt = full_disk()
            if mnt is None:
                return -1, "not run: cannot mount a tmpfs here", "-"
            return measured(lambda: run(argv(mnt)))
        return go

    def hooked(argv: list[str], sig: str, at: Callable[[list[str]], int],
               what: str) -> Callable[[], tuple[int, str, str]]:
        """`kit ARGV` in a new process that signals itself before the write `at` picks from an unsignalled run."""
        def go() -> tuple[int, str, str]:
            fresh()
            log = tmp / ".calls.json"
            assert run_hooked(argv, 0, sig, log, cwd=tmp).returncode == 0
            n = at([dst for _, dst in json.loads(log.read_text())])
            fresh()

            def act() -> tuple[int, str]:
                proc = run_hooked(argv, n, sig, log, cwd=tmp)
                err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
                return proc.returncode, (err[-1] if err else f"(killed {what})")
            return measured(act)
        return go

    def index(pred: Callable[[str], bool], offset: int = 0) -> Callable[[list[str]], int]:
        return lambda calls: next(i for i, dst in enumerate(calls, 1) if pred(dst)) + offset

    blend = ["blend", "--comp", "titanic", "--data-dir", str(src), a.name, b.name]
    predict = ["predict", "--comp", "titanic", "--data-dir", str(src), "--run", a.name]
    package = ["package", "--comp", "titanic", "--run", a.name, "--owner", "bench"]
    board = ["board", "--comp", "titanic", "--offline", "--data-dir", str(src)]
    blend_paths = ["blend", "--comp", "titanic", "--data-dir", str(src), str(a), str(b)]
    fold1 = a / "models" / "fold-1.pt"
    staged = lambda dst: dst.startswith("runs/titanic/2") and "/" not in dst[len("runs/titanic/"):]  # noqa: E731
    sub_csv = lambda dst: dst.startswith("submissions/") and dst.endswith(".csv")  # noqa: E731
    cases = [
        ("blend", "two runs (hill)", case(blend)),
        ("blend", "--out is a file", case([*blend, "--out", "taken"])),
        ("blend", "--out under /proc", case([*blend, "--out", "/proc/kit"])),
        ("blend", "--out on a full disk", on_full(lambda m: [*blend_paths, "--out", str(m)])),
        ("blend", "--runs on a full disk", on_full(lambda m: [*blend_paths, "--runs", str(m)])),
        ("blend", "oof.csv changed since the run", case(blend, lambda: set_cell(a / "oof.csv", 3, "0.5"))),
        ("blend", "1e9 in test_probs.csv (record without hashes)",
         case(blend, lambda: (edit_record(a, True), set_cell(a / "test_probs.csv", 2, "1e9")))),
        ("blend", "7.5 in oof.csv (record without hashes)",
         case(blend, lambda: (edit_record(a, True), set_cell(a / "oof.csv", 2, "7.5")))),
        ("blend", "-3 in oof.csv (record without hashes)",
         case(blend, lambda: (edit_record(a, True), set_cell(a / "oof.csv", 4, "-3")))),
        ("blend", "record's cv is {\"mean\": \"abc\"}", case(blend, lambda: edit_record(a, cv={"mean": "abc"}))),
        ("blend", "a run trained on another train.csv",
         case(blend, lambda: edit_record(b, inputs_sha256={"train": "0" * 64}))),
        ("blend", "the same with --allow-other-data",
         case([*blend, "--allow-other-data"], lambda: edit_record(b, inputs_sha256={"train": "0" * 64}))),
        ("blend", "SIGKILL before the run folder is renamed into place", hooked(blend, "SIGKILL", index(staged),
                                                                              "before the rename")),
        ("blend", "SIGKILL after the run folder, before the submission",
         hooked(blend, "SIGKILL", index(staged, 1), "before the .csv")),
        ("blend", "SIGKILL after the .csv, before the .json", hooked(blend, "SIGKILL", index(sub_csv, 1),
                                                                     "before the .json")),
        ("blend", "Ctrl-C (SIGINT) after the .csv, before the .json", hooked(blend, "SIGINT", index(sub_csv, 1),
                                                                             "")),
        ("predict", "the run's models", case(predict)),
        ("predict", "--out is a file", case([*predict, "--out", "taken"])),
        ("predict", "--out under /proc", case([*predict, "--out", "/proc/kit"])),
        ("predict", "--out on a full disk", on_full(lambda m: [*predict, "--out", str(m)])),
        ("predict", "fold-1.pt replaced by the run's fold-0.pt",
         case(predict, lambda: shutil.copyfile(a / "models" / "fold-0.pt", fold1))),
        ("predict", "fold-1.pt replaced by a LightGBM run's fold-1.pt",
         case(predict, lambda: shutil.copyfile(g / "models" / "fold-1.pt", fold1))),
        ("predict", "fold-1.pt truncated to 20,000 bytes",
         case(predict, lambda: fold1.write_bytes(fold1.read_bytes()[: fold1.stat().st_size // 2]))),
        ("predict", "record without hashes (an old run)", case(predict, lambda: edit_record(a, True))),
        ("predict", "decoding threshold \"x\" (record without hashes)",
         case(predict, lambda: (edit_record(a, True), (a / "decoding.json").write_text(
             '{"kind": "threshold", "threshold": "x"}')))),
        ("predict", "unloadable fold model (record without hashes)",
         case(predict, lambda: (edit_record(a, True), fold1.write_bytes(b"not a model")))),
        ("predict", "no such run", case([*predict[:-1], "nope"])),
        ("predict", "Ctrl-C (SIGINT) before the .json", hooked(predict, "SIGINT", index(sub_csv, 1), "")),
        ("package", "--out is a file", case([*package, "--out", "taken"])),
        ("package", "--out under /proc", case([*package, "--out", "/proc/kit"])),
        ("package", "--out on a full disk", on_full(lambda m: [*package, "--out", str(m)])),
        ("package", "fold-1.pt truncated to 20,000 bytes",
         case(package, lambda: fold1.write_bytes(fold1.read_bytes()[: fold1.stat().st_size // 2]))),
        ("package", "fold-1.pt replaced by the run's fold-0.pt",
         case(package, lambda: shutil.copyfile(a / "models" / "fold-0.pt", fold1))),
        ("package", "Ctrl-C (SIGINT) before the package is renamed into place",
         hooked(package, "SIGINT", index(lambda dst: dst == f"packages/titanic/{a.name}"), "")),
        ("board", "board.png cannot be written (a folder there)",
         case(board, lambda: (tmp / "runs" / "titanic" / "board.png").mkdir())),
        ("board", "a record whose cv is {\"mean\": \"abc\"}",
         case(board, lambda: edit_record(a, cv={"mean": "abc"}))),
    ]
    if shutil.which("unshare"):
        def kernel_run(damage: Callable[[Path], object]) -> Callable[[], tuple[int, str, str]]:
            def go() -> tuple[int, str, str]:
                fresh()
                assert run(package)[0] == 0
                ds = tmp / "packages" / "titanic" / a.name / "dataset"
                damage(ds)
                return measured(lambda: run(["kernel", "run", "--package", str(ds.parent), "--data-dir", str(src),
                                             "--timeout", "120", "--memory-mb", "16384", "--work-dir", "kr"]))
            return go
        trunc = lambda ds: (ds / "models/fold-1.pt").write_bytes((ds / "models/fold-1.pt").read_bytes()[:-2000])  # noqa: E731
        cases += [("kernel run", "package with a truncated fold model", kernel_run(trunc)),
                  ("kernel run", "package with a fold model missing",
                   kernel_run(lambda ds: (ds / "models/fold-0.pt").unlink()))]
    return cases


def run_folder_rows(src: Path) -> list[str]:
    """The table rows of issue 21's cases, run in a temp folder of their own."""
    tmp, home = Path(tempfile.mkdtemp(prefix="kit-reliability-runs-")), Path.cwd()
    os.chdir(tmp)
    rows = []
    try:
        for cmd, name, go in run_folder_cases(tmp, src):
            code, first, files = go()
            rows.append(f"| `kit {cmd}` | {name} | {code} | `{first.replace('|', '/')[:150]}` | {files} |")
            print(rows[-1], flush=True)
    finally:
        os.chdir(home)
        subprocess.run(["umount", "-l", str(tmp / "full")], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return [r.replace(str(tmp) + "/", "").replace(str(tmp), ".").replace(str(src), "DATA") for r in rows]


def main() -> None:
    """Run every case and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/reliability.md")
    ap.add_argument("--only", choices=["run-folders"], default=None,
                    help="only issue 21's cases (blend, predict, package, board, kernel run)")
    a = ap.parse_args()
    from competitions.titanic.synthetic import generate
    from kit.sandbox import Sandbox, client_env
    from kit.sandbox.data import make_competition

    tmp = Path(tempfile.mkdtemp(prefix="kit-reliability-"))
    os.chdir(tmp)
    src = tmp / "titanic"
    generate(src, n_train=150, n_test=40, seed=0)
    cases: list[tuple[str, str, Callable[[], tuple[int, str]]]] = []
    run_rows = run_folder_rows(src)
    if a.only == "run-folders":
        write(a.out, run_rows, [])
        return

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
            before = snapshot(tmp)
            code, first = go()
            rows.append(f"| `kit {cmd}` | {name} | {code} | `{first.replace('|', '/')[:150]}` | "
                        f"{left(before, snapshot(tmp))} |")
            print(rows[-1], flush=True)
    finally:
        sb.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    write(a.out, run_rows, [r.replace(str(tmp), "TMP") for r in rows])


def write(out: Path, run_rows: list[str], rows: list[str]) -> None:
    """bench/results/reliability.md: the train/tune/Kaggle table (issue 12), then the run-folder one (issue 21)."""
    head = "| command | case | exit | first line | files left |\n|---|---|---|---|---|"
    text = ["# Reliability: bad input and faults", "",
            "`python bench/reliability.py` (real commands, real files, the local Kaggle sandbox with injected "
            "faults; paths shortened to their temp folder). Exit codes: 0 ok, 2 usage, 3 bad data, 4 invalid "
            "submission, 5 an output that cannot be written, 130 interrupted, 20-31 Kaggle (README); -9: killed "
            "by SIGKILL. No case printed the Kaggle key or the database password. \"files left\": the files the "
            "case added or changed under the output folders (submissions, runs, packages, the full disk), by "
            "folder (`<run>`: a run's UTC stamp; a folder starting with `.` is hidden: a half-written run folder "
            "a SIGKILL left, swept by the next run).", ""]
    if rows:
        text += ["## train, tune, download, submit (issue 12)", "", f"{len(rows)} cases.", "", head, *rows, ""]
    text += ["## blend, predict, package, board, kernel run (issue 21)", "",
             "Three tiny Titanic runs on the same folds (two MLPs, one LightGBM), restored before every case; "
             "`DATA` is their data folder. Kills and Ctrl-C are real signals the command's own process sends "
             "itself just before the chosen write (tests/hooked.py); the full disk is a filled 256 kB tmpfs.", "",
             f"{len(run_rows)} cases.", "", head, *run_rows, ""]
    out.write_text("\n".join(text))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
