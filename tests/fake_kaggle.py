"""A fake Kaggle API on 127.0.0.1 speaking the JSON-over-HTTP protocol of ``kagglesdk``.

The real ``kaggle`` client POSTs JSON to ``/api/v1/<service>/<Method>``; errors
come back as ``{"code": N, "message": "..."}`` with status N. Implemented:

- ``security.OAuthService/IntrospectToken``            (KAGGLE_API_TOKEN authentication)
- ``competitions.CompetitionApiService/DownloadDataFiles`` -> 302 to ``/storage/<slug>.zip``
- ``.../StartSubmissionUpload`` -> an upload URL; ``PUT /upload/<token>`` stores the file
- ``.../CreateSubmission`` and ``.../ListSubmissions`` (PENDING for a few polls, then COMPLETE or ERROR)
- ``kernels.KernelsApiService/SaveKernel``, ``.../GetKernelSessionStatus`` (each push starts a run that goes through
  ``kernel_statuses``, one step a poll, e.g. QUEUED -> RUNNING -> COMPLETE, or ERROR with ``kernel_failure``) and
  ``.../ListKernelSessionOutput`` (``kernel_files``, pageSize at a time, and ``kernel_log``) -> ``GET /kernel-output/<name>``

Bounded: it binds 127.0.0.1 on a free port, answers at most ``max_requests``
requests, sockets time out, and the fixture stops it.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMPETITIONS = "competitions.CompetitionApiService"
KERNELS = "kernels.KernelsApiService"
OAUTH = "security.OAuthService"

RULES_MESSAGE = "You must accept this competition's rules before you'll be able to download files."
LIMIT_MESSAGE = (
    "Submission not allowed: Your team has used its daily Submission allowance (5) today, "
    "please try again tomorrow UTC (9.2 hours from now)."
)


@dataclass
class Failure:
    status: int
    message: str = ""
    json_body: bool = True
    delay: float = 0.0  # seconds to stall before answering (simulates a hung server)
    times: int = 0  # answer this many requests so, then behave again (0: every request)


@dataclass
class Submission:
    ref: int
    file_name: str
    description: str
    content: bytes
    date: str
    polls: int = 0


@dataclass
class FakeKaggle:
    """State and knobs of the fake API. ``failures`` maps a method name (e.g. "CreateSubmission") to a Failure."""

    slug: str = "digit-recognizer"
    username: str = "fakeuser"
    key: str = ""
    token: str = ""
    zip_bytes: bytes = b""
    answers: dict = field(default_factory=dict)  # ImageId -> Label, to score uploads
    expected_rows: int = 0
    pending_polls: int = 1
    max_requests: int = 400
    failures: dict = field(default_factory=dict)
    log: list = field(default_factory=list)  # (method, path, authorised)
    uploads: dict = field(default_factory=dict)
    submissions: list = field(default_factory=list)
    kernels: list = field(default_factory=list)  # SaveKernel request bodies
    known_kernels: list = field(default_factory=list)  # "user/slug" of kernels that exist without a push
    kernel_statuses: list = field(default_factory=lambda: ["RUNNING", "COMPLETE"])  # one a poll; the last one stays
    kernel_failure: str = ""  # failureMessage with an ERROR status
    kernel_files: dict = field(default_factory=dict)  # output file name -> bytes
    kernel_log: str = ""
    kernel_polls: int = 0
    port: int = 0
    _server: object = None
    _thread: object = None

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKaggle:
        fake = self

        class Handler(_Handler):
            state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.log]

    # ------------------------------------------------------------ behaviour
    def authorised(self, header: str) -> bool:
        if header.startswith("Basic "):
            try:
                user, _, key = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return bool(self.key) and user == self.username and key == self.key
        if header.startswith("Bearer "):
            return bool(self.token) and header[7:] == self.token
        return False

    def score(self, content: bytes) -> tuple[str, str]:
        """(public score, error description) for an uploaded file."""
        rows = list(csv.reader(io.StringIO(content.decode("utf-8", "replace"))))
        if not rows or rows[0] != ["ImageId", "Label"]:
            return "", "Submission file header must be 'ImageId,Label'"
        body = rows[1:]
        if self.expected_rows and len(body) != self.expected_rows:
            return "", f"Submission must have {self.expected_rows} rows (found {len(body)})"
        if not self.answers:
            return "0.99000", ""
        correct = sum(1 for image_id, label in body if self.answers.get(int(image_id)) == int(label))
        return f"{correct / len(self.answers):.5f}", ""


class _Handler(BaseHTTPRequestHandler):
    state: FakeKaggle = None
    timeout = 10  # socket timeout: a stuck client cannot hold a thread forever
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    # ------------------------------------------------------------ plumbing
    def _send(
        self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: dict, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode())

    def _error(self, status: int, message: str) -> None:
        self._json({"code": status, "message": message}, status)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _admit(self, method: str) -> bool:
        """Count the request, apply an injected failure; False when it has been answered already."""
        state = self.state
        authorised = state.authorised(self.headers.get("Authorization", ""))
        state.log.append((method, self.path, authorised))
        if len(state.log) > state.max_requests:
            self._error(503, "fake server request budget exhausted")
            return False
        failure = state.failures.get(method)
        if failure is not None:
            if failure.times:
                failure.times -= 1
                if not failure.times:
                    del state.failures[method]
            if failure.delay:
                time.sleep(min(failure.delay, 5.0))
            if failure.json_body:
                self._error(failure.status, failure.message)
            else:
                self._send(failure.status, (failure.message or "error").encode(), "text/html")
            return False
        if method not in ("upload", "kernel-output") and not method.startswith("storage") and not authorised:
            self._error(401, "Unauthenticated")
            return False
        return True

    # ------------------------------------------------------------ routes
    def do_GET(self) -> None:
        state = self.state
        path = self.path.split("?")[0]
        if path.startswith("/kernel-output/"):
            if not self._admit("kernel-output"):
                return
            name = urllib.parse.unquote(path[len("/kernel-output/") :])
            if name in state.kernel_files:
                self._send(200, state.kernel_files[name], "application/octet-stream")
            else:
                self._send(404, b"not found", "text/plain")
            return
        if not self._admit("storage"):
            return
        if path == f"/storage/{state.slug}.zip" and state.zip_bytes:
            self._send(200, state.zip_bytes, "application/zip")
        else:
            self._send(404, b"not found", "text/plain")

    def do_PUT(self) -> None:
        state = self.state
        data = self._body()
        if not self._admit("upload"):
            return
        token = self.path.split("?")[0].rsplit("/", 1)[-1]
        if token not in state.uploads:
            self._send(404, b"unknown upload", "text/plain")
            return
        state.uploads[token]["content"] = data
        self._send(200, b"{}")

    def do_POST(self) -> None:
        state = self.state
        raw = self._body()
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["api", "v1"]:
            self._admit("unknown")
            self._error(404, "no such endpoint")
            return
        service, method = parts[2], parts[3]
        if service == OAUTH and method == "IntrospectToken":  # a token check authenticates itself
            state.log.append((method, self.path, True))
            request = json.loads(raw or b"{}")
            if state.failures.get(method):
                failure = state.failures[method]
                self._error(failure.status, failure.message)
                return
            active = bool(state.token) and request.get("token") == state.token
            self._json({"active": active, "username": state.username if active else ""})
            return
        if not self._admit(method):
            return
        request = json.loads(raw or b"{}")
        handler = getattr(self, f"_{service.split('.')[0]}_{method}", None)
        if handler is None:
            self._error(404, f"{service}/{method} is not implemented by the fake server")
            return
        handler(request)

    # competitions
    def _check_slug(self, request: dict) -> bool:
        if request.get("competitionName") != self.state.slug:
            self._error(404, "Competition not found")
            return False
        return True

    def _competitions_DownloadDataFiles(self, request: dict) -> None:
        if self._check_slug(request):
            self._send(302, b"", "text/plain", {"Location": f"/storage/{self.state.slug}.zip?sig=abc123"})

    def _competitions_StartSubmissionUpload(self, request: dict) -> None:
        if not self._check_slug(request):
            return
        token = f"blob-{len(self.state.uploads) + 1}"
        self.state.uploads[token] = {"file_name": request.get("fileName", ""), "content": None}
        self._json({"token": token, "createUrl": f"{self.state.url}/upload/{token}"})

    def _competitions_CreateSubmission(self, request: dict) -> None:
        state = self.state
        if not self._check_slug(request):
            return
        upload = state.uploads.get(request.get("blobFileTokens"))
        if upload is None or upload["content"] is None:
            self._error(400, "Unknown or incomplete upload")
            return
        ref = 50000 + len(state.submissions) + 1
        state.submissions.append(
            Submission(
                ref,
                upload["file_name"],
                request.get("submissionDescription", ""),
                upload["content"],
                time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            )
        )
        self._json({"message": "Successfully submitted to Digit Recognizer", "ref": ref})

    def _competitions_ListSubmissions(self, request: dict) -> None:
        state = self.state
        if not self._check_slug(request):
            return
        items = []
        for submission in reversed(state.submissions):
            submission.polls += 1
            item = {
                "ref": submission.ref,
                "date": submission.date,
                "description": submission.description,
                "fileName": submission.file_name,
                "totalBytes": len(submission.content),
                "status": "PENDING",
            }
            if submission.polls > state.pending_polls:
                score, error = state.score(submission.content)
                if error:
                    item.update(status="ERROR", errorDescription=error)
                else:
                    item.update(status="COMPLETE", publicScore=score, privateScore="")
            items.append(item)
        self._json({"submissions": items[: int(request.get("pageSize") or 20)]})

    # kernels
    def _kernels_SaveKernel(self, request: dict) -> None:
        state = self.state
        state.kernels.append(request)
        state.kernel_polls = 0  # a new version: a new run
        slug = request.get("slug", "")
        self._json(
            {
                "ref": f"/code/{slug}",
                "url": f"{state.url}/code/{slug}",
                "versionNumber": len(state.kernels),
                "invalidTags": [],
                "invalidDatasetSources": [],
                "invalidCompetitionSources": [],
                "invalidKernelSources": [],
                "kernelId": 777,
            }
        )

    def _known_kernel(self, request: dict) -> bool:
        state = self.state
        kernel = f"{request.get('userName')}/{request.get('kernelSlug')}"
        if kernel in state.known_kernels or (state.kernels and kernel == state.kernels[-1].get("slug")):
            return True
        self._error(404, "Kernel not found")
        return False

    def _kernels_GetKernelSessionStatus(self, request: dict) -> None:
        state = self.state
        if not self._known_kernel(request):
            return
        state.kernel_polls += 1
        status = state.kernel_statuses[min(state.kernel_polls, len(state.kernel_statuses)) - 1]
        answer = {"status": status}
        if status == "ERROR" and state.kernel_failure:
            answer["failureMessage"] = state.kernel_failure
        self._json(answer)

    def _kernels_ListKernelSessionOutput(self, request: dict) -> None:
        state = self.state
        if not self._known_kernel(request):
            return
        names = sorted(state.kernel_files)
        start = int(request.get("pageToken") or 0)
        size = int(request.get("pageSize") or 20)
        page = names[start : start + size]
        answer = {
            "files": [
                {"fileName": name, "url": f"{state.url}/kernel-output/{urllib.parse.quote(name)}"} for name in page
            ],
            "log": state.kernel_log,
        }
        if start + size < len(names):
            answer["nextPageToken"] = str(start + size)
        self._json(answer)


# ---------------------------------------------------------------- pytest fixtures and helpers
# Registered for every test module by conftest.py (pytest_plugins); the helpers are imported where used.
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ENDPOINT_ENV = "DIGIT_RECOGNIZER_KAGGLE_ENDPOINT"
TIMEOUT_ENV = "DIGIT_RECOGNIZER_KAGGLE_TIMEOUT"
SECRET_KEY = "s3cr3t-k3y-5f1d0c9a77"
SECRET_TOKEN = "kgat_t0k3n-8b2e7d41c3"
SECRETS = (SECRET_KEY, SECRET_TOKEN)
USERNAME = "fakeuser"


@pytest.fixture
def kaggle_home(tmp_path_factory, monkeypatch):
    """A fresh HOME (outside the test's project folder) without any Kaggle credentials or Kaggle/project
    variables, for this process and run_cli's."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if (
            name.startswith(("KAGGLE_", "DIGIT_RECOGNIZER_"))
            or name.lower().endswith("_proxy")
            or name in ("XDG_CONFIG_HOME", "VERBOSE", "VERBOSE_OUTPUT")
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def fake_kaggle(kaggle_home, monkeypatch):
    """The fake API on 127.0.0.1, with the client pointed at it; stopped after the test."""
    fake = FakeKaggle(username=USERNAME, key=SECRET_KEY, token=SECRET_TOKEN).start()
    monkeypatch.setenv(ENDPOINT_ENV, fake.url)
    monkeypatch.setenv(TIMEOUT_ENV, "10")
    try:
        yield fake
    finally:
        fake.stop()


def write_kaggle_json(home: Path, username: str = USERNAME, key: str = SECRET_KEY, mode: int = 0o600) -> Path:
    folder = Path(home) / ".kaggle"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kaggle.json"
    path.write_text(json.dumps({"username": username, "key": key}), encoding="utf-8")
    os.chmod(path, mode)
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_no_secrets(*texts: str, folders=(), skip=()) -> None:
    """No credential string in the texts or in any file below the folders (except the ``skip`` paths)."""
    skip = {Path(path).resolve() for path in skip}
    for text in texts:
        for secret in SECRETS:
            assert secret not in (text or ""), f"a credential leaked into output: {text[:200]!r}"
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if path.is_file() and path.resolve() not in skip:
                data = path.read_bytes()
                for secret in SECRETS:
                    assert secret.encode() not in data, f"a credential was written to {path}"


def error_line(result) -> str:
    """The single ``error: ...`` line of a failed run (asserting there is exactly one line and no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def competition_zip(competition, frames) -> bytes:
    """The competition's three files in Kaggle's zip layout, from the sample frames."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, frame in zip(competition.file_names, frames):
            archive.writestr(name, frame.to_csv(index=False))
    return buffer.getvalue()
