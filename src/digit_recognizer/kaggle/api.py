"""The one module that talks to Kaggle, through the official ``kaggle`` client.

Everything here goes through :class:`kaggle.api.kaggle_api_extended.KaggleApi`
(downloads, submissions, kernels). The client is imported lazily: importing it
prints an authentication banner, may call the network, and ``authenticate()``
calls ``exit(1)`` when there are no credentials. Each failure Kaggle or the
network can cause becomes one :class:`~digit_recognizer.errors.UserError` line
saying what to do.

Credentials come only from the client's own mechanisms (``~/.kaggle/kaggle.json``
or ``$KAGGLE_CONFIG_DIR/kaggle.json``, ``KAGGLE_USERNAME``/``KAGGLE_KEY``,
``KAGGLE_API_TOKEN``, ``~/.kaggle/access_token``). They are never printed,
logged or written: every message built from a server answer or an exception is
scrubbed of them, and the client's verbose mode (which prints request headers)
is never enabled.

Testing against a stand-in server: ``DIGIT_RECOGNIZER_KAGGLE_ENDPOINT=http://127.0.0.1:PORT``
points the client at that address (its ``LOCALHOST`` environment, with the
endpoint replaced). Only loopback addresses are accepted, so the variable can
never send credentials anywhere else. ``DIGIT_RECOGNIZER_KAGGLE_TIMEOUT``
(seconds, default 60) bounds each request; the client itself sets no timeout.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import os
import stat
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from digit_recognizer.errors import UserError

ENDPOINT_ENV = "DIGIT_RECOGNIZER_KAGGLE_ENDPOINT"
TIMEOUT_ENV = "DIGIT_RECOGNIZER_KAGGLE_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
API_SETTINGS_URL = "https://www.kaggle.com/settings/api"


def no_credentials_message() -> str:
    """What to do without credentials, naming the folder the client really looks in (KAGGLE_CONFIG_DIR when set)."""
    return (
        f"no Kaggle credentials: put kaggle.json in {_config_dir()}/ or set KAGGLE_USERNAME and KAGGLE_KEY "
        f"(or KAGGLE_API_TOKEN); create a token at {API_SETTINGS_URL}"
    )


BAD_CREDENTIALS = (
    "Kaggle rejected the credentials (HTTP 401): create a new API token at "
    f"{API_SETTINGS_URL} and update ~/.kaggle/kaggle.json, KAGGLE_USERNAME/KAGGLE_KEY or KAGGLE_API_TOKEN"
)
TOKEN_REJECTED = (
    "Kaggle did not accept the API token (KAGGLE_API_TOKEN or ~/.kaggle/access_token): "
    f"it may be expired or revoked; create a new one at {API_SETTINGS_URL}"
)


class KaggleError(UserError):
    """A UserError from talking to Kaggle; ``retryable`` when trying again later may succeed (5xx, network)."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


# ---------------------------------------------------------------- credentials
def _config_dir() -> Path:
    """The client's configuration folder, found the way ``KaggleApi`` finds it."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    home_dir = Path(os.path.expanduser("~")) / ".kaggle"
    if sys.platform.startswith("linux") and not home_dir.exists():
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return Path(xdg) / "kaggle"
    return home_dir


def kaggle_json_path() -> Path:
    return _config_dir() / "kaggle.json"


def read_json_object(path: Path) -> dict:
    """A JSON file's object, or {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _token_files() -> list[Path]:
    home = Path(os.path.expanduser("~")) / ".kaggle"
    return [home / "access_token", home / "access_token.txt"]


def _access_token() -> str:
    """An access token from KAGGLE_API_TOKEN (a value or a file) or ~/.kaggle/access_token, as the client reads it."""
    value = os.environ.get("KAGGLE_API_TOKEN", "")
    if value:
        if os.path.exists(value):
            return _read_text(Path(value))
        return value
    for path in _token_files():
        token = _read_text(path)
        if token:
            return token
    return ""


def _legacy_credentials() -> tuple[str, str]:
    """(username, key) from kaggle.json overlaid with KAGGLE_USERNAME / KAGGLE_KEY, as the client merges them."""
    config = read_json_object(kaggle_json_path())
    username = os.environ.get("KAGGLE_USERNAME") or str(config.get("username") or "")
    key = os.environ.get("KAGGLE_KEY") or str(config.get("key") or "")
    return username, key


def _oauth_credentials() -> dict:
    data = read_json_object(Path(os.path.expanduser("~")) / ".kaggle" / "credentials.json")
    return data if data.get("refresh_token") else {}


def has_credentials() -> bool:
    """Whether the client would find credentials (without importing it, so without any network call)."""
    username, key = _legacy_credentials()
    return bool(_access_token() or (username and key) or _oauth_credentials())


def username() -> str:
    """The Kaggle user name the credentials name, when they name one (kaggle.json or KAGGLE_USERNAME)."""
    return _legacy_credentials()[0] or str(_oauth_credentials().get("username") or "")


def _secrets() -> list[str]:
    """Every credential value present, longest first, for scrubbing text."""
    values = {
        _access_token(),
        _legacy_credentials()[1],
        os.environ.get("KAGGLE_KEY", ""),
        os.environ.get("KAGGLE_API_TOKEN", ""),
    }
    for path in _token_files():
        values.add(_read_text(path))
    oauth = _oauth_credentials()
    values.update(str(oauth.get(name) or "") for name in ("refresh_token", "access_token"))
    return sorted((value for value in values if len(value) >= 4), key=len, reverse=True)


def scrub(text: str) -> str:
    """``text`` with every credential value replaced by ``***``."""
    text = str(text)
    for secret in _secrets():
        text = text.replace(secret, "***")
    return text


def credential_file_warnings() -> list[str]:
    """Warnings for credential files that users other than the owner can read."""
    warnings = []
    for path in (kaggle_json_path(), *_token_files()):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(f"{path} is readable by other users; run `chmod 600 {path}`")
    return warnings


# ---------------------------------------------------------------- the client
def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_override() -> str | None:
    """The loopback endpoint from $DIGIT_RECOGNIZER_KAGGLE_ENDPOINT, or None for Kaggle itself."""
    value = os.environ.get(ENDPOINT_ENV, "").strip()
    if not value:
        return None
    parts = urllib.parse.urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if (
        parts.scheme != "http"
        or not parts.hostname
        or not _is_loopback(parts.hostname)
        or parts.path.strip("/")
        or parts.query
        or port is None
    ):
        raise UserError(
            f"{ENDPOINT_ENV} must be a loopback address like http://127.0.0.1:PORT "
            f"(a local stand-in for Kaggle's API), got '{value}'; unset it to use Kaggle"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"http://{host}:{port}"


def request_timeout() -> float:
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise UserError(f"{TIMEOUT_ENV} must be a number of seconds, got '{text}'") from None
    return value if value > 0 else DEFAULT_TIMEOUT


_API = None


def _import_client():
    """Import the official client with its import-time output captured (and pointed at the override, if any)."""
    endpoint = endpoint_override()
    if endpoint:
        # Before the client is imported: its package __init__ authenticates at import time.
        os.environ["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
        from digit_recognizer.compat import point_kagglesdk_at

        point_kagglesdk_at(endpoint)
        # Keep the traffic on this machine even when a proxy is configured (the upload and
        # download requests use their own sessions, which read these variables).
        host = urllib.parse.urlsplit(endpoint).hostname
        for name in ("NO_PROXY", "no_proxy"):
            present = [item for item in os.environ.get(name, "").split(",") if item]
            os.environ[name] = ",".join(dict.fromkeys([*present, host, "127.0.0.1", "localhost"]))
    with contextlib.redirect_stdout(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi
    return KaggleApi, endpoint


def client():
    """An authenticated ``KaggleApi`` (one per process), or a one-line UserError."""
    global _API
    if _API is not None:
        return _API
    if not has_credentials():
        raise UserError(no_credentials_message())
    for warning in credential_file_warnings():
        print(f"warning: {warning}", file=sys.stderr)
    KaggleApi, endpoint = _import_client()
    timeout = request_timeout()

    from digit_recognizer.compat import bound_client_session

    class _Api(KaggleApi):
        def build_kaggle_client(self):
            kaggle = super().build_kaggle_client()
            bound_client_session(kaggle, timeout, trust_env=not endpoint)
            return kaggle

    api = _Api()
    # Never the client's verbose mode: it prints request headers, credentials included.
    api.args = [arg for arg in KaggleApi.args if arg not in ("--verbose", "-v")]
    if endpoint and "--local" not in api.args:
        api.args.append("--local")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
    except SystemExit:
        token = _access_token()
        raise UserError(TOKEN_REJECTED if token else no_credentials_message()) from None
    except Exception as error:  # the token check calls the network
        raise translate(error, "cannot check the API token with Kaggle") from None
    _API = api
    return api


def reset_client() -> None:
    """Forget the cached client (tests, or after the credentials changed)."""
    global _API
    _API = None


# ---------------------------------------------------------------- failures
@dataclass(frozen=True)
class Subject:
    """What a request was about, for the messages: a competition or a kernel."""

    kind: str  # "competition" or "kernel"
    name: str
    url: str = ""
    rules_url: str = ""


def _competition_subject(competition) -> Subject:
    return Subject("competition", competition.slug, competition.url, competition.rules_url)


def _server_message(error) -> str:
    response = getattr(error, "response", None)
    message = ""
    if response is not None:
        try:
            body = response.json()
            if isinstance(body, dict):
                message = str(body.get("message") or body.get("error") or "")
        except Exception:  # not JSON, or a streamed body already consumed
            message = ""
    if not message:
        message = str(error)
    message = " ".join(scrub(message).split())
    return message[:200]


def is_daily_limit(message: str) -> bool:
    text = message.lower()
    return ("daily" in text or "per day" in text or "today" in text) and (
        "limit" in text or "allowance" in text or "submission" in text
    )


def _http_message(status: int | None, message: str, action: str, subject: Subject) -> str:
    lower = message.lower()
    if status == 401:
        return BAD_CREDENTIALS
    if is_daily_limit(message) or status == 429:
        return (
            f"{action}: daily submission limit reached for {subject.name} ({message}); "
            "the file is kept: submit it again after the limit resets (midnight UTC)"
        )
    if status == 403 and subject.kind == "competition" and ("rule" in lower or "accept" in lower):
        return (
            f"{action}: you must accept this competition's rules first: open {subject.rules_url}, "
            "click 'I Understand and Accept', then run the command again"
        )
    if status == 403:
        if subject.kind == "kernel":
            return (
                f"{action}: permission denied for kernel '{subject.name}' (HTTP 403: {message}); "
                "check the kernel id (owner/slug) belongs to the account of the credentials"
            )
        return (
            f"{action}: permission denied for competition '{subject.name}' (HTTP 403: {message}); "
            f"check the slug in competition/competition.json, that you joined the competition at {subject.rules_url}, "
            "and that the credentials are the right account's"
        )
    if status == 404:
        if subject.kind == "kernel":
            return f"{action}: Kaggle found no kernel '{subject.name}' (HTTP 404); check the kernel id (owner/slug), or push it first"
        return (
            f"{action}: Kaggle found no competition '{subject.name}' (HTTP 404); "
            f"check the slug in competition/competition.json (the competition is {subject.url})"
        )
    if status is not None and status >= 500:
        return f"{action}: Kaggle's server failed (HTTP {status}); this is on Kaggle's side: try again in a few minutes"
    return f"{action}: Kaggle refused the request (HTTP {status}: {message})"


def translate(error: BaseException, action: str, subject: Subject | None = None) -> UserError:
    """One UserError line for an exception raised by the client or ``requests``."""
    import requests

    subject = subject or Subject("competition", "", "", "")
    if isinstance(error, UserError):
        return error
    if isinstance(error, SystemExit):
        return UserError(no_credentials_message())
    if isinstance(error, requests.HTTPError):
        response = error.response
        status = response.status_code if response is not None else None
        return KaggleError(
            _http_message(status, _server_message(error), action, subject),
            retryable=status is not None and (status >= 500 or status == 429),
        )
    text = scrub(str(error))
    if isinstance(error, requests.Timeout) or "timed out" in text.lower():
        return KaggleError(
            f"{action}: Kaggle did not answer within {request_timeout():g} s (timed out); "
            "check the network connection and try again later",
            retryable=True,
        )
    if isinstance(error, requests.ConnectionError):
        reason = "connection refused" if "refused" in text.lower() else "no connection"
        return KaggleError(
            f"{action}: cannot reach Kaggle ({reason}); check the network connection (and proxy settings) "
            "and try again",
            retryable=True,
        )
    if isinstance(error, ValueError):
        return UserError(f"{action}: {' '.join(text.split())[:300]}")
    return UserError(f"{action}: the Kaggle client failed ({type(error).__name__}: {' '.join(text.split())[:200]})")


@contextlib.contextmanager
def _mapped(action: str, subject: Subject | None = None):
    """Run a client call; turn whatever it raises into one UserError line."""
    try:
        yield
    except UserError:
        raise
    except (Exception, SystemExit) as error:
        raise translate(error, action, subject) from None


# ---------------------------------------------------------------- competition data
def download_competition_zip(competition, dest_dir: Path, quiet: bool | None = None) -> Path:
    """Download the competition's zip into ``dest_dir`` with ``competition_download_files``; return its path."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    quiet = (not sys.stderr.isatty()) if quiet is None else quiet
    action = f"cannot download the {competition.slug} data"
    api = client()
    with _mapped(action, _competition_subject(competition)):
        api.competition_download_files(competition.slug, path=str(dest_dir), force=True, quiet=quiet)
    expected = dest_dir / f"{competition.slug}.zip"
    if expected.is_file():
        return expected
    zips = sorted(dest_dir.glob("*.zip"))
    if len(zips) == 1:
        return zips[0]
    raise UserError(
        f"{action}: the Kaggle client saved no zip file in {dest_dir}; try again, "
        f"or download it by hand from {competition.url}/data and run `digit-recognizer fetch --zip FILE`"
    )


# ---------------------------------------------------------------- submissions
@dataclass(frozen=True)
class RemoteSubmission:
    ref: str
    date: str
    file_name: str
    description: str
    status: str  # "pending", "complete" or "error"
    public_score: str
    error: str


def _status_name(value) -> str:
    name = getattr(value, "name", None) or str(value or "")
    return name.rsplit(".", 1)[-1].lower() or "pending"


def _date_text(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def submit(competition, file: Path, message: str, quiet: bool | None = None) -> str:
    """Upload a submission file with ``competition_submit``; return Kaggle's submission reference."""
    file = Path(file)
    quiet = (not sys.stderr.isatty()) if quiet is None else quiet
    action = f"{file.name} not submitted"
    api = client()
    with _mapped(action, _competition_subject(competition)):
        response = api.competition_submit(str(file), message, competition.slug, quiet=quiet)
    answer = " ".join(scrub(getattr(response, "message", "") or "").split())
    ref = getattr(response, "ref", 0)
    if not ref:
        if is_daily_limit(answer):
            raise UserError(_http_message(None, answer, action, _competition_subject(competition)))
        if answer == getattr(api, "COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE", None):
            raise UserError(f"{action}: the upload to Kaggle failed; try again in a few minutes")
        raise UserError(f"{action}: Kaggle did not accept it ({answer or 'no submission reference returned'})")
    return str(ref)


def list_submissions(competition, page_size: int = 20) -> list[RemoteSubmission]:
    """The competition's submissions (newest first) with ``competition_submissions``."""
    api = client()
    with _mapped(f"cannot list the {competition.slug} submissions", _competition_subject(competition)):
        items = api.competition_submissions(competition.slug, page_size=page_size) or []
    submissions = []
    for item in items:
        if item is None:
            continue
        submissions.append(
            RemoteSubmission(
                ref=str(item.ref or ""),
                date=_date_text(item.date),
                file_name=scrub(item.file_name or ""),
                description=scrub(item.description or ""),
                status=_status_name(item.status),
                public_score=str(item.public_score or ""),
                error=" ".join(scrub(item.error_description or "").split()),
            )
        )
    return submissions


# ---------------------------------------------------------------- kernels
@dataclass(frozen=True)
class KernelPush:
    ref: str
    url: str
    version: int | None
    warnings: tuple


def kernels_push(folder: Path, kernel_id: str) -> KernelPush:
    """Push a kernel folder (``kernel-metadata.json`` + code file) with ``kernels_push``."""
    api = client()
    action = f"cannot push kernel {kernel_id}"
    with _mapped(action, Subject("kernel", kernel_id)):
        response = api.kernels_push(str(folder))
    if response is None:
        raise UserError(f"{action}: the Kaggle client returned no answer; try again")
    if response.error:
        raise UserError(f"{action}: Kaggle refused it ({' '.join(scrub(response.error).split())[:200]})")
    warnings = []
    for label, values in (
        ("competition sources", response.invalid_competition_sources),
        ("dataset sources", response.invalid_dataset_sources),
        ("kernel sources", response.invalid_kernel_sources),
        ("tags", response.invalid_tags),
    ):
        if values:
            warnings.append(f"Kaggle ignored invalid {label}: {', '.join(map(str, values))}")
    return KernelPush(str(response.ref or kernel_id), str(response.url or ""), response.version_number, tuple(warnings))


def _kernel_call(action: str, kernel_id: str):
    """Like :func:`_mapped` for the client's kernel calls, which turn a 401/403 into a long ValueError: the
    original HTTP error (its ``__context__``) decides the message."""
    return _KernelCall(action, Subject("kernel", kernel_id))


class _KernelCall:
    def __init__(self, action: str, subject: Subject):
        self.action, self.subject = action, subject

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, UserError):
            return False
        if not isinstance(error, (Exception, SystemExit)):
            return False
        import requests

        cause = error.__context__ if isinstance(error, ValueError) else None
        if isinstance(cause, requests.HTTPError):
            raise translate(cause, self.action, self.subject) from None
        if isinstance(error, ValueError) and "denied" in str(error):
            raise UserError(_http_message(403, "permission denied", self.action, self.subject)) from None
        raise translate(error, self.action, self.subject) from None


def kernels_status(kernel_id: str) -> tuple[str, str]:
    """(status, failure message) of the kernel's latest run with ``kernels_status``: status is one of queued,
    running, complete, error, cancel_requested, cancel_acknowledged, new_script."""
    api = client()
    with (
        _kernel_call(f"cannot get the status of kernel {kernel_id}", kernel_id),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        response = api.kernels_status(kernel_id)
    return _status_name(response.status), " ".join(scrub(response.failure_message or "").split())


# A file name of a kernel's output that stays inside the download folder: relative, no '..' part, no backslash.
SAFE_OUTPUT_NAME = r"^(?![/~])(?!.*(?:^|/)\.\.(?:/|$))[^\\\x00]+$"


def kernels_output(kernel_id: str, folder: Path, file_pattern: str | None = None) -> tuple[list[Path], str]:
    """Download the kernel's latest output into ``folder`` with ``kernels_output``; return (the files, the run's log).

    Only files whose names stay inside ``folder`` are downloaded (and, with ``file_pattern``, only those
    matching it too); each download is bounded by the request timeout and fails on an HTTP error instead of
    saving the error page."""
    from digit_recognizer.compat import checked_client_downloads

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pattern = SAFE_OUTPUT_NAME if file_pattern is None else f"(?={SAFE_OUTPUT_NAME}){file_pattern}"
    api = client()
    slug = kernel_id.split("/", 1)[-1]
    with (
        _kernel_call(f"cannot download the output of kernel {kernel_id}", kernel_id),
        contextlib.redirect_stdout(io.StringIO()),
        checked_client_downloads(request_timeout()),
    ):
        files, _ = api.kernels_output(kernel_id, str(folder), file_pattern=pattern, force=True, quiet=True)
    inside = folder.resolve()
    log_file = folder / f"{slug}.log"
    log = log_file.read_text(encoding="utf-8", errors="replace") if log_file.is_file() else ""
    downloaded = []
    for name in files:
        path = Path(name).resolve()
        if path == log_file.resolve() or not path.is_relative_to(inside):
            continue
        downloaded.append(path)
    return downloaded, scrub(log)
