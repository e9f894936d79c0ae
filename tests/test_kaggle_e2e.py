"""kit download / train / submit / submissions end to end through the official kaggle client, against the
local Kaggle sandbox started here on a free loopback port; every error path is produced by the sandbox."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
import requests

from kit import cli as kit_cli
from kit import registry
from kit.kaggle.errors import (
    EXIT_DUPLICATE,
    EXIT_FORBIDDEN,
    EXIT_LIMIT_REACHED,
    EXIT_NO_CREDENTIALS,
    EXIT_NOT_FOUND,
    EXIT_OFFLINE,
    EXIT_RATE_LIMITED,
    EXIT_SERVER_ERROR,
    EXIT_UNAUTHORIZED,
)
from kit.kaggle.ledger import Ledger
from kit.sandbox import Sandbox, client_env
from kit.sandbox.data import PRIVATE_FILES, make_competition

SECRET = "kitSECRETkey0123456789abcdef"
REPO = Path(__file__).resolve().parents[1]
PLANET_SLUG = registry.get("planet").slug
DIRECT = requests.Session()  # test-side control calls: straight to the sandbox, whatever proxies the machine has
DIRECT.trust_env = False


@pytest.fixture(scope="module")
def sandbox_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox folder with a small generated titanic competition."""
    root = tmp_path_factory.mktemp("sandbox")
    make_competition(root, "titanic", seed=3, n_train=160, n_test=60)
    return root


@pytest.fixture
def sandbox(sandbox_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh sandbox; the environment points kit at it; cwd is an empty work folder."""
    sb = serve(sandbox_root, tmp_path, monkeypatch)
    yield sb
    sb.stop()


def serve(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Start a sandbox serving `root`, point kit at it and move into an empty work folder."""
    sb = Sandbox(root, username="tester", key=SECRET, token="tok-" + SECRET, daily_limit=5).start()
    cfg = tmp_path / "kaggle"
    sb.write_credentials(cfg)
    for k in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "VERBOSE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in {**client_env(sb.url, cfg), "HOME": str(tmp_path / "home"), "KIT_KAGGLE_RETRIES": "3",
                 "KIT_KAGGLE_BACKOFF_S": "0.01", "KIT_KAGGLE_TIMEOUT_S": "5", "KIT_KAGGLE_POLL_S": "0.05"}.items():
        monkeypatch.setenv(k, v)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return sb


def fault(sb: Sandbox, **spec) -> None:
    """Tell the sandbox to misbehave, over HTTP like any client."""
    DIRECT.post(f"{sb.url}/_sandbox/faults", json=spec, timeout=5).raise_for_status()


def calls(sb: Sandbox, route: str) -> int:
    return sum(1 for _, r, _ in sb.state()["requests"] if r == route)


def cli(command: str, *argv: str) -> int:
    """`kit <command> ...` in this process, through the console script's dispatcher."""
    return kit_cli.main([command, *argv])


def assert_no_secret(capsys, *paths: Path) -> str:
    """Captured output so far, after checking it and the given files/folders never hold the key."""
    out = capsys.readouterr()
    text = out.out + out.err
    assert SECRET not in text
    for p in paths:
        for f in ([p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()]):
            if f.name != "kaggle.json":
                assert SECRET.encode() not in f.read_bytes(), f
    return text


def get_data(sb: Sandbox) -> Path:
    assert cli("download", "--comp", "titanic", "--quiet") == 0
    return Path("data/titanic")


def sample_copy(name: str = "g.csv", flip: int = 0) -> Path:
    """A valid titanic submission (the sample, optionally with `flip` predictions changed)."""
    df = pd.read_csv("data/titanic/gender_submission.csv")
    df.loc[: flip - 1, "Survived"] = 1 - df.loc[: flip - 1, "Survived"]
    df.to_csv(name, index=False)
    return Path(name)


def test_download_train_submit_wait_list(sandbox: Sandbox, capsys) -> None:
    data = get_data(sandbox)
    assert sorted(p.name for p in data.iterdir()) == [".kit-download.json", "gender_submission.csv", "test.csv",
                                                      "train.csv"]
    assert not (data / "solution.csv").exists()
    assert (data / "train.csv").read_bytes() == (sandbox.root / "titanic" / "train.csv").read_bytes()
    assert cli("download", "--comp", "titanic") == 0  # unchanged: listed, not downloaded again
    assert calls(sandbox, "download") == 1 and calls(sandbox, "ListDataFiles") == 2
    assert "up to date" in capsys.readouterr().out

    assert cli("train", "--comp", "titanic", "--data-dir", str(data), "--folds", "2", "--set", "epochs=1",
               "--quiet") == 0
    capsys.readouterr()
    assert cli("submit", "--comp", "titanic", "--wait", "-m", "tiny e2e") == 0
    out = capsys.readouterr().out
    sub = sandbox.submissions[0]
    assert f"public score: {sub.public_score:.5f}" in out
    assert sub.description == "tiny e2e" and sub.file_name.endswith(".csv")

    assert cli("submissions", "--comp", "titanic") == 0
    listing = capsys.readouterr().out
    assert f"{sub.ref}*" in listing and f"{sub.public_score:.5f}" in listing and "complete" in listing
    (entry,) = Ledger(Path("submissions/ledger.jsonl")).entries("titanic")
    assert (entry.ref, entry.state, entry.status) == (sub.ref, "submitted", "complete")
    assert entry.public_score == pytest.approx(sub.public_score, abs=1e-5)
    assert entry.message == "tiny e2e" and len(entry.sha256) == 64

    # the same file again: refused without --force, nothing sent
    uploads = calls(sandbox, "upload")
    assert cli("submit", "--comp", "titanic") == EXIT_DUPLICATE
    assert "--force" in capsys.readouterr().err and calls(sandbox, "upload") == uploads
    assert cli("submit", "--comp", "titanic", "--force", "-m", "") == 0  # an empty message is allowed
    assert len(sandbox.submissions) == 2 and sandbox.submissions[1].description == ""
    assert_no_secret(capsys, Path("."))


def test_bearer_token_from_env(sandbox: Sandbox, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-" + SECRET)
    assert cli("submissions", "--comp", "titanic") == 0
    assert "no submissions" in capsys.readouterr().out
    assert calls(sandbox, "IntrospectToken") >= 1
    monkeypatch.setenv("KAGGLE_API_TOKEN", "revoked-token-000")
    assert cli("submissions", "--comp", "titanic") == EXIT_UNAUTHORIZED
    err = capsys.readouterr().err
    assert "rejected the API token" in err and "revoked-token-000" not in err
    assert_no_secret(capsys, Path("."))


def test_invalid_submission_refused_before_sending(sandbox: Sandbox, capsys) -> None:
    get_data(sandbox)
    n = len(sandbox.state()["requests"])
    bad = pd.read_csv("data/titanic/gender_submission.csv").iloc[:-1]
    bad.to_csv("short.csv", index=False)
    assert cli("submit", "--comp", "titanic", "--file", "short.csv") == 4
    err = capsys.readouterr().err
    assert err.startswith("error: short.csv") and len(err.strip().splitlines()) == 1
    Path("notcsv.txt").write_text("a,b\n")
    assert cli("submit", "--comp", "titanic", "--file", "notcsv.txt") == 4
    assert cli("submit", "--comp", "titanic", "--file", "missing.csv") == 4
    assert "missing.csv: file not found" in capsys.readouterr().err
    assert cli("submit", "--comp", "nope", "--file", "short.csv") == 2
    assert "unknown competition 'nope'" in capsys.readouterr().err
    assert len(sandbox.state()["requests"]) == n  # nothing sent
    assert not Path("submissions/ledger.jsonl").exists()


@pytest.mark.parametrize(
    ("spec", "code", "words"),
    [
        ({"match": "StartSubmissionUpload", "status": 403}, EXIT_FORBIDDEN, "accept the competition's rules"),
        ({"match": "GetSubmissionLimits", "status": 404}, EXIT_NOT_FOUND, "not found on Kaggle"),
        ({"match": "GetSubmissionLimits", "status": 429, "times": -1}, EXIT_RATE_LIMITED, "rate limiting"),
        ({"match": "CreateSubmission", "status": 503, "times": -1}, EXIT_SERVER_ERROR, "HTTP 503"),
        ({"match": "upload", "status": 500, "times": -1}, EXIT_SERVER_ERROR, "did not take the upload"),
        ({"match": "StartSubmissionUpload", "drop": True, "times": -1}, EXIT_OFFLINE, "connection dropped"),
        ({"match": "GetSubmissionLimits", "delay": 1.5, "times": -1}, EXIT_OFFLINE, "no answer from Kaggle"),
    ],
    ids=["403", "404", "429", "503", "upload", "drop", "timeout"],
)
def test_submit_errors(sandbox: Sandbox, capsys, monkeypatch, spec, code, words) -> None:
    get_data(sandbox)
    f = sample_copy()
    if spec.get("delay"):
        monkeypatch.setenv("KIT_KAGGLE_TIMEOUT_S", "0.5")
    fault(sandbox, **spec)
    assert cli("submit", "--comp", "titanic", "--file", str(f)) == code
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and words in last
    if spec.get("times") == -1:  # bounded retry: exactly KIT_KAGGLE_RETRIES attempts
        assert calls(sandbox, spec["match"]) == 3
        assert err.count("retry ") == 2
    assert sandbox.submissions == []
    DIRECT.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    # the ledger never blocks a file Kaggle did not get: the next submit reconciles and goes through
    assert cli("submit", "--comp", "titanic", "--file", str(f)) == 0
    states = sorted(e.state for e in Ledger(Path("submissions/ledger.jsonl")).entries("titanic"))
    assert states.count("submitted") == 1 and len(sandbox.submissions) == 1
    assert set(states) <= {"submitted", "failed", "abandoned"}
    assert_no_secret(capsys, Path("."))


def test_retry_after_server_error_does_not_submit_twice(sandbox: Sandbox, capsys) -> None:
    get_data(sandbox)
    f = sample_copy()
    fault(sandbox, match="CreateSubmission", status=500, after=True)  # Kaggle made it, then answered 500
    assert cli("submit", "--comp", "titanic", "--file", str(f), "--wait") == 0
    assert len(sandbox.submissions) == 1
    (entry,) = Ledger(Path("submissions/ledger.jsonl")).entries("titanic")
    assert entry.ref == sandbox.submissions[0].ref and entry.status == "complete"


def test_transient_429_is_retried(sandbox: Sandbox, capsys) -> None:
    get_data(sandbox)
    fault(sandbox, match="ListSubmissions", status=429, retry_after=0)
    assert cli("submissions", "--comp", "titanic") == 0
    assert calls(sandbox, "ListSubmissions") == 2


def test_unauthorized_and_no_credentials(sandbox: Sandbox, capsys, monkeypatch, tmp_path) -> None:
    cfg = tmp_path / "bad"
    cfg.mkdir()
    (cfg / "kaggle.json").write_text(json.dumps({"username": "tester", "key": "stale-key-000"}))
    (cfg / "kaggle.json").chmod(0o600)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(cfg))
    assert cli("download", "--comp", "titanic") == EXIT_UNAUTHORIZED
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "stale-key-000" not in err
    assert not Path("data").exists() or not any(Path("data").rglob("*"))

    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "none"))
    n = len(sandbox.state()["requests"])
    assert cli("submissions", "--comp", "titanic") == EXIT_NO_CREDENTIALS
    err = capsys.readouterr().err
    assert "no Kaggle credentials" in err and "KAGGLE_USERNAME" in err and "kaggle.json" in err
    assert len(sandbox.state()["requests"]) == n


def test_offline_download_leaves_no_partial_files(sandbox: Sandbox, capsys, monkeypatch) -> None:
    get_data(sandbox)
    before = {p: p.read_bytes() for p in Path("data").rglob("*") if p.is_file()}
    fault(sandbox, match="download", status=500, times=-1)  # the zip itself fails
    assert cli("download", "--comp", "titanic", "--force", "--quiet") == EXIT_SERVER_ERROR
    assert {p: p.read_bytes() for p in Path("data").rglob("*") if p.is_file()} == before  # no staging left
    DIRECT.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    stale = Path("data/.titanic.download-killed/zip/titanic.zip")  # what a killed download leaves
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"PK partial")
    os.utime(stale, (0, 0))
    assert cli("download", "--comp", "titanic", "--force", "--quiet") == 0
    assert sorted(p.name for p in Path("data").iterdir()) == ["titanic"]
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert cli("download", "--comp", "titanic", "--force") == EXIT_OFFLINE
    assert "connection refused" in capsys.readouterr().err


def test_daily_limit_checked_before_upload(sandbox: Sandbox, capsys) -> None:
    sandbox.daily_limit = 1
    get_data(sandbox)
    assert cli("submit", "--comp", "titanic", "--file", str(sample_copy("a.csv"))) == 0
    assert "0 submission(s) left today" in capsys.readouterr().out
    uploads = calls(sandbox, "StartSubmissionUpload")
    assert cli("submit", "--comp", "titanic", "--file", str(sample_copy("b.csv", flip=3))) == EXIT_LIMIT_REACHED
    assert "limit reached" in capsys.readouterr().err
    assert calls(sandbox, "StartSubmissionUpload") == uploads
    assert [e.state for e in Ledger(Path("submissions/ledger.jsonl")).entries("titanic")] == ["submitted"]


def test_killed_submit_is_reconciled(sandbox: Sandbox, capsys) -> None:
    get_data(sandbox)
    f = sample_copy("k.csv")
    # Kaggle creates the submission, then the answer is held back while the submit process is killed
    fault(sandbox, match="CreateSubmission", after=True, delay=60)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "kit", "submit", "--comp", "titanic", "--file", str(f),
                             "-m", "killed"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not sandbox.submissions and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(sandbox.submissions) == 1
    ledger = Ledger(Path("submissions/ledger.jsonl"))
    assert [e.state for e in ledger.entries()] == ["pending"]
    DIRECT.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    assert cli("submissions", "--comp", "titanic") == 0
    (entry,) = ledger.entries()
    assert (entry.state, entry.ref, entry.reconciled) == ("submitted", sandbox.submissions[0].ref, True)
    assert entry.status == "complete"
    assert cli("submit", "--comp", "titanic", "--file", str(f), "-m", "killed") == EXIT_DUPLICATE
    assert len(sandbox.submissions) == 1


# ---- Planet as Kaggle ships it: image folders as .tar.7z (unpacked with py7zr), train_v2.csv as .csv.zip ----


def tar_7z(dest: Path, members: dict[str, bytes]) -> Path:
    """`dest` = a 7z (py7zr) holding one tar of `members`, as Kaggle packs Planet's image folders."""
    import py7zr

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with py7zr.SevenZipFile(dest, "w") as sz:
        sz.writestr(buf.getvalue(), dest.name.removesuffix(".7z"))
    return dest


def evil_7z(dest: Path, name: str) -> Path:
    """A 7z whose member is called `name` (e.g. '../x'), which py7zr refuses to write: a same-length safe name is
    written with a plain header, then renamed in the bytes and the header CRCs recomputed."""
    import py7zr

    safe = "x" * (len(name) - len(name.lstrip("./"))) + name.lstrip("./")
    with py7zr.SevenZipFile(dest, "w") as sz:
        sz.encoded_header_mode = False
        sz.writestr(b"payload", safe)
    b = bytearray(dest.read_bytes())
    assert b.count(safe.encode("utf-16-le")) == 1
    b = b.replace(safe.encode("utf-16-le"), name.encode("utf-16-le"))
    offset, size = struct.unpack_from("<QQ", b, 12)  # start header: next header offset and size, then its CRC
    struct.pack_into("<I", b, 28, zlib.crc32(b[32 + offset:32 + offset + size]))
    struct.pack_into("<I", b, 8, zlib.crc32(b[12:32]))
    dest.write_bytes(b)
    return dest


@pytest.fixture(scope="module")
def planet_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated Planet competition with plain folders (what data/planet/ must look like after download)."""
    return make_competition(tmp_path_factory.mktemp("planet-src"), "planet", seed=5, n_train=6, n_test=4, size=8)


@pytest.fixture
def planet_sb(planet_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A sandbox serving `planet_src` packed as Kaggle ships it."""
    comp = tmp_path / "sbroot" / PLANET_SLUG
    shutil.copytree(planet_src, comp)
    for folder in ("train-jpg", "test-jpg", "test-jpg-additional"):
        tar_7z(comp / f"{folder}.tar.7z", {p.relative_to(comp).as_posix(): p.read_bytes()
                                           for p in sorted((comp / folder).glob("*.jpg"))})
        shutil.rmtree(comp / folder)
    with zipfile.ZipFile(comp / "train_v2.csv.zip", "w") as zf:
        zf.write(comp / "train_v2.csv", "train_v2.csv")
    (comp / "train_v2.csv").unlink()
    sb = serve(comp.parent, tmp_path, monkeypatch)
    yield sb
    sb.stop()


def tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_planet_tar_7z_unpacked_into_the_layout_planet_loads(planet_sb: Sandbox, planet_src: Path, capsys) -> None:
    from competitions.planet import COMPETITION

    assert cli("download", "--comp", "planet", "--quiet") == 0
    data = Path("data/planet")
    got = tree(data)
    manifest = json.loads(got.pop(".kit-download.json"))
    want = {k: v for k, v in tree(planet_src).items() if k not in PRIVATE_FILES}
    assert got == want  # jpgs byte for byte in train-jpg/ test-jpg/ test-jpg-additional/; no archive left
    assert len([k for k in got if k.startswith("train-jpg/") and k.endswith(".jpg")]) == 6
    assert sorted(manifest["files"]) == sorted(want)
    assert [p.name for p in Path("data").iterdir()] == ["planet"]  # no staging folder left
    loaded = COMPETITION.load(data)
    assert len(loaded.train) == 6 and len(loaded.test) == 4
    assert loaded.bad_train == {} and loaded.bad_test == {}

    assert cli("download", "--comp", "planet", "--quiet") == 0  # unchanged on Kaggle: nothing downloaded
    assert calls(planet_sb, "download") == 1 and "up to date" in capsys.readouterr().out
    (data / "train-jpg" / "train_0.jpg").unlink()  # an unpacked file went missing: downloaded again
    assert cli("download", "--comp", "planet", "--quiet") == 0
    again = tree(data)
    assert calls(planet_sb, "download") == 2 and again.pop(".kit-download.json") and again == got


def test_corrupt_7z_fails_in_one_line_and_writes_nothing(planet_sb: Sandbox, capsys) -> None:
    archive = planet_sb.root / PLANET_SLUG / "train-jpg.tar.7z"
    good = archive.read_bytes()
    bad = bytearray(good)
    bad[40:48] = bytes(8)  # inside the compressed stream (the 7z start header is the first 32 bytes)
    archive.write_bytes(bytes(bad))
    assert cli("download", "--comp", "planet", "--quiet") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: train-jpg.tar.7z: not a valid 7z archive or corrupt")
    assert list(Path("data").iterdir()) == []  # neither data/planet nor a staging folder

    archive.write_bytes(good)
    assert cli("download", "--comp", "planet", "--quiet") == 0
    before = tree(Path("data"))
    archive.write_bytes(bytes(bad[:len(bad) // 2]))  # truncated: Kaggle's list changes, so it is fetched again
    assert cli("download", "--comp", "planet", "--quiet") == 3
    assert "error: train-jpg.tar.7z: not a valid 7z archive" in capsys.readouterr().err
    assert tree(Path("data")) == before  # the earlier download is untouched


@pytest.mark.parametrize(
    ("archive", "member"),
    [("evil.7z", "../evil.jpg"), ("train-jpg.tar.7z", "../evil.jpg"), ("train-jpg.tar.7z", "ABS/evil.jpg")],
    ids=["7z-dotdot", "tar-dotdot", "tar-absolute"],
)
def test_path_traversal_in_archives_is_refused(planet_sb: Sandbox, tmp_path: Path, capsys, archive, member) -> None:
    comp = planet_sb.root / PLANET_SLUG
    member = member.replace("ABS", str(tmp_path))
    if archive.endswith(".tar.7z"):
        tar_7z(comp / archive, {"train-jpg/ok.jpg": b"fine", member: b"evil"})
        where = f"{archive}: train-jpg.tar"
    else:
        evil_7z(comp / archive, member)
        where = archive
    assert cli("download", "--comp", "planet", "--quiet") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {where}: unsafe path {member!r} in the archive; refusing to unpack it"]
    assert not list(tmp_path.rglob("evil.jpg")) and list(Path("data").iterdir()) == []
