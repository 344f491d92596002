"""Submitting to Kaggle: find the leaderboard row a file belongs to, submit it with the official client, record the
outcome, and wait for Kaggle's score. The commands in :mod:`digit_recognizer.cli.kaggle` call these."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from digit_recognizer.errors import UserError
from digit_recognizer.tracking import leaderboard

NOT_SUBMITTED = "not submitted"
PENDING = "pending"
COMPLETE = "complete"
ERROR = "error"


def _relative(path: Path, root: Path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _resolve(text: str, root: Path) -> Path:
    path = Path(text)
    return (path if path.is_absolute() else Path(root) / path).resolve()


def experiment_for(file: Path, paths) -> tuple[str, str]:
    """(experiment, submission_file) of the leaderboard row a submission file belongs to.

    The row whose ``submission_file`` is this file; for ``submissions/submission.csv``
    (a copy of the latest prediction) the experiment whose own file has the same
    content; else the experiment named by the file's stem.
    """
    file = Path(file).resolve()
    for row in leaderboard.read_rows(paths.leaderboard):
        if row["submission_file"] and _resolve(row["submission_file"], paths.root) == file:
            return row["experiment"], row["submission_file"]
    if file == paths.latest_submission.resolve() and paths.submissions.is_dir():
        content = file.read_bytes()
        twins = [
            candidate
            for candidate in paths.submissions.glob("*.csv")
            if candidate.resolve() != file
            and candidate.name != paths.leaderboard.name
            and candidate.stat().st_size == len(content)
            and candidate.read_bytes() == content
        ]
        if twins:
            twin = max(twins, key=lambda candidate: candidate.stat().st_mtime)
            return twin.stem, _relative(twin, paths.root)
    return file.stem, _relative(file, paths.root)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def submit_file(paths, competition, file: Path, message: str) -> tuple[str, str]:
    """Validate ``file`` (refusing the offline sample's), submit it and record it on its leaderboard row.
    Return (Kaggle's submission ref, the row's experiment). A failed upload is recorded as "not submitted" on an
    existing experiment's row only, and re-raised."""
    from digit_recognizer.kaggle import api as kaggle_api
    from digit_recognizer.submission import check_submission

    if not message.strip():
        raise UserError("the submission message (-m) must not be empty")
    check = check_submission(file, paths, competition)
    expected = int(competition.rows["test"])
    if check.rows != expected:
        raise UserError(
            f"{file}: has {check.rows} rows but the competition's test set has {expected}; it predicts "
            "the offline sample: fetch the real data (`digit-recognizer fetch --force`), train and predict again"
        )
    experiment, submission_file = experiment_for(file, paths)
    known = leaderboard.ensure_row(paths, experiment)
    try:
        ref = kaggle_api.submit(competition, file, message.strip())
    except UserError as error:
        if known:
            leaderboard.upsert(
                paths.leaderboard,
                experiment,
                submission_file=submission_file,
                kaggle_status=NOT_SUBMITTED,
                kaggle_error=str(error),
            )
        raise
    leaderboard.upsert(
        paths.leaderboard,
        experiment,
        submission_file=submission_file,
        kaggle_status=PENDING,
        kaggle_ref=ref,
        kaggle_submitted_at=_utc_now(),
        kaggle_public_score="",
        kaggle_error="",
    )
    return ref, experiment


def wait_for_score(competition, paths, ref: str, experiment: str, timeout: float, poll: float, log=print) -> int:
    """Poll the submission list with backoff until ``ref`` is COMPLETE or ERROR; record the outcome."""
    from digit_recognizer.kaggle import api as kaggle_api

    deadline = time.monotonic() + max(0.0, timeout)
    delay = max(0.05, poll)
    failures = 0
    while True:
        try:
            submissions = kaggle_api.list_submissions(competition)
            failures = 0
        except UserError as error:
            failures += 1
            if failures >= 3 or not getattr(error, "retryable", False):
                raise UserError(
                    f"submission {ref} was made, but checking its score failed: {error}; "
                    "`digit-recognizer submissions` shows it later"
                ) from None
            submissions = []
        match = next((item for item in submissions if item.ref == ref), None)
        if match is not None and match.status == COMPLETE:
            leaderboard.upsert(
                paths.leaderboard,
                experiment,
                kaggle_status=COMPLETE,
                kaggle_public_score=match.public_score,
                kaggle_error="",
            )
            log(f"submission {ref}: complete, public score {match.public_score or '(not shown)'}")
            return 0
        if match is not None and match.status == ERROR:
            reason = match.error or "no description"
            leaderboard.upsert(paths.leaderboard, experiment, kaggle_status=ERROR, kaggle_error=reason)
            raise UserError(f"Kaggle could not score submission {ref}: {reason}; fix the file and submit again")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print(
                f"submission {ref} is still pending after {timeout:g} s; `digit-recognizer submissions` shows it later",
                file=sys.stderr,
            )
            return 1
        status = match.status if match is not None else "not listed yet"
        log(f"submission {ref}: {status}; checking again in {min(delay, remaining):.1f} s")
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 60.0)
