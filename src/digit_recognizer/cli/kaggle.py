"""Subcommands that talk to Kaggle: ``submit``, ``submissions`` and ``kernel {build,push,status}``.

Nothing heavy is imported at module level (``--help`` stays instant); the
Kaggle client is reached only through :mod:`digit_recognizer.kaggle.api`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from digit_recognizer.cli import context, say
from digit_recognizer.errors import UserError
from digit_recognizer.kaggle.submit import COMPLETE, ERROR, NOT_SUBMITTED, PENDING


def register(subparsers) -> None:
    add_submit(subparsers)
    add_submissions(subparsers)
    add_kernel(subparsers)


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
    parser = subparsers.add_parser("submissions", help="list the competition's Kaggle submissions beside the local leaderboard",
                                   description="List your remote submissions (date, file, status, public score, message) "
                                               "next to the matching local leaderboard rows, and record new scores there.")
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
        fields = {"kaggle_status": item.status, "kaggle_public_score": item.public_score or row["kaggle_public_score"],
                  "kaggle_error": item.error if item.status == ERROR else ""}
        if any(row[key] != value for key, value in fields.items()):
            leaderboard.update_where(paths.leaderboard, lambda r, ref=item.ref: r["kaggle_ref"] == ref, **fields)
            row.update(fields)
    if not remote:
        say(f"no submissions to {competition.slug} yet")
    else:
        rows = []
        for item in remote:
            row = local.get(item.ref)
            rows.append([item.date.replace("T", " ").rstrip("Z")[:16], item.file_name, item.status,
                         item.public_score or "-", (item.description or "")[:40],
                         row["experiment"] if row else "-", row["score"] if row and row["score"] else "-"])
        for line in _table(["date (UTC)", "file", "status", "public", "message", "local experiment", "validation"], rows):
            say(line)
        errors = [item for item in remote if item.status == ERROR and item.error]
        for item in errors:
            say(f"submission {item.ref} ({item.file_name}): {item.error}")
    not_submitted = [row for row in leaderboard.read_rows(paths.leaderboard) if row["kaggle_status"] == NOT_SUBMITTED]
    for row in not_submitted:
        say(f"last attempt failed for {row['experiment']}: {row['kaggle_error']}")
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
    from digit_recognizer.cli.pipeline import add_train_options

    add_train_options(build, include_quiet=False)  # the same options, help and checks as `train`
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
    from digit_recognizer.kaggle.kernel import build_kernel

    from digit_recognizer.cli.pipeline import config_from_args, train_option_arguments

    paths, competition = context(args)
    from digit_recognizer import split

    config = config_from_args(args, paths, competition, resume=False)  # refused here as `train` would refuse it
    split.check_feasible(int(competition.rows["train"]), competition.num_classes, config.max_rows, config.holdout, config.cv)
    run_args = train_option_arguments(args)[2:]  # the preset goes into the script on its own
    if args.tta:
        run_args.append("--tta")
    built = build_kernel(paths, competition, kernel_id=args.kernel_id, title=args.title, preset=args.preset,
                         run_args=run_args, enable_gpu=args.gpu, is_private=not args.public, folder=args.folder)
    metadata = built.metadata
    say(f"kernel {metadata['id']} ('{metadata['title']}'): {built.folder}")
    say(f"  {built.script.name}: preset {args.preset}{' ' + ' '.join(run_args) if run_args else ''}, "
         f"package bundled ({built.bundle_bytes / 1024:.0f} KiB zip)")
    say(f"  GPU {'on' if metadata['enable_gpu'] else 'off'}, internet off, {'private' if metadata['is_private'] else 'public'}, "
         f"input: {', '.join(metadata['competition_sources'])}")
    say("push it with `digit-recognizer kernel push`")
    return 0


def _kernel_folder(args, paths) -> Path:
    from digit_recognizer.kaggle.kernel import kernel_folder

    return Path(args.folder) if args.folder else kernel_folder(paths)


def cmd_kernel_push(args) -> int:
    from digit_recognizer.kaggle import api as kaggle_api
    from digit_recognizer.kaggle.kernel import CODE_FILE, check_kernel_id, read_metadata

    paths, _ = context(args)
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
    say(f"pushed kernel {kernel_id}{version}: {pushed.url or pushed.ref}")
    say("it runs on Kaggle now: `digit-recognizer kernel status` shows its state; its output has submission.csv")
    return 0


def cmd_kernel_status(args) -> int:
    from digit_recognizer.kaggle import api as kaggle_api
    from digit_recognizer.kaggle.kernel import check_kernel_id, read_metadata

    paths, _ = context(args)
    kernel_id = args.kernel_id or read_metadata(_kernel_folder(args, paths))["id"]
    check_kernel_id(kernel_id)
    status, failure = kaggle_api.kernels_status(kernel_id)
    say(f"kernel {kernel_id}: {status}" + (f" ({failure})" if failure else ""))
    return 0 if status != ERROR else 1
