"""A local Kaggle: the part of Kaggle's API that the official `kaggle` client uses for competitions.

The client (kaggle 2.x / kagglesdk) POSTs JSON to `<endpoint>/api/v1/<service>/<Method>` (see
`kagglesdk/kaggle_http_client.py`); request and response bodies are the `kagglesdk` types, which this
server parses and builds itself:

    competitions.CompetitionApiService/ListDataFiles         ApiListDataFilesRequest -> ApiListDataFilesResponse
    competitions.CompetitionApiService/DownloadDataFiles     -> 302 to GET /_blobs/competitions/<slug>/<slug>.zip
    competitions.CompetitionApiService/DownloadDataFile      -> 302 to GET /_blobs/competitions/<slug>/files/<name>
    competitions.CompetitionApiService/GetSubmissionLimits   -> ApiSubmissionLimits
    competitions.CompetitionApiService/StartSubmissionUpload -> ApiStartSubmissionUploadResponse(token, createUrl)
    PUT <createUrl> (= /_blobs/uploads/<token>)              the file bytes (the client's resumable upload)
    competitions.CompetitionApiService/CreateSubmission      ApiCreateSubmissionRequest(blobFileTokens) -> ref
    competitions.CompetitionApiService/ListSubmissions       -> ApiListSubmissionsResponse (scores once ready)
    competitions.CompetitionApiService/GetSubmission         -> ApiSubmission
    competitions.CompetitionApiService/ListCompetitions      -> ApiCompetition list (is_kernels_submissions_only)
    competitions.CompetitionApiService/CreateCodeSubmission  a kernel version: rerun offline, then scored
    blobs.BlobApiService/StartBlobUpload                     dataset files (then PUT as above)
    datasets.DatasetApiService/...                           see `kit.sandbox.datasets`
    kernels.KernelsApiService/...                            see `kit.sandbox.kernels` (runs with no network)
    security.OAuthService/IntrospectToken                    (the client checks KAGGLE_API_TOKEN with it)

A code competition (`CompetitionMeta.code`, set by `kit sandbox --code-competition SLUG`) refuses file
submissions, as Kaggle does; a notebook version submitted to it is run again with no network under the
competition's runtime and memory caps, and its submission.csv is scored like an uploaded file.

Errors are Kaggle-style JSON `{"code": N, "message": ...}`, which the client turns into `HTTPError`.
Credentials: HTTP Basic `username:key` (kaggle.json / KAGGLE_USERNAME+KAGGLE_KEY) or `Bearer <token>`.

Reaching it with the official client: `KaggleApi` builds its client from `--local/--staging/--admin` flags
only (so `KAGGLE_API_ENVIRONMENT=TEST` alone still means api.kaggle.com in kaggle 2.2.4; `kit.kaggle.client`
honours it), and kagglesdk fixes the TEST endpoint at http://localhost:7777. Any other port is reached
through the proxy setting `requests` honours: `HTTP_PROXY=http://127.0.0.1:<port>`; the server accepts
proxy-style absolute request targets. `client_env(url, config_dir)` gives the variables.

Misbehaviour for testing error paths: POST /_sandbox/faults {"match": "CreateSubmission"|"upload"|
"download"|"*", "status": 500, "delay": 2.0, "drop": true, "after": true, "times": 1, "retry_after": 0}.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import http.server
import io
import json
import logging
import secrets
import socket
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import numpy as np
import pandas as pd
from kagglesdk.blobs.types.blob_api_service import ApiStartBlobUploadRequest, ApiStartBlobUploadResponse
from kagglesdk.competitions.types.competition_api_service import (
    ApiCompetition,
    ApiCreateCodeSubmissionRequest,
    ApiCreateCodeSubmissionResponse,
    ApiCreateSubmissionRequest,
    ApiCreateSubmissionResponse,
    ApiDataFile,
    ApiDownloadDataFileRequest,
    ApiDownloadDataFilesRequest,
    ApiGetSubmissionLimitsRequest,
    ApiGetSubmissionRequest,
    ApiListCompetitionsRequest,
    ApiListCompetitionsResponse,
    ApiListDataFilesRequest,
    ApiListDataFilesResponse,
    ApiListSubmissionsRequest,
    ApiListSubmissionsResponse,
    ApiStartSubmissionUploadRequest,
    ApiStartSubmissionUploadResponse,
    ApiSubmission,
    ApiSubmissionLimits,
)
from kagglesdk.competitions.types.submission_status import SubmissionStatus
from kagglesdk.security.types.oauth_service import IntrospectTokenRequest, IntrospectTokenResponse

from kit import registry
from kit.errors import KitError
from kit.io import atomic_write_text
from kit.sandbox.data import PRIVATE_FILES, SOLUTION_FILE, CompetitionMeta
from kit.sandbox.datasets import DATASET_SERVICE, Datasets
from kit.sandbox.errors import HttpError
from kit.sandbox.kernels import KERNELS_SERVICE, Kernels, Served

log = logging.getLogger(__name__)

COMPETITION_SERVICE = "competitions.CompetitionApiService"
BLOB_SERVICE = "blobs.BlobApiService"
OAUTH_SERVICE = "security.OAuthService"
DEFAULT_PORT = 7777  # kagglesdk's KaggleEnv.TEST endpoint is http://localhost:7777


@dataclass
class Fault:
    """One misbehaviour: which requests it hits and what it does to them."""

    match: str = "*"  # an API method name (e.g. "CreateSubmission"), "upload", "download" or "*"
    status: int | None = None  # answer this HTTP status instead
    delay: float = 0.0  # seconds to wait before answering
    drop: bool = False  # close the connection without an answer
    after: bool = False  # do the work first, then misbehave (the client never hears it succeeded)
    times: int = 1  # requests it applies to; -1 = until cleared
    retry_after: float | None = None  # Retry-After header on the error answer

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """CLI form: MATCH:STATUS[xTIMES] | MATCH:drop[xTIMES] | MATCH:delay=SECONDS[xTIMES]."""
        try:
            match, what = spec.split(":", 1)
            times = 1
            if "x" in what:
                what, t = what.rsplit("x", 1)
                times = int(t)
            if what == "drop":
                return cls(match=match, drop=True, times=times)
            if what.startswith("delay="):
                return cls(match=match, delay=float(what[6:]), times=times)
            return cls(match=match, status=int(what), times=times)
        except ValueError:
            raise KitError(
                f"--fault {spec!r}: expected MATCH:STATUS[xN], MATCH:drop[xN] or MATCH:delay=S[xN]"
            ) from None


@dataclass
class Submission:
    """One submission as the sandbox keeps it."""

    ref: int
    slug: str
    date: datetime  # naive UTC, as kagglesdk serialises it
    description: str
    file_name: str
    total_bytes: int
    ready_at: float  # time.time() when the score becomes visible
    public_score: float | None = None
    private_score: float | None = None
    error: str | None = None
    kernel: str | None = None  # owner/slug/version of a code submission

    def api(self, now: float, username: str) -> ApiSubmission:
        """This submission as the kagglesdk type the client reads."""
        s = ApiSubmission()
        s.ref = self.ref
        s.total_bytes = self.total_bytes
        s.date = self.date
        s.description = self.description
        s.file_name = self.file_name
        s.submitted_by = username
        s.team_name = username
        s.url = f"/submissions/{self.ref}/{quote(self.file_name)}"
        if now < self.ready_at:
            s.status = SubmissionStatus.PENDING
        elif self.error:
            s.status = SubmissionStatus.ERROR
            s.error_description = self.error
        else:
            s.status = SubmissionStatus.COMPLETE
            s.public_score = f"{self.public_score:.5f}"
            if self.private_score is not None:
                s.private_score = f"{self.private_score:.5f}"
        return s


# ---- scoring: what Kaggle does with an uploaded file ------------------------------------------------------


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())[:300]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def score_submission(
    comp_dir: Path, meta: CompetitionMeta, data: bytes
) -> tuple[float | None, float | None, str | None]:
    """(public score, private score, error description) of an uploaded file, checked as Kaggle checks it,
    then scored by the kit competition named in the metadata (`Competition.score_submission`)."""
    sol = pd.read_csv(Path(comp_dir) / SOLUTION_FILE, keep_default_na=False)
    try:
        sub = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        return None, None, f"Could not parse the submission file: {str(e).splitlines()[0]}"
    idc = meta.id_col
    need = [idc, *meta.target_cols]
    missing = [c for c in need if c not in sub.columns]
    if missing:
        return None, None, f"Submission file is missing required column(s): {', '.join(missing)}"
    if len(sub) != len(sol):
        return None, None, f"Submission must have {len(sol)} rows; found {len(sub)}"
    sub_ids = sub[idc].astype(str)
    if sub_ids.duplicated().any():
        return None, None, f"Submission has a duplicate {idc}: {sub[idc][sub_ids.duplicated()].iloc[0]}"
    pos = pd.Index(sub_ids).get_indexer(sol[idc].astype(str))
    if (pos < 0).any():
        return None, None, f"Submission is missing {idc} {sol[idc][pos < 0].iloc[0]}"
    truth = sol[need].reset_index(drop=True)
    pred = sub[need].iloc[pos].reset_index(drop=True)  # the solution's rows, in its order
    for col in meta.target_cols:
        if pd.api.types.is_numeric_dtype(truth[col]):  # an empty cell reads as "" here (keep_default_na=False)
            values = pd.to_numeric(pred[col], errors="coerce")
            if values.isna().any():
                bad = int(values.isna().to_numpy().argmax())
                return None, None, (f"Submission has an empty or non-numeric {col} for {idc} {truth[idc].iloc[bad]}: "
                                    f"{pred[col].iloc[bad]!r}")
            pred[col] = values
    try:
        comp = registry.get(meta.competition)
    except KitError as e:
        log.warning("sandbox: cannot score %s: %s", meta.slug, e)
        return None, None, f"The competition cannot score submissions: {e}"
    usage = sol["Usage"].to_numpy() if "Usage" in sol.columns else np.full(len(sol), "Public")
    scores: dict[str, float | None] = {}
    for part in ("Public", "Private"):
        rows = usage == part
        if not rows.any():
            scores[part] = None
            continue
        try:
            scores[part] = float(comp.score_submission(truth[rows].reset_index(drop=True),
                                                       pred[rows].reset_index(drop=True)))
        except Exception as e:  # a submission the metric cannot take (unknown label...) is an error, as on Kaggle
            return None, None, f"Submission could not be scored: {_one_line(e)}"
    return scores["Public"], scores["Private"], None


# ---- state ------------------------------------------------------------------------------------------------------


class Sandbox:
    """The sandbox server: competitions from `root/<slug>/`, submissions in memory, faults on demand."""

    def __init__(
        self,
        root: Path,
        username: str = "sandbox",
        key: str | None = None,
        token: str | None = None,
        daily_limit: int = 5,
        score_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.root = Path(root)
        self.username = username
        self.key = key if key is not None else secrets.token_hex(16)
        self.token = token
        self.daily_limit = daily_limit
        self.score_delay = score_delay
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.submissions: list[Submission] = []
        self.uploads: dict[str, dict] = {}
        self.requests: list[list] = []  # [verb, route, status or None while unanswered], in arrival order
        self._zips: dict[tuple, bytes] = {}
        self._ref_file = self.root / ".next-ref"  # refs keep rising across restarts, as Kaggle's never repeat
        self.datasets = Datasets(self.root / ".datasets", username, self.take_blob)
        self.kernels = Kernels(self.root / ".kernels", username, self.datasets,
                               Served(self.comp_dir, self.meta, self.public_files))
        self.httpd = _Server((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.sandbox = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def port(self) -> int:
        """The port it listens on (useful with port=0)."""
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        """http://host:port of the server."""
        return f"http://{self.httpd.server_address[0]}:{self.port}"

    def start(self) -> Sandbox:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kaggle-sandbox", daemon=True)
        self._thread.start()
        self.kernels.start()
        return self

    def stop(self) -> None:
        """Stop serving (a running notebook is killed) and close the socket."""
        self.kernels.stop()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def write_credentials(self, config_dir: Path) -> Path:
        """Write `config_dir/kaggle.json` (mode 600) holding this sandbox's username and key."""
        config_dir = Path(config_dir)
        config_dir.mkdir(parents=True, exist_ok=True)
        path = config_dir / "kaggle.json"
        path.write_text(json.dumps({"username": self.username, "key": self.key}))
        path.chmod(0o600)
        return path

    # -- faults
    def add_fault(self, fault: Fault) -> None:
        """Make matching requests misbehave."""
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, route: str) -> Fault | None:
        """The first active fault matching `route`, counting one use."""
        with self.lock:
            for f in self.faults:
                if f.times != 0 and f.match in ("*", route):
                    if f.times > 0:
                        f.times -= 1
                    return f
        return None

    def state(self) -> dict:
        """Submissions, uploads and the request log, as JSON-able data."""
        with self.lock:
            subs = [{**asdict(s), "date": s.date.isoformat()} for s in self.submissions]
            return {"submissions": subs, "uploads": len(self.uploads), "requests": [list(r) for r in self.requests],
                    "faults": [asdict(f) for f in self.faults if f.times != 0]}

    # -- competitions
    def comp_dir(self, slug: str) -> Path:
        """`root/<slug>` of a served competition, else 404 as Kaggle answers."""
        d = self.root / slug
        if not slug or "/" in slug or slug.startswith(".") or not (d / ".competition.json").is_file():
            raise HttpError(404, f"Competition '{slug}' not found")
        return d

    def meta(self, slug: str) -> CompetitionMeta:
        """The served competition's metadata (404 when not served, 500 when unreadable)."""
        d = self.comp_dir(slug)
        try:
            return CompetitionMeta.load(d)
        except KitError as e:  # e.g. metadata from an older kit: say so rather than a bare 500
            raise HttpError(500, f"sandbox: {e}") from None

    def public_files(self, slug: str) -> list[Path]:
        """The competition's public files (recursive, sorted); the solution and metadata stay private."""
        d = self.comp_dir(slug)
        return sorted(p for p in d.rglob("*") if p.is_file() and p.name not in PRIVATE_FILES
                      and not any(part.startswith(".") for part in p.relative_to(d).parts))

    def zip_bytes(self, slug: str) -> tuple[bytes, float]:
        """A deterministic zip of the public files (cached while they are unchanged) and their newest mtime."""
        d = self.comp_dir(slug)
        files = self.public_files(slug)
        key = (slug, tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
        newest = max((p.stat().st_mtime for p in files), default=time.time())
        with self.lock:
            if key in self._zips:
                return self._zips[key], newest
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                info = zipfile.ZipInfo(p.relative_to(d).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED if p.suffix.lower() in (".jpg", ".png", ".zip") \
                    else zipfile.ZIP_DEFLATED
                zf.writestr(info, p.read_bytes())
        data = buf.getvalue()
        with self.lock:
            self._zips = {key: data}
        return data, newest

    def check_auth(self, header: str | None) -> None:
        """401 unless the request carries this sandbox's credentials."""
        if header:
            kind, _, value = header.partition(" ")
            if kind.lower() == "basic":
                try:
                    user, _, key = base64.b64decode(value).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    user, key = "", ""
                if hmac.compare_digest(user, self.username) and hmac.compare_digest(key, self.key):
                    return
            elif kind.lower() == "bearer" and self.token and hmac.compare_digest(value, self.token):
                return
        raise HttpError(401, "Unauthenticated: invalid or missing API credentials")

    # -- API methods: body dict in, (status, headers, body bytes) out
    def api(self, method: str, body: dict, base: str, service: str = COMPETITION_SERVICE) -> tuple[int, dict, bytes]:
        """Run one API method of one service."""
        handlers = {COMPETITION_SERVICE: (self, "_api_"), BLOB_SERVICE: (self, "_api_"),
                    DATASET_SERVICE: (self.datasets, "api_"), KERNELS_SERVICE: (self.kernels, "api_")}
        if service not in handlers:
            raise HttpError(404, f"Unknown service {service}")
        owner, prefix = handlers[service]
        handler = getattr(owner, f"{prefix}{method}", None)
        if handler is None:
            raise HttpError(404, f"Unknown API method {method}")
        result = handler(body, base)
        if isinstance(result, tuple):
            return result
        return 200, {"Content-Type": "application/json"}, result.to_json().encode()

    def _api_ListDataFiles(self, body: dict, base: str):
        req = ApiListDataFilesRequest.from_dict(body)
        d = self.comp_dir(req.competition_name)
        files = self.public_files(req.competition_name)
        start = int(req.page_token or 0)
        size = req.page_size or 20
        resp = ApiListDataFilesResponse()
        out = []
        for p in files[start:start + size]:
            f = ApiDataFile()
            f.name = p.relative_to(d).as_posix()
            f.ref = f.name
            f.total_bytes = p.stat().st_size
            f.creation_date = datetime.fromtimestamp(p.stat().st_mtime, UTC).replace(tzinfo=None)
            out.append(f)
        resp.files = out
        if start + size < len(files):
            resp.next_page_token = str(start + size)
        return resp

    def _api_DownloadDataFiles(self, body: dict, base: str):
        req = ApiDownloadDataFilesRequest.from_dict(body)
        self.comp_dir(req.competition_name)
        slug = req.competition_name
        return 302, {"Location": f"{base}/_blobs/competitions/{slug}/{slug}.zip"}, b""

    def _api_DownloadDataFile(self, body: dict, base: str):
        req = ApiDownloadDataFileRequest.from_dict(body)
        d = self.comp_dir(req.competition_name)
        if not any(p.relative_to(d).as_posix() == req.file_name for p in self.public_files(req.competition_name)):
            raise HttpError(404, f"File '{req.file_name}' not found")
        return 302, {"Location": f"{base}/_blobs/competitions/{req.competition_name}/files/{quote(req.file_name)}"}, b""

    def _counts(self, slug: str) -> tuple[int, int]:
        today = datetime.now(UTC).date()
        with self.lock:
            mine = [s for s in self.submissions if s.slug == slug]
        return sum(s.date.date() == today for s in mine), len(mine)

    def _api_GetSubmissionLimits(self, body: dict, base: str):
        req = ApiGetSubmissionLimitsRequest.from_dict(body)
        self.comp_dir(req.competition_name)
        today, total = self._counts(req.competition_name)
        lim = ApiSubmissionLimits()
        lim.num_today = today
        lim.num_total = total
        lim.num_allowed_now = max(0, self.daily_limit - today)
        return lim

    def _api_StartSubmissionUpload(self, body: dict, base: str):
        req = ApiStartSubmissionUploadRequest.from_dict(body)
        self.comp_dir(req.competition_name or "")
        token = secrets.token_urlsafe(18)
        with self.lock:
            self.uploads[token] = {"slug": req.competition_name, "file_name": req.file_name,
                                   "content_length": req.content_length, "data": None}
        resp = ApiStartSubmissionUploadResponse()
        resp.token = token
        resp.create_url = f"{base}/_blobs/uploads/{token}"
        return resp

    def _api_CreateSubmission(self, body: dict, base: str):
        req = ApiCreateSubmissionRequest.from_dict(body)
        d = self.comp_dir(req.competition_name)
        with self.lock:
            upload = self.uploads.get(req.blob_file_tokens)
        if upload is None or upload["data"] is None or upload["slug"] != req.competition_name:
            raise HttpError(400, "Invalid or expired blob file token; upload the file first")
        meta = self.meta(req.competition_name)
        if meta.code:
            raise HttpError(400, f"{meta.title} is a code competition: it accepts submissions from notebooks only")
        self._check_limit(req.competition_name)
        public, private, error = score_submission(d, meta, upload["data"])
        with self.lock:
            self.uploads.pop(req.blob_file_tokens, None)  # a token is good for one submission
            sub = Submission(ref=self._new_ref(), slug=req.competition_name,
                             date=datetime.now(UTC).replace(tzinfo=None), description=req.submission_description or "",
                             file_name=upload["file_name"], total_bytes=len(upload["data"]),
                             ready_at=time.time() + self.score_delay, public_score=public, private_score=private,
                             error=error)
            self.submissions.append(sub)
        resp = ApiCreateSubmissionResponse()
        resp.ref = sub.ref
        resp.message = f"Successfully submitted to {meta.title}"
        return resp

    def _new_ref(self) -> int:
        """The next submission ref (called under the lock); kept in `root/.next-ref`."""
        try:
            ref = int(self._ref_file.read_text())
        except (OSError, ValueError):
            ref = 50_000_001
        atomic_write_text(self._ref_file, str(ref + 1))
        return ref

    def _check_limit(self, slug: str) -> None:
        today, _ = self._counts(slug)
        if today >= self.daily_limit:
            raise HttpError(400, f"Your team has used its daily Submission allowance ({self.daily_limit}) today, "
                                 "please try again tomorrow UTC")

    def evaluation_metric(self, meta: CompetitionMeta) -> str:
        """The metric as Kaggle's competition list names it: the scoring kit competition's, in Kaggle's words."""
        from kit.scaffold.kaggle_metrics import KAGGLE_NAME

        metric = str(registry.get(meta.competition).metric)
        return KAGGLE_NAME.get(metric, metric)

    def _api_ListCompetitions(self, body: dict, base: str):
        req = ApiListCompetitionsRequest.from_dict(body)
        term = (req.search or "").lower()
        out = []
        for d in sorted(p for p in self.root.iterdir() if (p / ".competition.json").is_file()):
            meta = self.meta(d.name)
            if term in meta.slug.lower() or term in meta.title.lower():
                c = ApiCompetition()
                c.ref, c.title = f"{base}/competitions/{meta.slug}", meta.title  # Kaggle's refs are URLs now
                c.url = c.ref
                c.is_kernels_submissions_only = meta.code
                c.evaluation_metric = self.evaluation_metric(meta)
                c.max_daily_submissions = self.daily_limit
                c.user_has_entered = True
                out.append(c)
        resp = ApiListCompetitionsResponse()
        resp.competitions = out[: req.page_size or 20]
        return resp

    def _api_CreateCodeSubmission(self, body: dict, base: str):
        req = ApiCreateCodeSubmissionRequest.from_dict(body)
        meta = self.meta(req.competition_name)
        if not meta.code:
            raise HttpError(400, f"{meta.title} is not a code competition: submit a file, not a notebook")
        vdir = self.kernels.version_dir(req.kernel_owner, req.kernel_slug,
                                        str(req.kernel_version) if req.kernel_version else None)
        version = int(vdir.name[1:])
        kmeta = self.kernels.version_meta(vdir)
        if kmeta["enable_internet"]:
            raise HttpError(400, f"Notebook {req.kernel_owner}/{req.kernel_slug} version {version} has internet "
                                 "access enabled; submissions to this competition must have it disabled")
        if meta.slug not in kmeta["competition_sources"]:
            raise HttpError(400, f"Notebook {req.kernel_owner}/{req.kernel_slug} does not use {meta.slug}'s data")
        session = self.kernels.session(vdir)
        if session["status"] != "COMPLETE":
            raise HttpError(400, f"Notebook version {version} has not completed successfully "
                                 f"({session['status'].lower()}); only a completed version can be submitted")
        file_name = req.file_name or "submission.csv"
        self._check_limit(meta.slug)
        with self.lock:
            sub = Submission(ref=self._new_ref(), slug=meta.slug, date=datetime.now(UTC).replace(tzinfo=None),
                             description=req.submission_description or "", file_name=file_name, total_bytes=0,
                             ready_at=float("inf"), kernel=f"{req.kernel_owner}/{req.kernel_slug}/{version}")
            self.submissions.append(sub)
        comp_dir = self.comp_dir(meta.slug)

        def scored(result, failure: str) -> None:  # the scoring rerun has ended
            out = None if result is None else vdir / f"submission-{sub.ref}" / "kaggle" / "working" / file_name
            if failure:
                error, public, private = failure, None, None
            elif out is None or not out.is_file():
                error, public, private = f"Submission CSV Not Found: the notebook wrote no {file_name}", None, None
            else:
                public, private, error = score_submission(comp_dir, meta, out.read_bytes())
                sub.total_bytes = out.stat().st_size
            with self.lock:
                sub.public_score, sub.private_score, sub.error = public, private, error
                sub.ready_at = time.time() + self.score_delay

        self.kernels.rerun(req.kernel_owner, req.kernel_slug, version, f"submission-{sub.ref}", scored)
        resp = ApiCreateCodeSubmissionResponse()
        resp.ref = sub.ref
        resp.message = f"Successfully submitted notebook version {version} to {meta.title}"
        return resp

    def _api_StartBlobUpload(self, body: dict, base: str):
        req = ApiStartBlobUploadRequest.from_dict(body)
        if not req.name:
            raise HttpError(400, "A blob needs a name")
        token = secrets.token_urlsafe(18)
        with self.lock:
            self.uploads[token] = {"slug": None, "file_name": req.name, "content_length": req.content_length,
                                   "data": None}
        resp = ApiStartBlobUploadResponse()
        resp.token = token
        resp.create_url = f"{base}/_blobs/uploads/{token}"
        return resp

    def take_blob(self, token: str) -> tuple[str, bytes]:
        """(file name, bytes) of a finished blob upload, consumed; HTTP 400 for an unknown or unfinished one."""
        with self.lock:
            upload = self.uploads.get(token)
            if upload is None or upload["data"] is None or upload["slug"] is not None:
                raise HttpError(400, "Invalid or expired blob token; upload the file first")
            del self.uploads[token]
        return upload["file_name"], upload["data"]

    def _api_ListSubmissions(self, body: dict, base: str):
        req = ApiListSubmissionsRequest.from_dict(body)
        self.comp_dir(req.competition_name)
        now = time.time()
        with self.lock:
            subs = sorted((s for s in self.submissions if s.slug == req.competition_name),
                          key=lambda s: s.ref, reverse=True)
        size = req.page_size or 20
        start = int(req.page_token) if req.page_token else ((req.page or 1) - 1) * size
        resp = ApiListSubmissionsResponse()
        resp.submissions = [s.api(now, self.username) for s in subs[start:start + size]]
        if start + size < len(subs):
            resp.next_page_token = str(start + size)
        return resp

    def _api_GetSubmission(self, body: dict, base: str):
        req = ApiGetSubmissionRequest.from_dict(body)
        with self.lock:
            sub = next((s for s in self.submissions if s.ref == req.ref), None)
        if sub is None:
            raise HttpError(404, f"Submission {req.ref} not found")
        return sub.api(time.time(), self.username)

    def introspect(self, body: dict) -> bytes:
        """security.OAuthService/IntrospectToken: active when the token is this sandbox's."""
        req = IntrospectTokenRequest.from_dict(body)
        resp = IntrospectTokenResponse()
        if self.token and hmac.compare_digest(req.token, self.token):
            resp.active = True
            resp.username = self.username
        return resp.to_json().encode()

    def receive_upload(self, token: str, data: bytes, content_range: str | None) -> tuple[int, dict, bytes]:
        """PUT of the submission bytes to the createUrl (a resume probe `bytes */N` answers 200 or 308)."""
        with self.lock:
            upload = self.uploads.get(token)
            if upload is None:
                raise HttpError(404, "Upload not found or expired")
            if content_range and content_range.startswith("bytes */"):
                return (200, {}, b"") if upload["data"] is not None else (308, {}, b"")
            upload["data"] = data
        return 200, {"Content-Type": "application/json"}, b"{}"


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # a client that went away mid-answer (killed, timed out) is expected here, not a traceback
        log.debug("sandbox: connection from %s ended with an error", client_address, exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kit-kaggle-sandbox/1"

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, headers: dict, body: bytes, route: str) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._record[2] = status
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self, route: str) -> None:
        self._record[2] = 0  # 0: dropped without an answer
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def _error(e: HttpError, retry_after: float | None = None) -> tuple[int, dict, bytes]:
        headers = {"Content-Type": "application/json"}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        return e.status, headers, json.dumps({"code": e.status, "message": e.message}).encode()

    def _route(self) -> tuple[str, str]:
        """(route name for faults and the log, path) of this request; proxy-style absolute targets accepted."""
        path = unquote(urlsplit(self.path).path)
        for prefix in ("/api/v1/", "/v1/"):
            if path.startswith(prefix):
                return path[len(prefix):].rsplit("/", 1)[-1], path
        if path.startswith("/_blobs/uploads/"):
            return "upload", path
        if path.startswith("/_blobs/competitions/"):
            return "download", path
        if path.startswith("/_blobs/kernels/"):
            return "kernel-output", path
        return path, path

    def _handle(self) -> None:
        route, path = self._route()
        self._record: list = [self.command, route, None]  # logged on arrival; the status once answered
        with self.sandbox.lock:
            self.sandbox.requests.append(self._record)
        body = self._body()
        if path.startswith("/_sandbox/"):
            self._send(*self._control(path, body), route)
            return
        fault = self.sandbox.take_fault(route)
        if fault is not None and not fault.after:
            time.sleep(fault.delay)
            if fault.drop:
                return self._drop(route)
            if fault.status:
                return self._send(*self._error(HttpError(fault.status, f"sandbox fault: HTTP {fault.status}"),
                                               fault.retry_after), route)
        try:
            result = self._dispatch(route, path, body)
        except HttpError as e:
            result = self._error(e)
        except Exception as e:  # a bug here must still answer, as a 500
            log.exception("sandbox: %s failed", route)
            result = self._error(HttpError(500, f"sandbox internal error: {type(e).__name__}"))
        if fault is not None and fault.after:
            time.sleep(fault.delay)
            if fault.drop:
                return self._drop(route)
            if fault.status:
                result = self._error(HttpError(fault.status, f"sandbox fault: HTTP {fault.status}"), fault.retry_after)
        self._send(*result, route)

    def _base(self) -> str:
        return f"http://{self.headers.get('Host') or f'127.0.0.1:{self.sandbox.port}'}"

    def _dispatch(self, route: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
        sb = self.sandbox
        if path.startswith(("/api/v1/", "/v1/")) and self.command == "POST":
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                raise HttpError(400, "Request body is not JSON") from None
            if path.endswith(f"{OAUTH_SERVICE}/IntrospectToken"):
                return 200, {"Content-Type": "application/json"}, sb.introspect(payload)
            service = path.rsplit("/", 2)[-2]
            sb.check_auth(self.headers.get("Authorization"))
            return sb.api(route, payload, self._base(), service)
        if route == "upload" and self.command == "PUT":
            return sb.receive_upload(path.rsplit("/", 1)[-1], body, self.headers.get("Content-Range"))
        if route == "download" and self.command in ("GET", "HEAD"):
            return self._blob(path)
        if route == "kernel-output" and self.command in ("GET", "HEAD"):
            p = sb.kernels.output_file(path[len("/_blobs/kernels/"):])
            return 200, {"Content-Type": "application/octet-stream"}, p.read_bytes()
        raise HttpError(404, f"Not found: {self.command} {path}")

    def _blob(self, path: str) -> tuple[int, dict, bytes]:
        parts = path[len("/_blobs/competitions/"):].split("/", 1)
        slug = parts[0]
        if len(parts) == 2 and parts[1].startswith("files/"):
            name = parts[1][len("files/"):]
            d = self.sandbox.comp_dir(slug)
            p = d / name
            if name not in {q.relative_to(d).as_posix() for q in self.sandbox.public_files(slug)}:
                raise HttpError(404, f"File '{name}' not found")
            data, mtime, ctype = p.read_bytes(), p.stat().st_mtime, "application/octet-stream"
        elif len(parts) == 2 and parts[1] == f"{slug}.zip":
            (data, mtime), ctype = self.sandbox.zip_bytes(slug), "application/zip"
        else:
            raise HttpError(404, f"Not found: {path}")
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        headers = {"Content-Type": ctype, "Accept-Ranges": "bytes", "ETag": etag,
                   "Last-Modified": email.utils.formatdate(mtime, usegmt=True)}
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and self.headers.get("If-Range", etag) == etag:
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(data) - 1
            if start >= len(data):
                return 416, {"Content-Range": f"bytes */{len(data)}"}, b""
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return 206, headers, data[start:end + 1]
        return 200, headers, data

    def _control(self, path: str, body: bytes) -> tuple[int, dict, bytes]:
        sb = self.sandbox
        js = {"Content-Type": "application/json"}
        if path == "/_sandbox/faults" and self.command == "POST":
            specs = json.loads(body or b"{}")
            known = {f.name for f in fields(Fault)}
            for spec in specs if isinstance(specs, list) else [specs]:
                sb.add_fault(Fault(**{k: v for k, v in spec.items() if k in known}))
            return 200, js, b"{}"
        if path == "/_sandbox/faults" and self.command == "DELETE":
            with sb.lock:
                sb.faults.clear()
            return 200, js, b"{}"
        if path == "/_sandbox/state" and self.command == "GET":
            return 200, js, json.dumps(sb.state()).encode()
        if path == "/_sandbox/reset" and self.command == "POST":
            with sb.lock:
                sb.faults.clear()
                sb.submissions.clear()
                sb.uploads.clear()
                sb.requests.clear()
            return 200, js, b"{}"
        return self._error(HttpError(404, f"unknown sandbox control {self.command} {path}"))

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()


def client_env(url: str, config_dir: Path | None = None) -> dict[str, str]:
    """Environment variables that send the official client (through `kit`) to the sandbox at `url`."""
    env = {"KAGGLE_API_ENVIRONMENT": "TEST", "HTTP_PROXY": url, "http_proxy": url, "NO_PROXY": "", "no_proxy": ""}
    if config_dir is not None:
        env["KAGGLE_CONFIG_DIR"] = str(config_dir)
    return env
