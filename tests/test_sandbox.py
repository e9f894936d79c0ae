"""The local Kaggle sandbox: scoring as Kaggle scores, files and pagination through the official client,
resumable downloads, misbehaviour specs and its command line."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.metrics import accuracy_score, fbeta_score
from sklearn.preprocessing import MultiLabelBinarizer

from kit import registry
from kit.errors import KitError
from kit.kaggle.client import Kaggle
from kit.kaggle.download import download
from kit.sandbox import Sandbox, client_env
from kit.sandbox.competitions import score_submission
from kit.sandbox.data import META_FILE, CompetitionMeta, generate_all, make_competition, sandbox_competitions
from kit.sandbox.server import Fault

REPO = Path(__file__).resolve().parents[1]
TITANIC_SLUG = registry.get("titanic").slug
PLANET_SLUG = registry.get("planet").slug
DIRECT = requests.Session()  # straight to the sandbox, whatever proxies the machine has
DIRECT.trust_env = False


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("sbroot")
    make_competition(r, "titanic", seed=1, n_train=120, n_test=50)
    make_competition(r, "planet", seed=1, n_train=40, n_test=16, size=8)
    return r


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def test_titanic_scored_by_accuracy_on_public_and_private_rows(root: Path) -> None:
    d = root / TITANIC_SLUG
    meta = CompetitionMeta.load(d)
    sol = pd.read_csv(d / "solution.csv")
    assert set(sol["Usage"]) == {"Public", "Private"}
    perfect = sol[["PassengerId", "Survived"]]
    assert score_submission(d, meta, _csv(perfect)) == (1.0, 1.0, None)
    pred = perfect.copy()
    pred.loc[:9, "Survived"] = 1 - pred.loc[:9, "Survived"]
    public, private, err = score_submission(d, meta, _csv(pred.sample(frac=1, random_state=0)))  # any row order
    pub = sol["Usage"] == "Public"
    assert err is None
    assert public == pytest.approx(accuracy_score(sol.loc[pub, "Survived"], pred.loc[pub, "Survived"]))
    assert private == pytest.approx(accuracy_score(sol.loc[~pub, "Survived"], pred.loc[~pub, "Survived"]))
    assert public < 1.0 or private < 1.0


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda df: df.drop(columns="Survived"), "missing required column"),
        (lambda df: df.iloc[:-1], "must have 50 rows"),
        (lambda df: df.assign(PassengerId=df["PassengerId"].where(df.index != 1, df["PassengerId"][0])), "duplicate"),
        (lambda df: df.assign(PassengerId=df["PassengerId"] + 10_000), "missing PassengerId"),
    ],
    ids=["column", "rows", "duplicate", "ids"],
)
def test_titanic_bad_files_get_kaggle_style_errors(root: Path, mutate, words) -> None:
    d = root / TITANIC_SLUG
    sol = pd.read_csv(d / "solution.csv")[["PassengerId", "Survived"]]
    public, private, err = score_submission(d, CompetitionMeta.load(d), _csv(mutate(sol)))
    assert public is None and private is None and words in err


def test_an_empty_or_non_numeric_prediction_is_an_error_not_a_crash(root: Path) -> None:
    d = root / TITANIC_SLUG
    sol = pd.read_csv(d / "solution.csv")[["PassengerId", "Survived"]].astype({"Survived": object})
    sol.loc[3, "Survived"] = ""
    public, private, err = score_submission(d, CompetitionMeta.load(d), _csv(sol))
    assert public is None and private is None and "empty or non-numeric Survived" in err
    sol.loc[3, "Survived"] = "yes"
    assert "non-numeric" in score_submission(d, CompetitionMeta.load(d), _csv(sol))[2]


def test_competitions_join_through_their_synthetic_module(root: Path, tmp_path: Path) -> None:
    found = {e.name: e for e in sandbox_competitions()}
    assert {"titanic", "planet"} <= set(found)
    for name in found:
        assert importlib.util.find_spec(f"competitions.{name}.synthetic") is not None
    assert found["titanic"].demo_train_args and found["planet"].demo_train_args is None
    assert found["planet"].sandbox_kwargs["n_train"] <= 64
    meta = json.loads((root / PLANET_SLUG / META_FILE).read_text())
    planet = registry.get("planet")
    assert meta == {"competition": "planet", "slug": planet.slug, "title": getattr(planet, "title", "") or "planet",
                    "id_col": planet.id_col, "target_cols": ["tags"], "code": False,
                    "kernel_runtime_s": 9 * 3600.0, "kernel_memory_mb": 30 * 1024}
    assert generate_all(root, names=["titanic", "planet"]) == []  # already there: nothing regenerated
    with pytest.raises(KitError, match="unknown competition 'nope'"):
        sandbox_competitions(["nope"])


def test_metadata_without_a_competition_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / META_FILE).write_text(json.dumps({"slug": "titanic", "title": "T", "metric": "accuracy",
                                                  "id_col": "PassengerId", "target_cols": ["Survived"]}))
    with pytest.raises(KitError, match="older kit") as e:
        CompetitionMeta.load(tmp_path)
    assert "\n" not in str(e.value)
    root = tmp_path / "root"
    (root / "titanic").mkdir(parents=True)
    (tmp_path / META_FILE).rename(root / "titanic" / META_FILE)
    run = subprocess.run([sys.executable, "-m", "kit", "sandbox", "--root", str(root), "--port", "0"],
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert "older kit" in run.stderr


def test_kit_sandbox_and_kaggle_name_no_competition() -> None:
    for f in [*(REPO / "kit" / "sandbox").glob("*.py"), *(REPO / "kit" / "kaggle").glob("*.py"),
              *(REPO / "kit" / "commands").glob("[dsk]*.py")]:
        text = f.read_text()
        assert not re.search(r"^\s*(from|import) competitions", text, re.M), f
        assert "kit.commands" not in text or f.parent.name == "commands" or f.name == "__main__.py", f
        if f.parent.name == "sandbox":
            assert not re.search(r"titanic|planet", text, re.I), f


def test_planet_scored_by_mean_f2_like_sklearn(root: Path) -> None:
    d = root / PLANET_SLUG
    meta = CompetitionMeta.load(d)
    sol = pd.read_csv(d / "solution.csv", keep_default_na=False)
    assert score_submission(d, meta, _csv(sol[["image_name", "tags"]]))[:2] == (1.0, 1.0)
    rng = np.random.default_rng(0)
    pred = sol[["image_name", "tags"]].copy()
    pred["tags"] = [t if rng.random() < 0.5 else "primary clear water" for t in pred["tags"]]
    public, private, err = score_submission(d, meta, _csv(pred))
    mlb = MultiLabelBinarizer().fit([t.split() for t in pd.concat([sol["tags"], pred["tags"]])])
    for part, got in (("Public", public), ("Private", private)):
        rows = (sol["Usage"] == part).to_numpy()
        want = fbeta_score(mlb.transform(sol.loc[rows, "tags"].str.split()),
                           mlb.transform(pred.loc[rows, "tags"].str.split()), beta=2, average="samples")
        assert got == pytest.approx(want)
    assert err is None and public < 1.0


@pytest.fixture
def served(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sb = Sandbox(root, key="sandbox-test-key").start()
    cfg = tmp_path / "cfg"
    sb.write_credentials(cfg)
    for k in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(k, raising=False)
    for k, v in {**client_env(sb.url, cfg), "HOME": str(tmp_path / "home"), "KIT_KAGGLE_RETRIES": "2",
                 "KIT_KAGGLE_BACKOFF_S": "0.01"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    yield sb
    sb.stop()


def test_planet_through_the_official_client(served: Sandbox, root: Path, tmp_path: Path) -> None:
    d = root / PLANET_SLUG
    public = sorted(p.relative_to(d).as_posix() for p in d.rglob("*")
                    if p.is_file() and p.name not in ("solution.csv", ".competition.json"))
    kg = Kaggle(PLANET_SLUG)
    listed = kg.list_files(PLANET_SLUG)
    assert sorted(f["name"] for f in listed) == public and len(public) > 20  # more than one page of 20
    comp = SimpleNamespace(slug=PLANET_SLUG, name="planet", train_file="train_v2.csv", test_file="test-jpg",
                           sample_file="sample_submission_v2.csv")
    got = download(comp, tmp_path / "data" / "planet", quiet=True)
    assert len(got.files) == len(public) and not got.up_to_date and got.missing == []
    for rel in public:
        assert (tmp_path / "data" / "planet" / rel).read_bytes() == (d / rel).read_bytes()
    assert not (tmp_path / "data" / "planet" / "solution.csv").exists()

    # a planet submission goes through the client's upload and is scored with mean F2
    sample = tmp_path / "data" / "planet" / "sample_submission_v2.csv"
    ref = kg.submit(sample, "sample", PLANET_SLUG)
    (sub,) = kg.submissions(PLANET_SLUG)
    want = score_submission(d, CompetitionMeta.load(d), sample.read_bytes())[0]
    assert sub.ref == ref and sub.status == "complete" and sub.public_score == pytest.approx(want, abs=1e-5)
    lim = kg.limits(PLANET_SLUG)
    assert (lim["today"], lim["remaining"]) == (1, served.daily_limit - 1)


def test_unknown_competition_is_404_and_zip_supports_ranges(served: Sandbox) -> None:
    from kit.kaggle.errors import NotFound

    with pytest.raises(NotFound, match="'no-such-comp' not found"):
        Kaggle("no-such-comp").list_files("no-such-comp")
    url = f"{served.url}/_blobs/competitions/{TITANIC_SLUG}/{TITANIC_SLUG}.zip"
    full = DIRECT.get(url, timeout=5)
    part = DIRECT.get(url, headers={"Range": "bytes=100-"}, timeout=5)
    assert full.status_code == 200 and part.status_code == 206 and part.content == full.content[100:]
    assert full.headers["Accept-Ranges"] == "bytes" and "ETag" in full.headers
    bad = DIRECT.post(f"{served.url}/api/v1/competitions.CompetitionApiService/ListDataFiles",
                        json={"competitionName": TITANIC_SLUG}, auth=("sandbox", "wrong"), timeout=5)
    assert bad.status_code == 401 and bad.json()["code"] == 401


def test_fault_specs() -> None:
    assert Fault.parse("CreateSubmission:500x2") == Fault(match="CreateSubmission", status=500, times=2)
    assert Fault.parse("*:drop") == Fault(match="*", drop=True)
    assert Fault.parse("ListSubmissions:delay=1.5x3") == Fault(match="ListSubmissions", delay=1.5, times=3)
    with pytest.raises(KitError, match="--fault"):
        Fault.parse("nonsense")


def test_command_line_serves_and_refuses_a_busy_port(root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port_file = tmp_path / "port"
    cmd = [sys.executable, "-m", "kit.sandbox", "--root", str(root), "--config-dir", str(tmp_path / "cfg")]
    proc = subprocess.Popen([*cmd, "--port", "0", "--port-file", str(port_file)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(port_file.read_text())
        state = DIRECT.get(f"http://127.0.0.1:{port}/_sandbox/state", timeout=5)
        assert state.json()["submissions"] == []
        busy = subprocess.run([sys.executable, "-m", "kit", "sandbox", *cmd[3:], "--port", str(port)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert busy.returncode == 5 and "cannot listen" in busy.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "sandbox stopped" in out
    key = json.loads((tmp_path / "cfg" / "kaggle.json").read_text())["key"]
    assert key not in out and "KAGGLE_API_ENVIRONMENT=TEST" in out
    assert (tmp_path / "cfg" / "kaggle.json").stat().st_mode & 0o077 == 0
    with socket.socket() as s:  # nothing listens there any more (REUSEADDR: ignore TIME_WAIT leftovers)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


@pytest.mark.parametrize("name, perfect, worse", [("digit-recognizer", 1.0, lambda v: (v + 1) % 10),
                                                  ("facial-keypoints", 0.0, lambda v: v + 2.0)])
def test_image_competitions_scored_by_their_metric(tmp_path: Path, name, perfect, worse) -> None:
    """Digits by accuracy of labels, keypoints by RMSE of the lookup rows' locations: the competition's Metric."""
    d = make_competition(tmp_path, name, seed=2, n_train=30, n_test=10)
    meta = CompetitionMeta.load(d)
    sol = pd.read_csv(d / "solution.csv")
    cols = [meta.id_col, *meta.target_cols]
    assert score_submission(d, meta, _csv(sol[cols]))[:2] == (perfect, perfect)
    bad = sol[cols].copy()
    bad[meta.target_cols[0]] = worse(bad[meta.target_cols[0]])
    public, private, err = score_submission(d, meta, _csv(bad))
    assert err is None and public != perfect
    if name == "facial-keypoints":
        assert public == pytest.approx(2.0) and private == pytest.approx(2.0)  # RMSE in pixels
