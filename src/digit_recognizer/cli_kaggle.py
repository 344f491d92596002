"""Subcommands that talk to Kaggle: ``submit``, ``submissions`` and ``kernel {build,push,status}``.

Nothing heavy is imported at module level (``--help`` stays instant); the
Kaggle client is reached only through :mod:`digit_recognizer.kaggle_api`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from digit_recognizer.errors import UserError

NOT_SUBMITTED = "not submitted"
PENDING = "pending"
COMPLETE = "complete"
ERROR = "error"


def _say(message: str = "") -> None:
    print(message, flush=True)


def _context(args):
    from digit_recognizer.cli import _context as context

    return context(args)


def register(subparsers) -> None:
    add_submit(subparsers)
    add_submissions(subparsers)
    add_kernel(subparsers)


# ---------------------------------------------------------------- leaderboard helpers
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
    from digit_recognizer import leaderboard

    file = Path(file).resolve()
    for row in leaderboard.read_rows(paths.leaderboard):
        if row["submission_file"] and _resolve(row["submission_file"], paths.root) == file:
            return row["experiment"], row["submission_file"]
    if file == paths.latest_submission.resolve() and paths.submissions.is_dir():
        content = file.read_bytes()
        twins = [candidate for candidate in paths.submissions.glob("*.csv")
                 if candidate.resolve() != file and candidate.name != paths.leaderboard.name
                 and candidate.stat().st_size == len(content) and candidate.read_bytes() == content]
        if twins:
            twin = max(twins, key=lambda candidate: candidate.stat().st_mtime)
            return twin.stem, _relative(twin, paths.root)
    return file.stem, _relative(file, paths.root)


def _ensure_row(paths, experiment: str) -> None:
    """Let the report module fill a missing row from the experiment's metrics (when that module is installed)."""
    from digit_recognizer.cli import _optional_module

    module = _optional_module("digit_recognizer.cli_report")
    if module is not None and hasattr(module, "ensure_row"):
        module.ensure_row(paths, experiment)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------- submit
def add_submit(subparsers) -> None:
    parser = subparsers.add_parser(
        "submit", help="validate a submission file, then submit it to Kaggle (records it in the leaderboard)",
        description="Validate the file (an invalid one is refused with the reason and never uploaded), submit it\n"
                    "with the official Kaggle client, and record the submission in submissions/leaderboard.csv.\n"
                    "With --wait, poll until Kaggle has scored it and record the public score (or the error).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Credentials: ~/.kaggle/kaggle.json, KAGGLE_USERNAME + KAGGLE_KEY, or KAGGLE_API_TOKEN.\n"
               "Accept the competition's rules first: https://www.kaggle.com/competitions/digit-recognizer/rules")
    parser.add_argument("file", type=Path, nargs="?", help="submission CSV (default submissions/submission.csv)")
    parser.add_argument("-m", "--message", required=True, help="the submission's description on Kaggle")
    parser.add_argument("--wait", action="store_true", help="poll until Kaggle has scored it (COMPLETE or ERROR)")
    parser.add_argument("--timeout", type=float, default=1800, metavar="SECONDS", help="give up waiting after this long (default 1800)")
    parser.add_argument("--poll", type=float, default=5, metavar="SECONDS", help="first wait between polls; it grows 1.5x up to 60 s (default 5)")
    parser.set_defaults(func=cmd_submit)


def cmd_submit(args) -> int:
    from digit_recognizer import kaggle_api, leaderboard
    from digit_recognizer.submission import check_submission

    paths, competition = _context(args)
    file = Path(args.file) if args.file else paths.latest_submission
    if not args.message.strip():
        raise UserError("the submission message (-m) must not be empty")
    check = check_submission(file, paths, competition)
    expected = int(competition.rows["test"])
    if check.rows != expected:
        raise UserError(f"{file}: has {check.rows} rows but the competition's test set has {expected}; it predicts "
                        "the offline sample: fetch the real data (`digit-recognizer fetch --force`), train and predict again")
    experiment, submission_file = experiment_for(file, paths)
    _ensure_row(paths, experiment)
    try:
        ref = kaggle_api.submit(competition, file, args.message.strip())
    except UserError as error:
        leaderboard.upsert(paths.leaderboard, experiment, submission_file=submission_file,
                           kaggle_status=NOT_SUBMITTED, kaggle_error=str(error))
        raise
    leaderboard.upsert(paths.leaderboard, experiment, submission_file=submission_file, kaggle_status=PENDING,
                       kaggle_ref=ref, kaggle_submitted_at=_utc_now(), kaggle_public_score="", kaggle_error="")
    _say(f"submitted {file} to {competition.slug} as submission {ref} (leaderboard row '{experiment}')")
    if not args.wait:
        _say("Kaggle scores it in a minute or two: `digit-recognizer submissions` shows the score")
        return 0
    return wait_for_score(competition, paths, ref, experiment, args.timeout, args.poll)


def wait_for_score(competition, paths, ref: str, experiment: str, timeout: float, poll: float) -> int:
    """Poll the submission list with backoff until ``ref`` is COMPLETE or ERROR; record the outcome."""
    from digit_recognizer import kaggle_api, leaderboard

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
                raise UserError(f"submission {ref} was made, but checking its score failed: {error}; "
                                "`digit-recognizer submissions` shows it later") from None
            submissions = []
        match = next((item for item in submissions if item.ref == ref), None)
        if match is not None and match.status == COMPLETE:
            leaderboard.upsert(paths.leaderboard, experiment, kaggle_status=COMPLETE,
                               kaggle_public_score=match.public_score, kaggle_error="")
            _say(f"submission {ref}: complete, public score {match.public_score or '(not shown)'}")
            return 0
        if match is not None and match.status == ERROR:
            reason = match.error or "no description"
            leaderboard.upsert(paths.leaderboard, experiment, kaggle_status=ERROR, kaggle_error=reason)
            raise UserError(f"Kaggle could not score submission {ref}: {reason}; fix the file and submit again")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print(f"submission {ref} is still pending after {timeout:g} s; `digit-recognizer submissions` shows it later",
                  file=sys.stderr)
            return 1
        status = match.status if match is not None else "not listed yet"
        _say(f"submission {ref}: {status}; checking again in {min(delay, remaining):.1f} s")
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 60.0)


# ---------------------------------------------------------------- submissions
def add_submissions(subparsers) -> None:
    parser = subparsers.add_parser("submissions", help="list the competition's Kaggle submissions beside the local leaderboard",
                                   description="List your remote submissions (date, file, status, public score, message) "
                                               "next to the matching local leaderboard rows, and record new scores there.")
    parser.add_argument("--limit", type=int, default=20, help="how many of the newest submissions (default 20)")
    parser.set_defaults(func=cmd_submissions)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]


def cmd_submissions(args) -> int:
    from digit_recognizer import kaggle_api, leaderboard

    paths, competition = _context(args)
    if args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    remote = kaggle_api.list_submissions(competition, page_size=args.limit)
    local = {row["kaggle_ref"]: row for row in leaderboard.read_rows(paths.leaderboard) if row["kaggle_ref"]}
    for item in remote:
        row = local.get(item.ref)
        # Only a pending submission's outcome is filled in: a row marked "not submitted" by a later
        # failed attempt keeps saying so.
        if row is None or row["kaggle_status"] not in ("", PENDING) or item.status == PENDING:
            continue
        fields = {"kaggle_status": item.status, "kaggle_public_score": item.public_score or row["kaggle_public_score"],
                  "kaggle_error": item.error if item.status == ERROR else ""}
        if any(row[key] != value for key, value in fields.items()):
            leaderboard.update_where(paths.leaderboard, lambda r, ref=item.ref: r["kaggle_ref"] == ref, **fields)
            row.update(fields)
    if not remote:
        _say(f"no submissions to {competition.slug} yet")
    else:
        rows = []
        for item in remote:
            row = local.get(item.ref)
            rows.append([item.date.replace("T", " ").rstrip("Z")[:16], item.file_name, item.status,
                         item.public_score or "-", (item.description or "")[:40],
                         row["experiment"] if row else "-", row["score"] if row and row["score"] else "-"])
        for line in _table(["date (UTC)", "file", "status", "public", "message", "local experiment", "validation"], rows):
            _say(line)
        errors = [item for item in remote if item.status == ERROR and item.error]
        for item in errors:
            _say(f"submission {item.ref} ({item.file_name}): {item.error}")
    not_submitted = [row for row in leaderboard.read_rows(paths.leaderboard) if row["kaggle_status"] == NOT_SUBMITTED]
    for row in not_submitted:
        _say(f"last attempt failed for {row['experiment']}: {row['kaggle_error']}")
    return 0


# ---------------------------------------------------------------- kernel
def add_kernel(subparsers) -> None:
    parser = subparsers.add_parser("kernel", help="build, push and check a Kaggle kernel that trains and writes submission.csv",
                                   description="Run the workflow as a Kaggle kernel: `kernel build` writes competition/kernel/ "
                                               "(kernel-metadata.json and one self-contained script), `kernel push` uploads it, "
                                               "`kernel status` shows its run's state.")
    commands = parser.add_subparsers(dest="kernel_command", metavar="{build,push,status}", required=True)

    build = commands.add_parser("build", help="write competition/kernel/ (metadata + self-contained script)",
                                description="Write kernel-metadata.json and a script that carries this package, so the kernel "
                                            "needs only Kaggle's preinstalled packages. Training options go into the script.")
    build.add_argument("--kernel-id", help="USER/SLUG on Kaggle (default: the earlier build's, else <your user>/digit-recognizer-cnn)")
    build.add_argument("--title", help="kernel title (default: from the slug)")
    from digit_recognizer.presets import DEFAULT_PRESET, PRESETS

    build.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), help=f"training preset (default {DEFAULT_PRESET})")
    build.add_argument("--epochs", type=int, help="override the preset's epochs")
    build.add_argument("--cv", type=int, metavar="K", help="train K fold models and average them")
    build.add_argument("--full-train", action="store_true", help="retrain on every row after validating")
    build.add_argument("--max-rows", type=int, help="train on a stratified subset (quick tries)")
    build.add_argument("--tta", action="store_true", help="test-time augmentation when predicting")
    build.add_argument("--no-gpu", dest="gpu", action="store_false", help="run without a GPU accelerator (default: GPU on)")
    build.add_argument("--public", action="store_true", help="make the kernel public (default private)")
    build.add_argument("--folder", type=Path, help="output folder (default competition/kernel/)")
    build.set_defaults(func=cmd_kernel_build)

    push = commands.add_parser("push", help="push the built kernel to Kaggle (it runs there)")
    push.add_argument("--folder", type=Path, help="kernel folder (default competition/kernel/)")
    push.set_defaults(func=cmd_kernel_push)

    status = commands.add_parser("status", help="show the state of the kernel's latest run")
    status.add_argument("kernel_id", nargs="?", help="USER/SLUG (default: the built kernel's id)")
    status.add_argument("--folder", type=Path, help="kernel folder (default competition/kernel/)")
    status.set_defaults(func=cmd_kernel_status)


def cmd_kernel_build(args) -> int:
    from digit_recognizer.kernel import build_kernel

    paths, competition = _context(args)
    run_args = []
    for flag, value in (("--epochs", args.epochs), ("--cv", args.cv), ("--max-rows", args.max_rows)):
        if value is not None:
            if value < (2 if flag == "--cv" else 1):
                raise UserError(f"{flag} must be at least {2 if flag == '--cv' else 1}, got {value}")
            run_args += [flag, str(value)]
    if args.full_train:
        run_args.append("--full-train")
    if args.tta:
        run_args.append("--tta")
    built = build_kernel(paths, competition, kernel_id=args.kernel_id, title=args.title, preset=args.preset,
                         run_args=run_args, enable_gpu=args.gpu, is_private=not args.public, folder=args.folder)
    metadata = built.metadata
    _say(f"kernel {metadata['id']} ('{metadata['title']}'): {built.folder}")
    _say(f"  {built.script.name}: preset {args.preset}{' ' + ' '.join(run_args) if run_args else ''}, "
         f"package bundled ({built.bundle_bytes / 1024:.0f} KiB zip)")
    _say(f"  GPU {'on' if metadata['enable_gpu'] else 'off'}, internet off, {'private' if metadata['is_private'] else 'public'}, "
         f"input: {', '.join(metadata['competition_sources'])}")
    _say("push it with `digit-recognizer kernel push`")
    return 0


def _kernel_folder(args, paths) -> Path:
    from digit_recognizer.kernel import kernel_folder

    return Path(args.folder) if args.folder else kernel_folder(paths)


def cmd_kernel_push(args) -> int:
    from digit_recognizer import kaggle_api
    from digit_recognizer.kernel import CODE_FILE, check_kernel_id, read_metadata

    paths, _ = _context(args)
    folder = _kernel_folder(args, paths)
    metadata = read_metadata(folder)
    kernel_id = check_kernel_id(metadata["id"])
    code_file = folder / metadata.get("code_file", CODE_FILE)
    if not code_file.is_file():
        raise UserError(f"{code_file} not found; run `digit-recognizer kernel build` again")
    pushed = kaggle_api.kernels_push(folder, kernel_id)
    for warning in pushed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    version = f" version {pushed.version}" if pushed.version else ""
    _say(f"pushed kernel {kernel_id}{version}: {pushed.url or pushed.ref}")
    _say("it runs on Kaggle now: `digit-recognizer kernel status` shows its state; its output has submission.csv")
    return 0


def cmd_kernel_status(args) -> int:
    from digit_recognizer import kaggle_api
    from digit_recognizer.kernel import check_kernel_id, read_metadata

    paths, _ = _context(args)
    kernel_id = args.kernel_id or read_metadata(_kernel_folder(args, paths))["id"]
    check_kernel_id(kernel_id)
    status, failure = kaggle_api.kernels_status(kernel_id)
    _say(f"kernel {kernel_id}: {status}" + (f" ({failure})" if failure else ""))
    return 0 if status != ERROR else 1
