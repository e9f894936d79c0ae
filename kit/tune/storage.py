"""Where Optuna studies live: SQLite by default, any RDB URL (PostgreSQL for many machines), or a journal file.

Every storage gets heartbeats and a retry callback: a worker that dies mid-trial (SIGKILL, lost machine)
leaves a trial whose heartbeat goes stale; the next worker to start a trial marks it FAIL and enqueues a
copy of its parameters, so no trial is silently lost.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
import warnings
from pathlib import Path
from urllib.parse import unquote_plus

import optuna
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from optuna.trial import TrialState

from kit.errors import KitError

log = logging.getLogger(__name__)

JOURNAL_PREFIX = "journal:"
HEARTBEAT_ATTR = "kit:heartbeat"
MAX_RETRY = 3
LOCK_GRACE_S = 5


# Optuna's optimize loop beats and fails stale trials only for a storage subclassing BaseHeartbeat, which
# no public module exports (RDBStorage is its only public subclass): no public API can give a journal
# heartbeats. tests/test_tune_storage.py pins the contract relied on (its abstract methods; optimize beats and
# fail_stale_trials retries through them), so an Optuna upgrade that moves it fails there, not in a study.
class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """JournalStorage with heartbeats (Optuna implements them for RDBStorage only).

    A heartbeat is a trial system attribute holding the wall-clock time, appended to the journal every
    `heartbeat_interval` seconds; a RUNNING trial whose last heartbeat (or start) is older than
    `grace_period` is stale.
    """

    def __init__(self, path: str, heartbeat_interval: int, grace_period: int | None = None,
                 heartbeat_stale_trial_callback=None) -> None:
        # a worker killed while appending leaves the file lock behind; it is broken after LOCK_GRACE_S
        # (Optuna's default, 30 s, would stall every other worker that long; appends take milliseconds)
        super().__init__(JournalFileBackend(path, JournalFileSymlinkLock(path, grace_period=LOCK_GRACE_S)))
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period or 2 * heartbeat_interval
        self._stale_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        """Append the current time as the trial's heartbeat."""
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # the trial finished between two beats

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        # the name BaseHeartbeat's contract requires (Optuna's fail_stale_trials calls it)
        now = time.time()
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None and t.datetime_start is not None:
                beat = t.datetime_start.timestamp()
            if beat is not None and now - float(beat) > self._grace_period:
                stale.append(self.get_trial_id_from_study_id_trial_number(study_id, t.number))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        """Seconds between heartbeats."""
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        """What runs on a trial found stale (the retry callback)."""
        return self._stale_callback


def default_url(runs: Path, comp_name: str) -> str:
    """`sqlite:///runs/<comp>/optuna.db` (the folder is created when the storage is opened)."""
    return f"sqlite:///{Path(runs) / comp_name / 'optuna.db'}"


SECRET_PARAM = re.compile(r"pass|pwd|token|key|secret", re.IGNORECASE)
MASK = "***"


def _secret_values(url: str) -> list[str]:
    """The secret parts of `url`: the userinfo password and values of query/fragment parameters named like secrets."""
    out = []
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@", url)
    if m and ":" in m.group(1):
        out.append(m.group(1).split(":", 1)[1])
    for part in re.split(r"[?#]", url)[1:]:
        for pair in re.split(r"[&;]", part):
            name, eq, value = pair.partition("=")
            if eq and value and SECRET_PARAM.search(unquote_plus(name)):
                out.append(value)
    return [v for v in out if v]


def masked(url: str, text: str | None = None) -> str:
    """`url` (or `text`, e.g. an error message, that may quote it) with every secret of `url` replaced by ***.

    The one function for every storage URL kit prints or records: userinfo passwords and query/fragment
    parameters whose names look secret (password, pass, pwd, token, key, secret: `?password=`, `#token=`).
    """
    out = url if text is None else text
    for value in sorted(set(_secret_values(url)), key=len, reverse=True):
        for form in {value, unquote_plus(value)}:
            out = out.replace(form, MASK)
    return out


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def open_storage(url: str, heartbeat: int = 60) -> BaseStorage:
    """The Optuna storage for `url` (RDB URL or `journal:PATH`), with heartbeats and retries, or a one-line KitError."""
    if heartbeat < 1:
        raise KitError(f"--heartbeat must be at least 1 second (got {heartbeat})")
    with warnings.catch_warnings():
        # heartbeats and the retry callback are marked experimental; they are the point here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
        if url.startswith(JOURNAL_PREFIX):
            path = Path(url[len(JOURNAL_PREFIX):])
            if not str(path) or str(path) == ".":
                raise KitError(f"storage {masked(url)!r}: expected journal:PATH")
            if not path.parent.is_dir():
                raise KitError(f"storage {masked(url)}: folder {masked(url, str(path.parent))} does not exist")
            try:
                return HeartbeatJournalStorage(str(path), heartbeat, heartbeat_stale_trial_callback=retry)
            except Exception as e:
                raise KitError(f"cannot open storage {masked(url)}: {masked(url, _first_line(e))}") from None
        try:
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
        except Exception:
            raise KitError(
                f"storage {masked(url)!r}: not a database URL (e.g. sqlite:///runs/x.db, "
                "postgresql://user:pass@host:5432/db) or journal:PATH"
            ) from None
        if parsed.drivername == "postgresql":
            # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the `postgres` extra installs psycopg2
            driver = next((d for d in ("psycopg", "psycopg2") if importlib.util.find_spec(d)), None)
            if driver:
                parsed = parsed.set(drivername=f"postgresql+{driver}")
        engine_url = parsed.render_as_string(hide_password=False)
        engine_kwargs: dict = {}
        if parsed.drivername.startswith("sqlite"):
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # wait for a lock rather than failing at once when two processes write
            engine_kwargs = {"connect_args": {"timeout": 60}}
        elif parsed.drivername.startswith("postgresql"):
            engine_kwargs = {"connect_args": {"connect_timeout": 10}}
        try:
            return RDBStorage(engine_url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                              heartbeat_stale_trial_callback=retry)
        except ImportError:
            raise KitError(
                f"storage {masked(url)}: no driver for {parsed.drivername}; for PostgreSQL install "
                "psycopg2-binary (`pip install -e '.[postgres]'`)"
            ) from None
        except Exception as e:
            raise KitError(f"cannot open storage {masked(url)}: {masked(url, _first_line(e))}") from None


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark trials of dead workers FAIL now (their retries get enqueued); return their numbers."""
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in before]
    for n in failed:
        log.warning("trial %d: its worker stopped sending heartbeats; marked failed and queued for retry", n)
    return failed
