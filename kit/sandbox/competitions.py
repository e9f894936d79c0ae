"""The sandbox's competitions service: competitions served from `root/<slug>/` (see `kit.sandbox.data`) and
their submissions, kept in memory and scored as Kaggle scores them.

    competitions.CompetitionApiService/ListDataFiles         ApiListDataFilesRequest -> ApiListDataFilesResponse
    competitions.CompetitionApiService/DownloadDataFiles     -> 302 to GET /_blobs/competitions/<slug>/<slug>.zip
    competitions.CompetitionApiService/DownloadDataFile      -> 302 to GET /_blobs/competitions/<slug>/files/<name>
    competitions.CompetitionApiService/GetSubmissionLimits   -> ApiSubmissionLimits
    competitions.CompetitionApiService/StartSubmissionUpload -> ApiStartSubmissionUploadResponse(token, createUrl)
    competitions.CompetitionApiService/CreateSubmission      ApiCreateSubmissionRequest(blobFileTokens) -> ref
    competitions.CompetitionApiService/ListSubmissions       -> ApiListSubmissionsResponse (scores once ready)
    competitions.CompetitionApiService/GetSubmission         -> ApiSubmission
    competitions.CompetitionApiService/ListCompetitions      -> ApiCompetition list (is_kernels_submissions_only)
    competitions.CompetitionApiService/CreateCodeSubmission  a kernel version: rerun offline, then scored

A code competition (`CompetitionMeta.code`) refuses file submissions, as Kaggle does; a notebook version
submitted to it is run again with no network under the competition's runtime and memory caps (`kit.sandbox.kernels`),
and its submission.csv is scored like an uploaded file.
"""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
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

from kit import registry
from kit.errors import KitError
from kit.io import atomic_write_text
from kit.sandbox.data import PRIVATE_FILES, SOLUTION_FILE, CompetitionMeta
from kit.sandbox.errors import HttpError

log = logging.getLogger(__name__)

COMPETITION_SERVICE = "competitions.CompetitionApiService"


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


# ---- the service ------------------------------------------------------------------------------------------


class Competitions:
    """The competitions under `root/<slug>/` and their submissions, as CompetitionApiService answers for them.

    `lock` and `uploads` are the sandbox's: an upload started here is finished by its PUT to the createUrl.
    `kernels` is set by the sandbox once built (its kernels read the competitions back through `Served`).
    """

    def __init__(self, root: Path, username: str, lock: threading.Lock, uploads: dict[str, dict],
                 daily_limit: int = 5, score_delay: float = 0.0):
        self.root = Path(root)
        self.username = username
        self.lock = lock
        self.uploads = uploads
        self.daily_limit = daily_limit
        self.score_delay = score_delay
        self.submissions: list[Submission] = []
        self.kernels = None
        self._zips: dict[tuple, bytes] = {}
        self._ref_file = self.root / ".next-ref"  # refs keep rising across restarts, as Kaggle's never repeat

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

    def download(self, slug: str, rest: str) -> tuple[bytes, float, str]:
        """(bytes, mtime, content type) of GET /_blobs/competitions/<slug>/<rest>: one public file or the zip."""
        if rest.startswith("files/"):
            name = rest[len("files/"):]
            d = self.comp_dir(slug)
            if name not in {q.relative_to(d).as_posix() for q in self.public_files(slug)}:
                raise HttpError(404, f"File '{name}' not found")
            p = d / name
            return p.read_bytes(), p.stat().st_mtime, "application/octet-stream"
        if rest == f"{slug}.zip":
            data, mtime = self.zip_bytes(slug)
            return data, mtime, "application/zip"
        raise HttpError(404, f"Not found: /_blobs/competitions/{slug}/{rest}")

    def api_ListDataFiles(self, body: dict, base: str):
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

    def api_DownloadDataFiles(self, body: dict, base: str):
        req = ApiDownloadDataFilesRequest.from_dict(body)
        self.comp_dir(req.competition_name)
        slug = req.competition_name
        return 302, {"Location": f"{base}/_blobs/competitions/{slug}/{slug}.zip"}, b""

    def api_DownloadDataFile(self, body: dict, base: str):
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

    def api_GetSubmissionLimits(self, body: dict, base: str):
        req = ApiGetSubmissionLimitsRequest.from_dict(body)
        self.comp_dir(req.competition_name)
        today, total = self._counts(req.competition_name)
        lim = ApiSubmissionLimits()
        lim.num_today = today
        lim.num_total = total
        lim.num_allowed_now = max(0, self.daily_limit - today)
        return lim

    def api_StartSubmissionUpload(self, body: dict, base: str):
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

    def api_CreateSubmission(self, body: dict, base: str):
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

    def api_ListCompetitions(self, body: dict, base: str):
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

    def api_CreateCodeSubmission(self, body: dict, base: str):
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

    def api_ListSubmissions(self, body: dict, base: str):
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

    def api_GetSubmission(self, body: dict, base: str):
        req = ApiGetSubmissionRequest.from_dict(body)
        with self.lock:
            sub = next((s for s in self.submissions if s.ref == req.ref), None)
        if sub is None:
            raise HttpError(404, f"Submission {req.ref} not found")
        return sub.api(time.time(), self.username)
