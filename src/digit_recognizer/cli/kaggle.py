"""Subcommands that talk to Kaggle: ``submit``, ``submissions`` and ``kernel {build,push,status}``.

Nothing heavy is imported at module level (``--help`` stays instant); the
Kaggle client is reached only through :mod:`digit_recognizer.kaggle.api`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digit_recognizer.cli import context, say, warn
from digit_recognizer.errors import UserError
from digit_recognizer.kaggle.submit import ERROR, NOT_SUBMITTED, PENDING


def register(subparsers) -> None:
    add_submit(subparsers)
    add_submissions(subparsers)
    add_kernel(subparsers)


# ---------------------------------------------------------------- submit
def add_submit(subparsers) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="validate a submission file, then submit it to Kaggle (records it in the leaderboard)",
        description="Validate the file (an invalid one is refused with the reason and never uploaded), submit it\n"
        "with the official Kaggle client, and record the submission in submissions/leaderboard.csv.\n"
        "With --wait, poll until Kaggle has scored it and record the public score (or the error).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Credentials: ~/.kaggle/kaggle.json, KAGGLE_USERNAME + KAGGLE_KEY, or KAGGLE_API_TOKEN.\n"
        "Accept the competition's rules first: https://www.kaggle.com/competitions/digit-recognizer/rules",
    )
    parser.add_argument("file", type=Path, nargs="?", help="submission CSV (default submissions/submission.csv)")
    parser.add_argument("-m", "--message", required=True, help="the submission's description on Kaggle")
    parser.add_argument("--wait", action="store_true", help="poll until Kaggle has scored it (COMPLETE or ERROR)")
    parser.add_argument(
        "--timeout", type=float, default=1800, metavar="SECONDS", help="give up waiting after this long (default 1800)"
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=5,
        metavar="SECONDS",
        help="first wait between polls; it grows 1.5x up to 60 s (default 5)",
    )
    parser.set_defaults(func=cmd_submit)


def cmd_submit(args) -> int:
    from digit_recognizer.kaggle.submit import submit_file, wait_for_score

    paths, competition = context(args)
    file = Path(args.file) if args.file else paths.latest_submission
    ref, experiment = submit_file(paths, competition, file, args.message)
    say(f"submitted {file} to {competition.slug} as submission {ref} (leaderboard row '{experiment}')")
    if not args.wait:
        say("Kaggle scores it in a minute or two: `digit-recognizer submissions` shows the score")
        return 0
    return wait_for_score(competition, paths, ref, experiment, args.timeout, args.poll, log=say)


# ---------------------------------------------------------------- submissions
def add_submissions(subparsers) -> None:
    parser = subparsers.add_parser(
        "submissions",
        help="list the competition's Kaggle submissions beside the local leaderboard",
        description="List your remote submissions (date, file, status, public score, message) "
        "next to the matching local leaderboard rows, and record new scores there.",
    )
    parser.add_argument("--limit", type=int, default=20, help="how many of the newest submissions (default 20)")
    parser.set_defaults(func=cmd_submissions)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]


def cmd_submissions(args) -> int:
    from digit_recognizer.kaggle import api as kaggle_api
    from digit_recognizer.tracking import leaderboard

    paths, competition = context(args)
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
        fields = {
            "kaggle_status": item.status,
            "kaggle_public_score": item.public_score or row["kaggle_public_score"],
            "kaggle_error": item.error if item.status == ERROR else "",
        }
        if any(row[key] != value for key, value in fields.items()):
            leaderboard.update_where(paths.leaderboard, lambda r, ref=item.ref: r["kaggle_ref"] == ref, **fields)
            row.update(fields)
    if not remote:
        say(f"no submissions to {competition.slug} yet")
    else:
        rows = []
        for item in remote:
            row = local.get(item.ref)
            rows.append(
                [
                    item.date.replace("T", " ").rstrip("Z")[:16],
                    item.file_name,
                    item.status,
                    item.public_score or "-",
                    (item.description or "")[:40],
                    row["experiment"] if row else "-",
                    row["score"] if row and row["score"] else "-",
                ]
            )
        for line in _table(
            ["date (UTC)", "file", "status", "public", "message", "local experiment", "validation"], rows
        ):
            say(line)
        errors = [item for item in remote if item.status == ERROR and item.error]
        for item in errors:
            say(f"submission {item.ref} ({item.file_name}): {item.error}")
    not_submitted = [row for row in leaderboard.read_rows(paths.leaderboard) if row["kaggle_status"] == NOT_SUBMITTED]
    for row in not_submitted:
        say(f"last attempt failed for {row['experiment']}: {row['kaggle_error']}")
    return 0


# ---------------------------------------------------------------- kernel
KERNEL_EPILOG = """\
the loop, end to end:
  digit-recognizer kernel build --kernel-id USER/SLUG --preset strong
  digit-recognizer kernel push --wait --submit      push, wait for the run, download, validate, submit, wait for the score
step by step:
  digit-recognizer kernel push                      upload competition/kernel/; Kaggle starts a run
  digit-recognizer kernel status                    queued / running / complete / error
  digit-recognizer kernel output                    download the run's output into submissions/kernels/<slug>/<version>/
  digit-recognizer kernel submit -m "message"       submit that submission.csv (like `submit`)
"""


def _add_wait_options(parser, what: str, default_timeout: float) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=default_timeout,
        metavar="SECONDS",
        help=f"give up waiting for {what} after this long (default {default_timeout:g})",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=10,
        metavar="SECONDS",
        help="first wait between polls; it grows 1.5x up to 60 s (default 10)",
    )


def add_kernel(subparsers) -> None:
    parser = subparsers.add_parser(
        "kernel",
        help="train on Kaggle: build, push, wait for, download and submit a kernel's run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the workflow as a Kaggle kernel (on Kaggle's GPUs) and bring its "
        "submission back as a validated, scored submission.",
        epilog=KERNEL_EPILOG,
    )
    commands = parser.add_subparsers(dest="kernel_command", metavar="{build,push,status,output,submit}", required=True)

    build = commands.add_parser(
        "build",
        help="write competition/kernel/ (metadata + self-contained script)",
        description="Write kernel-metadata.json and a script that carries this package, so the kernel "
        "needs only Kaggle's preinstalled packages (TensorFlow >= 2.18, Keras >= 3.8). "
        "Training options go into the script and are checked now, as `train` checks them.",
    )
    build.add_argument(
        "--kernel-id", help="USER/SLUG on Kaggle (default: the earlier build's, else <your user>/digit-recognizer-cnn)"
    )
    build.add_argument("--title", help="kernel title (default: from the slug)")
    from digit_recognizer.cli.pipeline import add_train_options

    add_train_options(build, include_quiet=False)  # the same options, help and checks as `train` (--tta included)
    build.add_argument(
        "--no-gpu", dest="gpu", action="store_false", help="run without a GPU accelerator (default: GPU on)"
    )
    build.add_argument("--public", action="store_true", help="make the kernel public (default private)")
    build.add_argument("--folder", type=Path, help="output folder (default competition/kernel/)")
    build.set_defaults(func=cmd_kernel_build)

    push = commands.add_parser(
        "push",
        help="upload the built kernel to Kaggle, which starts a run (--wait: until it ends; --submit: and submit)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Upload competition/kernel/ (from `kernel build`) with the official Kaggle client as a new version of\n"
        "the kernel; Kaggle then runs it on its machines. With --wait, poll the run's status until it is\n"
        "complete, or print Kaggle's failure message and the tail of the run's log. With --submit (implies\n"
        "--wait), then download its output (`kernel output`), submit its submission.csv (`kernel submit`)\n"
        "and wait for the public score.",
        epilog="Credentials: ~/.kaggle/kaggle.json, KAGGLE_USERNAME + KAGGLE_KEY, or KAGGLE_API_TOKEN.\n"
        "exit codes: 0 done, 1 still running after --timeout, 2 an error (one `error:` line)",
    )
    push.add_argument("--folder", type=Path, help="kernel folder (default competition/kernel/)")
    push.add_argument("--wait", action="store_true", help="poll until the run is complete or has failed")
    push.add_argument(
        "--submit", action="store_true", help="after a complete run: download, validate, submit, wait for the score"
    )
    push.add_argument(
        "-m", "--message", help="the submission's description with --submit (default: kernel USER/SLUG v<version>)"
    )
    _add_wait_options(push, "the run (and then the score)", 10800)
    push.set_defaults(func=cmd_kernel_push)

    status = commands.add_parser(
        "status",
        help="show the state of the kernel's latest run",
        description="Ask Kaggle for the state of the kernel's latest run: queued, running, complete, error (with Kaggle's "
        "failure message) or cancelled. Exit code 0, or 1 for a failed or cancelled run.",
        epilog="The kernel id defaults to the one in competition/kernel/kernel-metadata.json (from `kernel build`).",
    )
    status.add_argument("kernel_id", nargs="?", help="USER/SLUG (default: the built kernel's id)")
    status.add_argument("--folder", type=Path, help="kernel folder (default competition/kernel/)")
    status.set_defaults(func=cmd_kernel_status)

    output = commands.add_parser(
        "output",
        help="download the latest run's output, validate its submission.csv and add it to the leaderboard",
        description="Download the output of the kernel's latest complete run with the official client (kernels_output) "
        "into submissions/kernels/<slug>/v<version>/ (the version this project pushed; else the UTC time), "
        "validate its submission.csv exactly like `validate`, and add a leaderboard row "
        "'kernel-<slug>-v<version>' (source: the kernel and its version). An invalid or missing "
        "submission.csv keeps nothing.",
    )
    output.add_argument("--kernel-id", help="USER/SLUG (default: the built kernel's id)")
    output.add_argument("--folder", type=Path, help="kernel folder (default competition/kernel/)")
    output.set_defaults(func=cmd_kernel_output)

    submit = commands.add_parser(
        "submit",
        help="submit the kernel's downloaded submission.csv to the competition (like `submit`)",
        description="Submit the newest output downloaded by `kernel output` through the same path as `submit`: validated "
        "again, recorded on the kernel's leaderboard row; with --wait, wait for the public score.",
    )
    submit.add_argument("--kernel-id", help="USER/SLUG (default: the built kernel's id)")
    submit.add_argument("--folder", type=Path, help="kernel folder (default competition/kernel/)")
    submit.add_argument("-m", "--message", help="the submission's description (default: kernel USER/SLUG v<version>)")
    submit.add_argument("--wait", action="store_true", help="poll until Kaggle has scored it (COMPLETE or ERROR)")
    _add_wait_options(submit, "the score", 1800)
    submit.set_defaults(func=cmd_kernel_submit)


def cmd_kernel_build(args) -> int:
    from digit_recognizer import split
    from digit_recognizer.cli.pipeline import config_from_args, train_option_arguments
    from digit_recognizer.kaggle.kernel import build_kernel

    paths, competition = context(args)
    config = config_from_args(args, paths, competition, resume=False)  # refused here as `train` would refuse it
    split.check_feasible(
        int(competition.rows["train"]), competition.num_classes, config.max_rows, config.holdout, config.cv
    )
    run_args = train_option_arguments(args)[2:]  # the preset goes into the script on its own
    built = build_kernel(
        paths,
        competition,
        kernel_id=args.kernel_id,
        title=args.title,
        preset=args.preset,
        run_args=run_args,
        enable_gpu=args.gpu,
        is_private=not args.public,
        folder=args.folder,
    )
    metadata = built.metadata
    say(f"kernel {metadata['id']} ('{metadata['title']}'): {built.folder}")
    say(
        f"  {built.script.name}: preset {args.preset}{' ' + ' '.join(run_args) if run_args else ''}, "
        f"package bundled ({built.bundle_bytes / 1024:.0f} KiB zip)"
    )
    say(
        f"  GPU {'on' if metadata['enable_gpu'] else 'off'}, internet off, {'private' if metadata['is_private'] else 'public'}, "
        f"input: {', '.join(metadata['competition_sources'])}"
    )
    say("push it with `digit-recognizer kernel push --wait --submit` (or `kernel push`)")
    return 0


def _kernel_folder(args, paths) -> Path:
    from digit_recognizer.kaggle.kernel import check_folder, kernel_folder

    return check_folder(Path(args.folder) if args.folder else kernel_folder(paths))


def _kernel_id(args, paths) -> str:
    from digit_recognizer.kaggle.kernel import check_kernel_id, read_metadata

    return check_kernel_id(getattr(args, "kernel_id", None) or read_metadata(_kernel_folder(args, paths))["id"])


def _check_wait_options(args) -> None:
    if args.timeout < 0:
        raise UserError(f"--timeout must be 0 or more seconds, got {args.timeout:g}")
    if not args.poll > 0:
        raise UserError(f"--poll must be more than 0 seconds, got {args.poll:g}")


def cmd_kernel_push(args) -> int:
    from digit_recognizer.kaggle import api as kaggle_api
    from digit_recognizer.kaggle.kernel import CODE_FILE, check_kernel_id, read_metadata
    from digit_recognizer.kaggle.kernel_run import record_push, wait_for_run

    paths, competition = context(args)
    _check_wait_options(args)
    if args.message is not None and not args.submit:
        raise UserError("-m/--message is the submission's description: it goes with --submit")
    if args.message is not None and not args.message.strip():
        raise UserError("the submission message (-m) must not be empty")
    folder = _kernel_folder(args, paths)
    metadata = read_metadata(folder)
    kernel_id = check_kernel_id(metadata["id"])
    code_file = folder / metadata.get("code_file", CODE_FILE)
    if not code_file.is_file():
        raise UserError(f"{code_file} not found; run `digit-recognizer kernel build` again")
    pushed = kaggle_api.kernels_push(folder, kernel_id)
    record_push(folder, kernel_id, pushed.version, pushed.url)
    for warning in pushed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    version = f" version {pushed.version}" if pushed.version else ""
    say(f"pushed kernel {kernel_id}{version}: {pushed.url or pushed.ref}")
    if not (args.wait or args.submit):
        say(
            "it runs on Kaggle now: `digit-recognizer kernel status` shows its state, "
            "`digit-recognizer kernel output` downloads its submission.csv when it is complete"
        )
        return 0
    if wait_for_run(kernel_id, args.timeout, args.poll, log=say) is None:
        print(
            f"kernel {kernel_id} is still running after {args.timeout:g} s; `digit-recognizer kernel status` shows it, "
            "`digit-recognizer kernel output` downloads its output when it is complete",
            file=sys.stderr,
        )
        return 1
    if not args.submit:
        say("`digit-recognizer kernel output` downloads its submission.csv")
        return 0
    output = _download(paths, competition, kernel_id, folder)
    return _submit(paths, competition, kernel_id, output.folder, args.message, True, args.timeout, args.poll)


def cmd_kernel_status(args) -> int:
    from digit_recognizer.kaggle import api as kaggle_api
    from digit_recognizer.kaggle.kernel_run import CANCELLED

    paths, _ = context(args)
    kernel_id = _kernel_id(args, paths)
    status, failure = kaggle_api.kernels_status(kernel_id)
    say(f"kernel {kernel_id}: {status}" + (f" ({failure})" if failure else ""))
    return 1 if status == ERROR or status in CANCELLED else 0


def _download(paths, competition, kernel_id: str, kernel_folder: Path):
    from digit_recognizer.kaggle.kernel_run import download_output

    output = download_output(paths, competition, kernel_id, kernel_folder, log=say)
    score = output.run.get("score")
    say(
        f"{output.submission}: valid, {output.rows} rows"
        + (f", accuracy against the sample's answer key {output.accuracy:.4f}" if output.accuracy is not None else "")
    )
    say(
        f"leaderboard row '{output.experiment}' (source: kernel {kernel_id} {output.label})"
        + (f", validation accuracy {score:.5f}" if isinstance(score, (int, float)) else "")
    )
    if output.run.get("near_chance"):
        warn(f"the kernel's validation accuracy ({score}) is near chance: this submission will score about as badly")
    return output


def cmd_kernel_output(args) -> int:
    paths, competition = context(args)
    kernel_id = _kernel_id(args, paths)
    _download(paths, competition, kernel_id, _kernel_folder(args, paths))
    say("submit it with `digit-recognizer kernel submit`")
    return 0


def _submit(paths, competition, kernel_id: str, folder, message, wait: bool, timeout: float, poll: float) -> int:
    from digit_recognizer.kaggle.kernel_run import submit_output
    from digit_recognizer.kaggle.submit import wait_for_score

    ref, experiment, file = submit_output(paths, competition, kernel_id, message, folder)
    say(f"submitted {file} to {competition.slug} as submission {ref} (leaderboard row '{experiment}')")
    if not wait:
        say("Kaggle scores it in a minute or two: `digit-recognizer submissions` shows the score")
        return 0
    return wait_for_score(competition, paths, ref, experiment, timeout, poll, log=say)


def cmd_kernel_submit(args) -> int:
    paths, competition = context(args)
    _check_wait_options(args)
    kernel_id = _kernel_id(args, paths)
    return _submit(paths, competition, kernel_id, None, args.message, args.wait, args.timeout, args.poll)
