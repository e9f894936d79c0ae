"""A local Kaggle: the part of Kaggle's API that the official `kaggle` client uses for competitions.

The client (kaggle 2.x / kagglesdk) POSTs JSON to `<endpoint>/api/v1/<service>/<Method>` (see
`kagglesdk/kaggle_http_client.py`); request and response bodies are the `kagglesdk` types, which this
server parses and builds itself:

    competitions.CompetitionApiService/...                   see `kit.sandbox.competitions` (files, submissions)
    PUT <createUrl> (= /_blobs/uploads/<token>)              the file bytes (the client's resumable upload)
    GET /_blobs/competitions/<slug>/...                      a competition's zip or one file (Range honoured)
    blobs.BlobApiService/StartBlobUpload                     dataset files (then PUT as above)
    datasets.DatasetApiService/...                           see `kit.sandbox.datasets`
    kernels.KernelsApiService/...                            see `kit.sandbox.kernels` (runs with no network)
    security.OAuthService/IntrospectToken                    (the client checks KAGGLE_API_TOKEN with it)

This module is the HTTP server, credentials, blob uploads and faults; each service is its own module.

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
import json
import logging
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kagglesdk.blobs.types.blob_api_service import ApiStartBlobUploadRequest, ApiStartBlobUploadResponse
from kagglesdk.security.types.oauth_service import IntrospectTokenRequest, IntrospectTokenResponse

from kit.errors import KitError
from kit.sandbox.competitions import COMPETITION_SERVICE, Competitions
from kit.sandbox.data import CompetitionMeta
from kit.sandbox.datasets import DATASET_SERVICE, Datasets
from kit.sandbox.errors import HttpError
from kit.sandbox.kernels import KERNELS_SERVICE, Kernels, Served

log = logging.getLogger(__name__)

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
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.uploads: dict[str, dict] = {}  # submission and blob uploads, by token
        self.requests: list[list] = []  # [verb, route, status or None while unanswered], in arrival order
        self.competitions = Competitions(self.root, username, self.lock, self.uploads, daily_limit, score_delay)
        self.datasets = Datasets(self.root / ".datasets", username, self.take_blob)
        c = self.competitions
        self.kernels = Kernels(self.root / ".kernels", username, self.datasets,
                               Served(c.comp_dir, c.meta, c.public_files))
        c.kernels = self.kernels
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

    # -- the competitions service's state, read by tests and the demo
    @property
    def submissions(self) -> list:
        """Every submission, in the order made (`kit.sandbox.competitions.Submission`)."""
        return self.competitions.submissions

    @property
    def daily_limit(self) -> int:
        """Submissions allowed per competition per UTC day."""
        return self.competitions.daily_limit

    @daily_limit.setter
    def daily_limit(self, n: int) -> None:
        self.competitions.daily_limit = n

    def meta(self, slug: str) -> CompetitionMeta:
        """The served competition's metadata."""
        return self.competitions.meta(slug)

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
        handlers = {COMPETITION_SERVICE: (self.competitions, "api_"), BLOB_SERVICE: (self, "_api_"),
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
        if len(parts) != 2:
            raise HttpError(404, f"Not found: {path}")
        data, mtime, ctype = self.sandbox.competitions.download(*parts)
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
