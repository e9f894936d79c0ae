"""The one place that talks to Kaggle, through the official `kaggle` client (imported lazily).

`import kaggle` authenticates at import time (and sends KAGGLE_API_TOKEN to Kaggle to introspect it), so
nothing here imports it before credentials have been found and the user actually asked for Kaggle.
Every failure becomes one line with its own exit code (`kit.kaggle.errors`); 429, 5xx and network
failures are retried a bounded number of times with exponential backoff and jitter first.

Where requests go: kagglesdk's `KAGGLE_API_ENVIRONMENT` (unset/PROD: api.kaggle.com; TEST: http://localhost:7777,
the sandbox's default port; LOCALHOST: http://localhost). kaggle 2.2.4's `KaggleApi` ignores TEST, so the
client is built here from kagglesdk's own `get_env()`. Tuning (for tests and slow links):
KIT_KAGGLE_RETRIES (attempts, default 4), KIT_KAGGLE_BACKOFF_S (first backoff, default 1),
KIT_KAGGLE_TIMEOUT_S (per request, default 60).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from kit.errors import KitError
from kit.kaggle.credentials import HOW_TO_SET, SETTINGS_URL, config_dir, find_credentials, redact
from kit.kaggle.errors import (
    Forbidden,
    KaggleError,
    LimitReached,
    NoCredentials,
    NotFound,
    Offline,
    RateLimited,
    ServerError,
    Unauthorized,
)

T = TypeVar("T")


# ---- results as plain data -------------------------------------------------------------------------------------


@dataclass
class RemoteSubmission:
    """One of the user's submissions as Kaggle lists it."""

    ref: int
    date: datetime | None  # naive UTC
    file_name: str
    description: str
    status: str  # "pending" | "complete" | "error"
    public_score: float | None
    private_score: float | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (date as ISO text)."""
        d = self.__dict__.copy()
        d["date"] = self.date.isoformat() if self.date else None
        return d


def _score(v: Any) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _remote(s: Any) -> RemoteSubmission:
    status = getattr(getattr(s, "status", None), "name", "PENDING").lower()
    return RemoteSubmission(
        ref=int(s.ref), date=s.date, file_name=s.file_name or "", description=s.description or "",
        status=status, public_score=_score(s.public_score), private_score=_score(s.private_score),
        error=s.error_description or None,
    )


# ---- the client ------------------------------------------------------------------------------------------------


def env_float(name: str, default: float) -> float:
    """A float from the environment (default when unset)."""
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        raise KitError(f"{name}={os.environ[name]!r} is not a number") from None


def polls(timeout: float) -> Iterator[None]:
    """The polling schedule of every wait on Kaggle: yields before each poll; between polls sleeps with backoff
    (KIT_KAGGLE_POLL_S, default 2 s, then x1.5 up to 30 s); stops when the next poll would pass `timeout`."""
    deadline = time.monotonic() + timeout
    interval = env_float("KIT_KAGGLE_POLL_S", 2.0)
    while True:
        yield
        if time.monotonic() + interval > deadline:
            return
        time.sleep(interval)
        interval = min(30.0, interval * 1.5)


def _api_class():
    """KaggleApi with its client built from kagglesdk's KAGGLE_API_ENVIRONMENT and a request timeout."""
    from kaggle.api.kaggle_api_extended import KaggleApi
    from kagglesdk import KaggleClient
    from kagglesdk.kaggle_env import get_env
    from requests.adapters import HTTPAdapter

    class TimeoutAdapter(HTTPAdapter):
        def __init__(self, timeout: float):
            super().__init__()
            self.default_timeout = timeout

        def send(self, request, **kwargs):
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = self.default_timeout
            return super().send(request, **kwargs)

    class KitKaggleApi(KaggleApi):
        request_timeout = 60.0

        def build_kaggle_client(self) -> KaggleClient:
            client = KaggleClient(
                env=get_env(), verbose=False,
                username=self.config_values.get(self.CONFIG_NAME_USER),
                password=self.config_values.get(self.CONFIG_NAME_KEY),
                api_token=self.config_values.get(self.CONFIG_NAME_TOKEN),
                response_processor=self.get_response_processor(),
            )
            http = client.http_client()
            http._init_session()
            adapter = TimeoutAdapter(self.request_timeout)  # the client sends without a timeout otherwise
            http._session.mount("http://", adapter)
            http._session.mount("https://", adapter)
            return client

    return KitKaggleApi


class Kaggle:
    """The official client behind one-line errors and bounded retries."""

    def __init__(self, slug: str = ""):
        self.slug = slug
        self.creds = find_credentials()
        self.retries = max(1, int(env_float("KIT_KAGGLE_RETRIES", 4)))
        self.backoff = env_float("KIT_KAGGLE_BACKOFF_S", 1.0)
        self.timeout = env_float("KIT_KAGGLE_TIMEOUT_S", 60.0)
        self._api = None

    # -- connection
    @property
    def api(self):
        """The authenticated KaggleApi (imported and built on first use)."""
        if self._api is None:
            self._api = self.call("authenticate", self._connect, retry=True)
        return self._api

    def _connect(self):
        with contextlib.redirect_stdout(io.StringIO()):  # import-time auth prints help text we replace
            try:
                cls = _api_class()
            except ImportError as e:
                raise KaggleError(
                    f"the official kaggle client cannot be imported ({e}); run `pip install kaggle six`"
                ) from None
        api = cls()
        api.request_timeout = self.timeout
        cdir = config_dir()
        api.config_dir, api.config = str(cdir), str(cdir / "kaggle.json")  # the class read them at import time
        api.args = []
        with contextlib.redirect_stdout(io.StringIO()):  # its own permission warning: we printed ours
            try:
                api.authenticate()
            except SystemExit:
                if self.creds.username is None:  # a token Kaggle's introspection did not accept
                    raise Unauthorized(f"Kaggle rejected the API token from {self.creds.source} (inactive, expired "
                                       f"or revoked); create a new one at {SETTINGS_URL}") from None
                raise NoCredentials(f"the kaggle client found no usable credentials; {HOW_TO_SET}") from None
        return api

    # -- error translation and retry
    def _what(self, what: str) -> str:
        return f"{what} ({self.slug})" if self.slug else what

    def translate(self, e: BaseException, what: str, refused: Mapping[int, str] | None = None) -> KaggleError:
        """The one-line KaggleError for an exception raised by the client (`refused`: what a 403 / 404 means here,
        when it is not about the competition)."""
        import requests

        if isinstance(e, KaggleError):
            return e
        slug = self.slug or "?"
        secrets = [self.creds.secret]
        if isinstance(e, requests.HTTPError) and e.response is not None:
            code = e.response.status_code
            msg = redact(str(e).splitlines()[0] if str(e) else "", secrets)
            if refused and code in refused:
                return {403: Forbidden, 404: NotFound}.get(code, KaggleError)(f"{refused[code]} (HTTP {code})")
            if code == 401:
                return Unauthorized(f"Kaggle rejected the credentials from {self.creds.source} (HTTP 401): the key "
                                    f"is wrong, expired or revoked; create a new API token at {SETTINGS_URL}")
            if code == 403:
                return Forbidden(f"Kaggle refused {what} for '{slug}' (HTTP 403): accept the competition's rules at "
                                 f"https://www.kaggle.com/competitions/{slug}/rules (the API cannot accept them)")
            if code == 404:
                return NotFound(f"competition '{slug}' not found on Kaggle (HTTP 404) during {what}: check the "
                                "slug; the competition may also be closed or not entered")
            if code == 429:
                return RateLimited(f"Kaggle is rate limiting requests (HTTP 429) during {what}; "
                                   "wait a few minutes and try again")
            if code >= 500:
                return ServerError(f"Kaggle answered HTTP {code} during {what}; its servers may be having "
                                   "trouble, try again later")
            if code == 400 and ("allowance" in msg.lower() or "limit" in msg.lower()):
                return LimitReached(f"daily submission limit reached for '{slug}': {msg}")
            return KaggleError(f"Kaggle answered HTTP {code} during {what}: {msg}")
        if isinstance(e, requests.Timeout):
            return Offline(f"no answer from Kaggle within {self.timeout:g}s during {what}: you seem to be offline "
                           "or Kaggle is unreachable; check your connection and try again")
        if isinstance(e, requests.ConnectionError):
            text = str(e)
            if "NameResolution" in text or "Name or service not known" in text or "getaddrinfo" in text:
                why = "DNS lookup failed"
            elif "refused" in text.lower():
                why = "connection refused"
            elif "RemoteDisconnected" in text or "reset" in text.lower() or "aborted" in text.lower():
                why = "connection dropped"
            else:
                why = "connection failed"
            return Offline(f"cannot reach Kaggle during {what} ({why}): you seem to be offline; "
                           "check your connection (and proxy settings) and try again")
        if isinstance(e, SystemExit):
            return NoCredentials(f"the kaggle client found no usable credentials; {HOW_TO_SET}")
        text = redact(" ".join(str(e).split()), secrets)
        return KaggleError(f"{what} failed: {type(e).__name__}: {text}")

    def delay(self, attempt: int, e: BaseException | None = None) -> float:
        """Exponential backoff with jitter (Retry-After honoured, capped at 60 s)."""
        d = min(60.0, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
        resp = getattr(e, "response", None)
        if resp is not None and getattr(resp, "status_code", None) == 429:
            try:
                d = max(d, min(60.0, float(resp.headers.get("Retry-After", ""))))
            except ValueError:
                pass
        return d

    def call(self, what: str, fn: Callable[..., T], *args: Any, retry: bool = True,
             before_retry: Callable[[], T | None] | None = None, refused: Mapping[int, str] | None = None,
             **kwargs: Any) -> T:
        """Run one client call; retry 429/5xx/network failures (bounded), then raise the one-line error.

        `before_retry` runs before each retry; a non-None result is returned instead of retrying
        (used to notice that a submission did go through before the failure). `refused` words a 403 / 404
        that is not about the competition (a dataset, a kernel).
        """
        attempt = 0
        while True:
            try:
                with contextlib.redirect_stdout(sys.stderr):  # the client prints; our stdout is for results
                    return fn(*args, **kwargs)
            except (Exception, SystemExit) as e:
                err = self.translate(e, self._what(what), refused)
                if not (retry and err.retriable and attempt + 1 < self.retries):
                    raise err from None
                wait = self.delay(attempt, e)
                print(f"kaggle: {err} — retry {attempt + 1}/{self.retries - 1} in {wait:.1f}s", file=sys.stderr)
                time.sleep(wait)
                attempt += 1
                if before_retry is not None:
                    found = before_retry()
                    if found is not None:
                        return found

    def sdk(self) -> Any:
        """kagglesdk's client (a context manager), for the calls KaggleApi wraps in prints or ValueErrors."""
        return self.api.build_kaggle_client()

    # -- competitions
    def is_code_competition(self, slug: str) -> bool | None:
        """Whether the competition takes submissions from notebooks only (Kaggle's is_kernels_submissions_only,
        from the public competition list); None when the list does not show it."""
        resp = self.call("looking up the competition", self.api.competitions_list, search=slug, page_size=50)
        for c in getattr(resp, "competitions", None) or []:
            if (c.ref or "").rstrip("/").rsplit("/", 1)[-1] == slug:  # ref: the slug, or its URL
                return bool(c.is_kernels_submissions_only)
        return None

    def evaluation_metric(self, slug: str) -> str | None:
        """The competition's evaluation metric as Kaggle names it (ApiCompetition.evaluation_metric, from the public
        competition list); None when the list does not show the competition or its metric."""
        resp = self.call("looking up the competition", self.api.competitions_list, search=slug, page_size=50)
        for c in getattr(resp, "competitions", None) or []:
            if (c.ref or "").rstrip("/").rsplit("/", 1)[-1] == slug:
                return getattr(c, "evaluation_metric", None) or None
        return None

    def list_files(self, slug: str) -> list[dict[str, Any]]:
        """Every data file of the competition: name, size in bytes, creation date (ISO)."""
        out, token = [], None
        while True:
            resp = self.call("listing the competition files", self.api.competition_list_files, slug,
                             page_token=token, page_size=200)
            for f in resp.files or []:
                out.append({"name": f.name, "bytes": int(f.total_bytes or 0),
                            "created": f.creation_date.isoformat() if f.creation_date else None})
            token = resp.next_page_token
            if not token:
                return out

    def download_all(self, slug: str, path: Path, quiet: bool = False) -> Path:
        """Download the competition's files (one zip) into `path`, with the client's progress bar unless quiet."""
        path = Path(path)
        self.call("downloading the competition files", self.api.competition_download_files, slug,
                  path=str(path), force=True, quiet=quiet)
        got = sorted(p for p in path.iterdir() if p.is_file() and not p.name.endswith(".kaggle-partial"))
        if not got:
            raise KaggleError(f"download of '{slug}' produced no file in {path}")
        return got[0]

    def limits(self, slug: str) -> dict[str, Any]:
        """Today's submission count and how many more are allowed now."""
        lim = self.call("checking the submission limit", self.api.competition_get_submission_limits, slug)
        return {"today": int(lim.num_today), "total": int(lim.num_total), "remaining": int(lim.num_allowed_now),
                "limited_by_total": bool(lim.limited_by_total)}

    def submissions(self, slug: str, pages: int = 5, page_size: int = 50) -> list[RemoteSubmission]:
        """The user's submissions, newest first (up to pages * page_size)."""
        out: list[RemoteSubmission] = []
        for page in range(1, pages + 1):
            got = self.call("listing submissions", self.api.competition_submissions, slug,
                            page_number=page, page_size=page_size) or []
            out += [_remote(s) for s in got if s is not None]
            if len(got) < page_size:
                break
        return out

    def find_submission(self, slug: str, file_name: str, message: str, since: datetime,
                        exclude: Iterable[int] = ()) -> RemoteSubmission | None:
        """The newest remote submission of `file_name` with `message` made at or after `since` (naive UTC)."""
        skip = set(exclude)
        for s in self.submissions(slug, pages=2):
            if (s.ref not in skip and s.file_name == file_name and s.description == (message or "")
                    and (s.date is None or s.date >= since - timedelta(minutes=2))):
                return s
        return None

    def submit(self, path: Path, message: str, slug: str, exclude: Iterable[int] = ()) -> int:
        """Upload `path` and create the submission; returns Kaggle's submission ref.

        Retried like every call, but before each retry Kaggle's list is checked so that a submission which
        went through before the failure is not made twice.
        """
        path = Path(path)
        since = datetime.now(UTC).replace(tzinfo=None)
        exclude = set(exclude)

        def attempt() -> int:
            resp = self.api.competition_submit(str(path), message, slug, quiet=True)
            if resp.message == self.api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE or not resp.ref:
                raise ServerError(f"Kaggle did not take the upload of {path.name}: {resp.message or 'no reference'}")
            return int(resp.ref)

        def already_there() -> int | None:
            found = self.find_submission(slug, path.name, message, since, exclude)
            return found.ref if found else None

        return self.call("submitting", attempt, before_retry=already_there)
