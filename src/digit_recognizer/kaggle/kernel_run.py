"""A pushed kernel's run, back home: wait for it, download its output, validate and record its ``submission.csv``,
submit it. The ``kernel push --wait [--submit]``, ``kernel output`` and ``kernel submit`` commands call these.

- :func:`wait_for_run` polls ``kernels_status`` with backoff until the run is complete, or fails with Kaggle's
  failure message (and prints the tail of the run's log through ``log``).
- :func:`download_output` downloads the run's output with ``kernels_output`` into a temporary folder beside
  ``submissions/kernels/<slug>/``, validates its ``submission.csv`` exactly like ``validate``, and only then renames the
  folder to ``<slug>/v<version>/`` (the pushed version, when this project pushed the latest one) or ``<slug>/<UTC time>/``,
  and adds its leaderboard row: experiment ``kernel-<slug>-v<version>``, source ``kernel <id> v<version>``.
  A failure leaves nothing behind.
- :func:`submit_output` submits the newest downloaded output through :func:`digit_recognizer.kaggle.submit.submit_file`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from digit_recognizer.atomic import write_json
from digit_recognizer.errors import UserError
from digit_recognizer.kaggle.api import read_json_object
from digit_recognizer.kaggle.kernel_template import RUN_FILE

PUSH_RECORD = "last-push.json"  # in the kernel folder: which version this project pushed last
SUBMISSION = "submission.csv"
LOG_TAIL_LINES = 15
RUNNING = ("queued", "running", "new_script")
CANCELLED = ("cancel_requested", "cancel_acknowledged")


# ---------------------------------------------------------------- pushes
def record_push(kernel_folder: Path, kernel_id: str, version: int | None, url: str) -> None:
    """Remember the version this project pushed, so its output is filed under that version."""
    write_json(
        Path(kernel_folder) / PUSH_RECORD,
        {
            "id": kernel_id,
            "version": version,
            "url": url,
            "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )


def pushed_version(kernel_folder: Path, kernel_id: str) -> int | None:
    """The version of ``kernel_id`` this project pushed last, if it did."""
    try:
        record = json.loads((Path(kernel_folder) / PUSH_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = record.get("version") if isinstance(record, dict) and record.get("id") == kernel_id else None
    return version if isinstance(version, int) and not isinstance(version, bool) and version > 0 else None


# ---------------------------------------------------------------- waiting
def log_tail(log: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a kernel's log (Kaggle's JSON list of ``{"stream_name", "time", "data"}``, or plain text)."""
    text = log or ""
    try:
        entries = json.loads(text)
        if isinstance(entries, list):
            text = "".join(str(entry.get("data", "")) for entry in entries if isinstance(entry, dict))
    except ValueError:
        pass
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return [line if len(line) <= 200 else line[:199] + "…" for line in kept[-lines:]]


def _say_log_tail(kernel_id: str, log) -> None:
    from digit_recognizer.kaggle import api as kaggle_api

    try:
        with tempfile.TemporaryDirectory(prefix="kernel-log-") as folder:
            _, text = kaggle_api.kernels_output(kernel_id, Path(folder), file_pattern="(?!)")  # the log only
    except UserError as error:
        log(f"(the run's log could not be read: {error})")
        return
    tail = log_tail(text)
    if tail:
        log(f"the last {len(tail)} lines of the run's log:")
        for line in tail:
            log(f"  | {line}")


def wait_for_run(kernel_id: str, timeout: float, poll: float, log=print) -> str | None:
    """Poll the kernel's latest run with backoff (``poll`` seconds, growing 1.5x to 60 s) until it is complete;
    return "complete", or None when ``timeout`` seconds passed first. A failed or cancelled run raises one
    UserError with Kaggle's message, after the log's tail went to ``log``. Passing server or network failures are
    retried (three in a row give up)."""
    from digit_recognizer.kaggle import api as kaggle_api

    if timeout < 0 or poll <= 0:
        raise ValueError(f"timeout must be >= 0 and poll > 0, got {timeout} and {poll}")
    deadline = time.monotonic() + timeout
    delay = poll
    failures = 0
    last = None
    while True:
        try:
            status, message = kaggle_api.kernels_status(kernel_id)
            failures = 0
        except UserError as error:
            failures += 1
            if failures >= 3 or not getattr(error, "retryable", False):
                raise
            status, message = None, ""
        if status == "complete":
            log(f"kernel {kernel_id}: complete")
            return status
        if status == "error" or status in CANCELLED:
            what = "failed" if status == "error" else "was cancelled"
            _say_log_tail(kernel_id, log)
            raise UserError(
                f"kernel {kernel_id}'s run {what} on Kaggle: {message or 'no message'}; "
                "fix it, `digit-recognizer kernel build` and push again"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if status and status != last:
            log(f"kernel {kernel_id}: {status}")
            last = status
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 60.0)


# ---------------------------------------------------------------- output
@dataclass(frozen=True)
class KernelOutput:
    kernel_id: str
    folder: Path
    submission: Path
    experiment: str
    label: str  # "v<version>" or the UTC time
    rows: int
    accuracy: float | None  # against the offline sample's answer key, when present
    run: dict  # kernel-run.json: what ran and its validation score
    downloaded: bool  # False when the folder was there already


def output_root(paths, kernel_id: str) -> Path:
    return paths.submissions / "kernels" / kernel_id.split("/", 1)[1]


def experiment_name(kernel_id: str, label: str) -> str:
    from digit_recognizer.config import check_name

    try:
        return check_name(f"kernel-{kernel_id.split('/', 1)[1]}-{label}")
    except ValueError as error:
        raise UserError(str(error)) from None


def _run_metrics(folder: Path, run: dict) -> dict:
    """The trained experiment's metrics.json from the output (named in kernel-run.json), else {}."""
    name = str(run.get("experiment") or "")
    candidates = [folder / "models" / name / "metrics.json"] if name and "/" not in name and ".." not in name else []
    candidates += sorted(folder.glob("models/*/metrics.json"))
    for path in candidates:
        metrics = read_json_object(path)
        if metrics:
            return metrics
    return {}


def _checked(paths, competition, output_folder: Path, kernel_id: str):
    """Validate the output's submission.csv exactly like ``validate`` (one line naming the kernel when it fails)."""
    from digit_recognizer.submission import check_submission

    submission = output_folder / SUBMISSION
    if not submission.is_file():
        raise UserError(
            f"kernel {kernel_id}'s output has no {SUBMISSION}: the run did not write it; "
            "check the run's log on Kaggle, then rebuild and push again"
        )
    try:
        return check_submission(submission, paths, competition)
    except UserError as error:
        raise UserError(f"kernel {kernel_id}'s {error}; nothing was kept or submitted") from None


def download_output(paths, competition, kernel_id: str, kernel_folder: Path, log=print) -> KernelOutput:
    """Download, validate and record the output of the kernel's latest (complete) run; see the module's docstring."""
    from digit_recognizer.kaggle import api as kaggle_api
    from digit_recognizer.tracking import leaderboard

    status, message = kaggle_api.kernels_status(kernel_id)
    if status in RUNNING:
        raise UserError(
            f"kernel {kernel_id} is {status}: its output is not ready; "
            "`digit-recognizer kernel push --wait` waits for it, or try again later"
        )
    if status != "complete":
        raise UserError(
            f"kernel {kernel_id}'s latest run ended with {status}: {message or 'no message'}; "
            "it has no output to submit"
        )
    leaderboard.read_rows(paths.leaderboard)  # a corrupt leaderboard is reported before anything is downloaded
    version = pushed_version(kernel_folder, kernel_id)
    label = f"v{version}" if version else time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    experiment = experiment_name(kernel_id, label)
    final = output_root(paths, kernel_id) / label
    downloaded = not final.is_dir()
    if downloaded:
        created = [folder for folder in (final.parent, final.parent.parent) if not folder.exists()]
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{label}.", suffix=".partial", dir=final.parent))
        try:
            files, _ = kaggle_api.kernels_output(kernel_id, partial)
            _checked(paths, competition, partial, kernel_id)
            partial.rename(final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            for folder in created:  # innermost first: leave no empty folder behind either
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        log(f"downloaded {len(files)} output file(s) of kernel {kernel_id} {label} into {final}")
    else:
        log(f"kernel {kernel_id} {label}: output already in {final}")
    check = _checked(paths, competition, final, kernel_id)
    run = read_json_object(final / RUN_FILE)
    leaderboard.record_kernel_output(
        paths,
        experiment,
        _run_metrics(final, run),
        final / SUBMISSION,
        check.accuracy,
        source=f"kernel {kernel_id} {label}",
    )
    return KernelOutput(
        kernel_id, final, final / SUBMISSION, experiment, label, check.rows, check.accuracy, run, downloaded
    )


def latest_output(paths, kernel_id: str) -> Path:
    """The newest downloaded output folder of the kernel (by its submission.csv's download time)."""
    root = output_root(paths, kernel_id)
    folders = (
        [
            folder
            for folder in root.iterdir()
            if folder.is_dir() and not folder.name.startswith(".") and (folder / SUBMISSION).is_file()
        ]
        if root.is_dir()
        else []
    )
    if not folders:
        raise UserError(
            f"no downloaded output of kernel {kernel_id} in {root}; run `digit-recognizer kernel output` first"
        )
    return max(folders, key=lambda folder: (folder / SUBMISSION).stat().st_mtime)


def submit_output(paths, competition, kernel_id: str, message: str | None = None, folder: Path | None = None):
    """Submit the kernel's newest downloaded submission.csv with the ``submit`` path; return (ref, experiment, file)."""
    from digit_recognizer.kaggle.submit import submit_file

    folder = Path(folder) if folder else latest_output(paths, kernel_id)
    file = folder / SUBMISSION
    return (*submit_file(paths, competition, file, message or f"kernel {kernel_id} {folder.name}"), file)
