"""kit.kaggle without a server: where credentials come from, what errors say, backoff, the lazy import;
and the ledger's event folding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from kit.kaggle import errors as ke
from kit.kaggle.client import Kaggle
from kit.kaggle.credentials import find_credentials
from kit.kaggle.ledger import Ledger

REPO = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **kw: str) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "KAGGLE_CONFIG_DIR": str(tmp_path / "cfg"), **kw}


def _kaggle_json(tmp_path: Path, obj: object, mode: int = 0o600) -> Path:
    (tmp_path / "cfg").mkdir(exist_ok=True)
    p = tmp_path / "cfg" / "kaggle.json"
    p.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    p.chmod(mode)
    return p


def test_credentials_in_the_clients_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = _kaggle_json(tmp_path, {"username": "alice", "key": "filekey123"})
    c = find_credentials(_env(tmp_path))
    assert (c.source, c.username, c.secret) == (str(path), "alice", "filekey123")
    assert "filekey123" not in repr(c)
    c = find_credentials(_env(tmp_path, KAGGLE_USERNAME="bob", KAGGLE_KEY="envkey456"))
    assert (c.source, c.username, c.secret) == ("KAGGLE_USERNAME/KAGGLE_KEY", "bob", "envkey456")
    c = find_credentials(_env(tmp_path, KAGGLE_API_TOKEN="tok789xyz"))
    assert (c.source, c.secret) == ("KAGGLE_API_TOKEN", "tok789xyz")
    assert capsys.readouterr().err == ""  # 600: no warning


def test_kaggle_json_readable_by_others_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = _kaggle_json(tmp_path, {"username": "alice", "key": "filekey123"}, mode=0o644)
    find_credentials(_env(tmp_path))
    err = capsys.readouterr().err
    assert f"chmod 600 {path}" in err and "filekey123" not in err


@pytest.mark.parametrize(("content", "words"), [(None, "no Kaggle credentials: create an API token"),
                                                ("{not json", "is not valid JSON"),
                                                ({"username": "alice"}, "lacks a username or key")])
def test_missing_or_broken_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content, words) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if content is not None:
        _kaggle_json(tmp_path, content)
    with pytest.raises(ke.NoCredentials, match=words) as e:
        find_credentials(_env(tmp_path))
    assert e.value.exit_code == ke.EXIT_NO_CREDENTIALS
    assert "KAGGLE_USERNAME and KAGGLE_KEY" in str(e.value) and "\n" not in str(e.value)


def _response(status: int, headers: dict | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update(headers or {})
    return r


def test_errors_translate_to_one_line_and_distinct_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "supersecretkey")
    kg = Kaggle("titanic")
    cases = {
        requests.HTTPError("x", response=_response(401)): (ke.EXIT_UNAUTHORIZED, "HTTP 401"),
        requests.HTTPError("x", response=_response(403)): (ke.EXIT_FORBIDDEN, "competitions/titanic/rules"),
        requests.HTTPError("x", response=_response(404)): (ke.EXIT_NOT_FOUND, "'titanic' not found"),
        requests.HTTPError("x", response=_response(429)): (ke.EXIT_RATE_LIMITED, "rate limiting"),
        requests.HTTPError("x", response=_response(502)): (ke.EXIT_SERVER_ERROR, "HTTP 502"),
        requests.HTTPError("daily Submission allowance used supersecretkey", response=_response(400)):
            (ke.EXIT_LIMIT_REACHED, "limit reached"),
        requests.ConnectionError("Max retries exceeded (Caused by NameResolutionError(...))"):
            (ke.EXIT_OFFLINE, "DNS lookup failed"),
        requests.ConnectionError("[Errno 111] Connection refused"): (ke.EXIT_OFFLINE, "connection refused"),
        requests.ReadTimeout("read timed out"): (ke.EXIT_OFFLINE, "no answer from Kaggle"),
        ValueError("odd supersecretkey thing"): (ke.EXIT_KAGGLE_OTHER, "ValueError: odd *** thing"),
    }
    codes = set()
    for exc, (code, words) in cases.items():
        err = kg.translate(exc, "testing")
        assert (err.exit_code, words in str(err)) == (code, True), str(err)
        assert "supersecretkey" not in str(err) and "\n" not in str(err)
        codes.add(code)
    assert len(codes) == 8


def test_backoff_is_exponential_jittered_bounded_and_honours_retry_after(monkeypatch) -> None:
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-abc")
    monkeypatch.setenv("KIT_KAGGLE_BACKOFF_S", "1")
    kg = Kaggle()
    for attempt in range(8):
        d = [kg.delay(attempt) for _ in range(50)]
        cap = min(60.0, 2.0**attempt)
        assert all(cap * 0.5 <= x <= cap for x in d) and len(set(d)) > 1
    limited = requests.HTTPError("x", response=_response(429, {"Retry-After": "7"}))
    assert kg.delay(0, limited) >= 7


def test_retries_are_bounded(monkeypatch, capsys) -> None:
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-abc")
    monkeypatch.setenv("KIT_KAGGLE_RETRIES", "3")
    monkeypatch.setenv("KIT_KAGGLE_BACKOFF_S", "0.001")
    kg = Kaggle("titanic")
    tries = []

    def flaky():
        tries.append(1)
        raise requests.HTTPError("x", response=_response(503))

    with pytest.raises(ke.ServerError):
        kg.call("testing", flaky)
    assert len(tries) == 3
    tries.clear()

    def forbidden():
        tries.append(1)
        raise requests.HTTPError("x", response=_response(403))

    with pytest.raises(ke.Forbidden):
        kg.call("testing", forbidden)
    assert len(tries) == 1  # not retried


def test_client_is_imported_lazily() -> None:
    code = ("import sys, kit.kaggle, kit.kaggle.client, kit.kaggle.download, kit.kaggle.submissions, "
            "kit.kaggle.ledger, kit.commands.download, kit.commands.submit, kit.commands.submissions, "
            "kit.commands.sandbox, kit.sandbox, kit.sandbox.demo; sys.exit(int('kaggle' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120).returncode == 0


def test_ledger_folds_events_and_sets_a_torn_line_aside(tmp_path: Path, capsys) -> None:
    led = Ledger(tmp_path / "ledger.jsonl")
    a = led.begin("titanic", "titanic", "aa" * 32, Path("a.csv"), "first")
    led.submitted(a, 11)
    led.scored(a, "complete", 0.75, 0.7)
    b = led.begin("titanic", "titanic", "bb" * 32, Path("b.csv"), "second")
    led.failed(b, "HTTP 403")
    c = led.begin("other", "other", "aa" * 32, Path("a.csv"), "")
    with open(led.path, "a") as f:
        f.write('{"event": "submitted", "id": "tor')
    got = {e.id: e for e in led.entries()}
    assert (got[a.id].state, got[a.id].ref, got[a.id].public_score) == ("submitted", 11, 0.75)
    assert got[b.id].state == "failed" and got[c.id].state == "pending"
    err = capsys.readouterr().err
    assert "last line was cut off mid-write" in err and "ledger.jsonl.torn" in err
    assert led.torn_path.read_text() == '{"event": "submitted", "id": "tor\n'  # kept, set aside
    assert led.path.read_bytes().endswith(b"\n") and led.entries() and "cut off" not in capsys.readouterr().err
    d = led.begin("titanic", "titanic", "dd" * 32, Path("d.csv"), "after the crash")  # lands on its own line
    assert led.find_sha("titanic", "dd" * 32).id == d.id
    assert led.find_sha("titanic", "aa" * 32).ref == 11
    assert led.find_sha("titanic", "bb" * 32) is None  # a refused file may be submitted again
    assert led.find_sha("other", "aa" * 32).id == c.id  # pending counts until reconciled
    assert led.refs("titanic") == {11}
