"""Every command the README shows (its ```bash blocks) and every missing-data hint kit prints works as typed.

Each command runs in a fresh login shell (`bash -lc`) after the README's one-line activation, from a checkout
whose top-level entries link to this repository but whose `data/`, `runs/`, `submissions/` and `sandbox*/` are
temporary: outputs never land in the repository. Data are generated (the local Kaggle sandbox's copies, made
by kit's own generators; never Kaggle's files). Kaggle commands talk to that sandbox, started with the
README's own `kit sandbox` command. Every command is matched by exactly one rule below: run as typed, run in a
reduced form (fewer trials/epochs/folds through the Makefile's `ARGS`, a placeholder filled in), or skipped
with its reason. A command no rule matches fails the test, so a new README command cannot go unchecked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
ACTIVATE = "source .venv/bin/activate"  # the README's set-up line for every new shell
GUARD = "KIT_README_CHECK"  # set in the shells it starts, so `make test ...` run from here does not recurse
OUTPUT_DIRS = {"data", "runs", "submissions", "sandbox", "sandbox-kaggle", ".git", ".pytest_cache", ".ruff_cache"}
COMPETITIONS = ("titanic", "planet", "digit-recognizer", "facial-keypoints")
TINY_VISION = "--folds 2 --set epochs=1 --set size=32"  # image runs: one epoch at 32 px
PLANET_DEMO = f"--n 40 --n-test 12 {TINY_VISION}"

pytestmark = pytest.mark.skipif(bool(os.environ.get(GUARD)), reason="already inside a README check")


# ---- the commands ------------------------------------------------------------------------------------
def readme_commands(text: str) -> list[str]:
    """The shell commands of the ```bash blocks: `#` comments dropped, `\\`-continued lines joined."""
    commands: list[str] = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        pending = ""
        for line in block.splitlines():
            line = pending + line.strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            line = re.sub(r"(^|\s{2,}|\s)#\s.*$", "", line).strip()  # a comment: `#` after a blank, or alone
            if line:
                commands.append(line)
    return commands


@dataclass
class Rule:
    """How one README command is checked: run (maybe reduced) or skipped with a reason."""

    pattern: str  # re.fullmatch against the command as typed
    skip: str = ""  # non-empty: not run, and why
    rewrite: Callable[[str], str] = lambda c: c  # the reduced form (placeholders filled in, fewer trials)
    env: dict[str, str] = field(default_factory=dict)  # e.g. the Makefile's ARGS, to train less
    prep: str = ""  # a shell line run first (the state a user would be in)
    kaggle: bool = False  # talks to Kaggle: gets the sandbox's exports
    timeout: int = 120


def _sub(*pairs: tuple[str, str]) -> Callable[[str], str]:
    """A rewrite replacing each regex by its replacement."""
    def rewrite(cmd: str) -> str:
        for pattern, repl in pairs:
            cmd = re.sub(pattern, repl, cmd)
        return cmd
    return rewrite


TINY_TABULAR = "--folds 2 --set epochs=2"
FEWER_TRIALS = _sub((r"--n-trials \d+", f"--n-trials 1 {TINY_TABULAR}"))


def new_submission(args: str) -> str:
    """A shell line training a titanic submission that differs from the ones sent before (kit refuses to send
    a file twice), as a user would train before submitting; weak models of any seed give the same labels."""
    return f"kit train --comp titanic {args} >/dev/null"


def _isolation_missing() -> str:
    """Why kernels cannot run offline here ("" when `unshare --net` works)."""
    from kit.errors import KitError
    from kit.kernel_runner import network_isolation_command

    try:
        network_isolation_command()
        return ""
    except KitError as e:
        return str(e)


def small_demo_data(comp: str, target: str) -> str:
    """A shell line generating small data where `make <target>-demo` looks first (it then skips generating)."""
    d = f"runs/{target}-demo"
    return f"python -m competitions.{comp}.synthetic {d}/data --n 60 --n-test 20 --solution {d}/solution.csv"

MYCOMP_DATA = "python -m competitions.titanic.synthetic data/mycomp --n 120 --n-test 40"
MYCOMP_ENV = {"KIT_COMPETITIONS_PATH": "gen/comps"}

RULES: list[Rule] = [
    Rule(r"make test", skip="the whole suite, which runs this test"),
    Rule(r"make test ARGS=.*", timeout=300),  # the selected tests (this module skips itself inside: GUARD)
    Rule(r"make lint"),
    Rule(r"make titanic"),
    Rule(r"make (planet|digits|keypoints)( DATA=dir)?( PRESET=cpu)?", env={"ARGS": TINY_VISION},
         rewrite=_sub((r"DATA=dir", "DATA=data/planet"))),
    Rule(r"make planet-demo", env={"ARGS": PLANET_DEMO}),
    Rule(r"make digits-demo", env={"ARGS": TINY_VISION}, prep=small_demo_data("digit-recognizer", "digits")),
    Rule(r"make keypoints-demo", env={"ARGS": TINY_VISION}, prep=small_demo_data("facial-keypoints", "keypoints")),
    Rule(r"make bench-.*", skip="a benchmark: minutes, and it rewrites bench/results/"),
    Rule(r"make demo-code", skip=_isolation_missing(), timeout=300),  # as typed: its own sandbox, ~40 s
    Rule(r"make test-distributed", skip="installs and starts PostgreSQL (apt, root); CI runs it after make test"),
    Rule(r"python -m competitions\.[\w-]+\.synthetic OUT .*",
         rewrite=_sub((r"[\[\]]", ""), (r"OUT", "gen/out"), (r"FILE", "gen/solution.csv"),
                      (r"--n \d+", "--n 60"), (r"--n-test \d+", "--n-test 20"))),
    # `kit init` as typed would write the repository's competitions/mycomp (the checkout links to it): here it
    # writes gen/comps/mycomp, on KIT_COMPETITIONS_PATH, from generated Titanic-format files in data/mycomp
    Rule(r"kit init --comp mycomp --slug kaggle-slug --metric accuracy", prep=MYCOMP_DATA,
         rewrite=lambda c: c + " --to gen/comps --force", env=MYCOMP_ENV),
    Rule(r"kit train --comp mycomp --model lightgbm", env=MYCOMP_ENV,
         prep=f"{MYCOMP_DATA} && kit init --comp mycomp --metric accuracy --to gen/comps --force",
         rewrite=lambda c: c + " --folds 2"),
    Rule(r"kit tune --comp planet --n-trials \d+",
         rewrite=lambda c: FEWER_TRIALS(c) + f" {TINY_VISION}"),
    Rule(r"kit tune --comp titanic --n-trials \d+", rewrite=FEWER_TRIALS),
    Rule(r"kit tune --comp titanic --n-trials \d+ --n-jobs \d+ --storage journal:\S+",
         rewrite=_sub((r"--n-trials \d+", f"--n-trials 2 {TINY_TABULAR}"), (r"--n-jobs \d+", "--n-jobs 2")),
         timeout=180),
    Rule(r"createdb .*", skip="needs a PostgreSQL server on a database host (make test-distributed runs one)"),
    Rule(r"pip install -e .*", skip="reinstalls kit from the package index (make setup installs the postgres "
         "driver already)"),
    Rule(r"kit tune .*--storage postgresql://.*", skip="needs the PostgreSQL server of the lines above "
         "(make test-distributed runs the same command against a throwaway server)"),
    Rule(r"kit download --comp titanic", kaggle=True),
    Rule(r"kit submit --comp titanic -m .*", kaggle=True, prep=new_submission("--folds 2 --set epochs=1")),
    Rule(r"kit submit --comp titanic --file my\.csv", kaggle=True,
         prep="cp data/titanic/gender_submission.csv my.csv"),  # `my.csv`: any valid file of the user's
    Rule(r"kit submissions --comp titanic", kaggle=True),
    Rule(r"make download COMP=titanic; make submit COMP=titanic .*", kaggle=True, prep=new_submission("--folds 3")),
    Rule(r"kit sandbox --root sandbox --generate --config-dir sandbox-kaggle",
         skip="runs until Ctrl-C: started (with --port 0) by the `sandbox` fixture for every Kaggle command here"),
    Rule(r"export KAGGLE_API_ENVIRONMENT=.*",
         skip="the sandbox prints it with its own port; the Kaggle commands here run with what it printed"),
    Rule(r"kit download --comp titanic && kit train --comp titanic && kit submit --comp titanic --wait",
         kaggle=True),  # as typed: 5 folds, 20 epochs (another file than the 2- and 3-fold ones above)
]


def rule_for(cmd: str) -> Rule:
    """The one rule matching `cmd` (a test failure when none or several do)."""
    found = [r for r in RULES if re.fullmatch(r.pattern, cmd)]
    assert len(found) == 1, f"README command {cmd!r} matches {len(found)} rules in tests/test_readme.py: " \
                            "add exactly one (run as typed, reduced, or skipped with a reason)"
    return found[0]


# ---- the checkout and the sandbox --------------------------------------------------------------------
def shell_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A new user's environment: no venv on PATH, no Kaggle credentials or proxies, the recursion guard."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAGGLE_", "VIRTUAL_ENV", "PYTEST_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"))
           and k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if Path(p).resolve() != (REPO / ".venv" / "bin").resolve())
    env.update({GUARD: "1", "KAGGLE_CONFIG_DIR": str(home / "no-kaggle-credentials"), **(extra or {})})
    return env


def in_shell(cmd: str, cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    """`cmd` as typed in a new login shell after the README's activation."""
    return subprocess.run(["bash", "-lc", f"{ACTIVATE} && {cmd}"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose entries link to the repository's (code, Makefile, .venv), with its own empty outputs."""
    d = tmp_path_factory.mktemp("checkout")
    for entry in REPO.iterdir():
        if entry.name not in OUTPUT_DIRS:
            (d / entry.name).symlink_to(entry)
    (d / "gen").mkdir()
    return d


@dataclass
class Sandbox:
    """The README's `kit sandbox`, running in the checkout; `env`: what it printed to export."""

    proc: subprocess.Popen
    env: dict[str, str]


@pytest.fixture(scope="module")
def sandbox(checkout: Path) -> Iterator[Sandbox]:
    """The README's sandbox command (any free port) in the background; its competitions become data/<comp>/."""
    cmd = next(c for c in readme_commands(README.read_text()) if c.startswith("kit sandbox "))
    proc = subprocess.Popen(["bash", "-lc", f"{ACTIVATE} && exec {cmd} --port 0"], cwd=checkout,
                            env=shell_env(checkout), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, exports = [], {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip().startswith("export "):
            exports = dict(kv.split("=", 1) for kv in line.split()[1:])
            break
    if not exports:
        proc.kill()
        pytest.fail("kit sandbox printed no export line:\n" + "".join(lines))
    exports["KAGGLE_CONFIG_DIR"] = str(checkout / exports["KAGGLE_CONFIG_DIR"])
    from kit import registry

    for name in COMPETITIONS:  # the sandbox's generated copies are the checkout's data (never Kaggle's)
        src, dst = checkout / "sandbox" / registry.get(name).slug, checkout / "data" / name
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("solution.csv", ".*"))
    yield Sandbox(proc, exports)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def check(result: subprocess.CompletedProcess, cmd: str, expect: int = 0) -> None:
    """Fail on `command not found` or an unexpected exit code, showing the output's tail."""
    out = (result.stdout or "") + (result.stderr or "")
    assert "command not found" not in out, f"{cmd!r}:\n{out[-3000:]}"
    assert result.returncode == expect, f"{cmd!r} exited {result.returncode}:\n{out[-3000:]}"


# ---- the tests -----------------------------------------------------------------------------------------
COMMANDS = readme_commands(README.read_text())


def test_readme_has_commands_and_the_activation_line():
    """The README shows its commands and the one-line activation right under the two commands."""
    text = README.read_text()
    assert len(COMMANDS) > 20
    two = text.index("## Two commands")
    assert ACTIVATE in text[two:text.index("\n## ", two + 5)]


@pytest.mark.parametrize("i", range(len(COMMANDS)), ids=[f"readme-{i:02d}" for i in range(len(COMMANDS))])
def test_readme_command_works_as_typed(i: int, checkout: Path, sandbox: Sandbox):
    """README command `i`, run as typed (or reduced, or skipped with its reason) in a fresh shell."""
    cmd = COMMANDS[i]
    rule = rule_for(cmd)
    if rule.skip:
        pytest.skip(f"{cmd}: {rule.skip}")
    env = shell_env(checkout, {**(sandbox.env if rule.kaggle else {}), **rule.env})
    if rule.prep:
        check(in_shell(rule.prep, checkout, env, rule.timeout), rule.prep)
    typed = rule.rewrite(cmd)
    check(in_shell(typed, checkout, env, rule.timeout), typed)


def test_missing_data_hints_are_runnable(checkout: Path, sandbox: Sandbox):
    """For every competition, the command kit's missing-data error suggests runs as printed (on the sandbox)."""
    env = shell_env(checkout, sandbox.env)
    for name in COMPETITIONS:
        missing = f"gen/missing-{name}"
        r = in_shell(f"kit train --comp {name} --data-dir {missing}", checkout, env, 60)
        assert r.returncode != 0 and r.stderr.startswith("error: "), r.stderr
        hints = re.findall(r"`(kit [^`]+)`", r.stderr)
        assert hints, f"no runnable hint in: {r.stderr}"
        for hint in hints:
            check(in_shell(hint, checkout, env, 120), hint)
        assert any((checkout / missing).iterdir()), f"{hint} downloaded nothing into {missing}"
