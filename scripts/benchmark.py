#!/usr/bin/env python
"""Benchmark the presets on the full competition data and record the table in docs/benchmarks.md.

Each preset trains in its own subprocess (``digit-recognizer train``) so peak RSS is
measured per run (``os.wait4``), then predicts the 28,000 test rows. Times are also
given as ratios against the ``seed`` preset of the same run.

    python scripts/benchmark.py                                   # seed, fast, strong, each --cv 5 (hours on 2 cores)
    python scripts/benchmark.py --presets seed,fast               # a subset
    python scripts/benchmark.py --presets seed,fast --run 'fast-elastic=fast --elastic 0.5'   # a variant beside them
    python scripts/benchmark.py --cv 0                            # the 10% holdout instead (quick, but +-0.1 point noise)

Every run of one benchmark uses the same fold file, so two runs can be compared row by row: the table
ends with McNemar's exact test of each run against a reference run (--compare-to, default the second).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat; (0, 0) where there is none."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def run_measured(command: list[str], log_file: Path) -> dict:
    """Run a command; return its wall seconds, CPU seconds, peak RSS in MiB, exit code and the share of
    CPU time the host stole meanwhile (on a shared virtual machine a busy host slows every figure)."""
    started = time.perf_counter()
    steal_before, total_before = cpu_ticks()
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        )
        _, status, usage = os.wait4(process.pid, 0)
    steal_after, total_after = cpu_ticks()
    return dict(
        wall=time.perf_counter() - started,
        cpu=usage.ru_utime + usage.ru_stime,
        rss=usage.ru_maxrss / 1024,
        code=os.waitstatus_to_exitcode(status),
        steal=(steal_after - steal_before) / max(1, total_after - total_before),
    )


def model_size(architecture: str) -> tuple[int, int]:
    from digit_recognizer.modeling.keras_import import import_keras_quietly

    import_keras_quietly()
    from digit_recognizer.modeling.models import build_model, count_flops

    model = build_model(architecture, (28, 28, 1), 10)
    return model.count_params(), count_flops(model)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_run(text: str) -> tuple[str, str, list[str]]:
    """``NAME=PRESET [options]`` or ``PRESET`` -> (label, preset, extra train options)."""
    label, _, spec = text.partition("=") if "=" in text else (text, "", text)
    words = shlex.split(spec)
    if not words:
        raise SystemExit(f"--run '{text}': expected NAME=PRESET [options]")
    return label.strip(), words[0], words[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--zip", type=Path, default=REPO.parent / "shared" / "digit-recognizer.zip", help="the competition zip"
    )
    parser.add_argument(
        "--presets",
        default="seed,fast,strong",
        help="comma-separated presets (seed is always run first, as the reference)",
    )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=PRESET [OPTIONS]",
        help="a variant to run as well, e.g. --run 'fast-elastic=fast --elastic 0.5' (repeatable)",
    )
    parser.add_argument(
        "--cv",
        type=int,
        default=5,
        metavar="K",
        help="K-fold out-of-fold accuracy over all train rows for every run (default 5; 0 = the 10%% holdout)",
    )
    parser.add_argument(
        "--compare-to",
        metavar="NAME",
        help="McNemar's exact test of every run against this one (default: the second run)",
    )
    parser.add_argument("--root", type=Path, help="scratch project folder (default: a new temporary folder)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "benchmarks.md", help="markdown file the table is appended to"
    )
    parser.add_argument(
        "--extra", default="", help="extra arguments for every train command (e.g. '--epochs 1' for a dry run)"
    )
    args = parser.parse_args()

    root = args.root or Path(tempfile.mkdtemp(prefix="digit-bench-"))
    log_file = root / "benchmark.log"
    root.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "digit_recognizer", "--root", str(root)]
    if subprocess.run([*cli, "fetch", "--zip", str(args.zip)]).returncode != 0:
        return 1  # fetch printed the reason (e.g. no zip at --zip)

    runs = [("seed", "seed", [])]
    runs += [(name, name, []) for name in args.presets.split(",") if name and name != "seed"]
    runs += [parse_run(text) for text in args.run]
    validation = ["--cv", str(args.cv)] if args.cv else []
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = []
    for label, preset, options in runs:
        name = f"bench-{label}-{stamp}"
        command = [
            *cli,
            "train",
            "--preset",
            preset,
            "--name",
            name,
            "--quiet",
            *validation,
            *options,
            *shlex.split(args.extra),
        ]
        print("$", " ".join(command[2:]), flush=True)
        train = run_measured(command, log_file)
        if train["code"] != 0:
            print(f"train failed ({train['code']}); see {log_file}", file=sys.stderr)
            return 1
        predict = run_measured([*cli, "predict", "--experiment", name], log_file)
        if predict["code"] != 0:
            print(f"predict failed ({predict['code']}); see {log_file}", file=sys.stderr)
            return 1
        metrics = json.loads((root / "models" / name / "metrics.json").read_text())
        params, flops = model_size(metrics["architecture"])
        if metrics.get("partner", "none") != "none":  # --partner: two models per fold, both predict every image
            partner_params, partner_flops = model_size(metrics["partner"])
            params, flops = params + partner_params, flops + partner_flops
        result = dict(
            run=label,
            command=" ".join(["train", "--preset", preset, *validation, *options, *shlex.split(args.extra)]),
            name=name,
            metrics=metrics,
            train=train,
            predict=predict,
            params=params,
            flops=flops,
        )
        results.append(result)
        with open(root / "benchmark-results.jsonl", "a", encoding="utf-8") as handle:  # survives a stopped benchmark
            handle.write(json.dumps(result) + "\n")
        print(
            f"  {metrics['validation']} accuracy {score_text(metrics)}, train {metrics['train_seconds']:.0f} s "
            f"({metrics['train_seconds'] / results[0]['metrics']['train_seconds']:.1f}x seed), "
            f"{metrics['images_per_second']} img/s, {train['cpu']:.0f} CPU s, host steal {train['steal']:.0%}, "
            f"peak RSS {train['rss']:.0f} MiB, predict {predict['wall']:.0f} s",
            flush=True,
        )

    lines = table_lines(results, root, sys.argv[1:], compare_to=args.compare_to)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = (
        args.out.read_text()
        if args.out.exists()
        else "# Benchmarks\n\nFigures from `scripts/benchmark.py`, newest first.\n\n"
    )
    header, _, rest = previous.partition("\n## ")
    text = header.rstrip() + "\n\n" + "\n".join(lines) + ("\n## " + rest if rest else "")
    args.out.write_text(text)
    print("\n".join(lines))
    print(f"written to {args.out}; scratch folder {root}")
    return 0


def score_text(metrics: dict) -> str:
    """The validation accuracy with its error count and 95% Wilson interval."""
    from digit_recognizer.tracking.stats import wilson_interval

    rows = metrics["validation_rows"]
    errors = round((1 - metrics["score"]) * rows)
    low, high = wilson_interval(rows - errors, rows)
    return f"{metrics['score'] * 100:.2f}% ({errors} errors of {rows}; 95% CI {low * 100:.2f}-{high * 100:.2f})"


def heading(argv: list[str]) -> str:
    """The section's title: today's date and the command that made it, quoted so that it can be pasted back into a
    shell (``--run 'NAME=PRESET OPTIONS'`` stays one argument)."""
    return f"## {datetime.date.today().isoformat()}: `{shlex.join(['python', 'scripts/benchmark.py', *argv])}`"


def table_lines(results: list[dict], root: Path, argv: list[str], compare_to: str | None = None) -> list[str]:
    """The markdown section: one row per run, times as ratios to seed, and McNemar tests against a reference run."""
    from digit_recognizer.config import Paths
    from digit_recognizer.experiment import Experiment
    from digit_recognizer.tracking.stats import mcnemar_exact

    seed_seconds = results[0]["metrics"]["train_seconds"]
    seed_cpu = results[0]["train"]["cpu"]
    lines = [
        heading(argv),
        "",
        f"{os.cpu_count()} cores ({cpu_name()}), TensorFlow CPU, full data: 42,000 train rows, 28,000 test rows."
        " Accuracy is out-of-fold over every train row with --cv K (the same fold file for every run), else on the"
        " stratified 10% holdout, with its error count and 95% Wilson interval. Train seconds include validation"
        " predictions; predict seconds include starting Python and TensorFlow. CPU s is the training process's user +"
        " system time; host steal is the share of the machine's CPU time the virtual machine's host took during the run.",
        "",
        "| run | train command | architecture | params | MFLOPs/image | epochs | accuracy | train s | x seed time | train CPU s |"
        " x seed CPU | host steal | train images/s | predict 28k s | peak RSS MiB train / predict |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    from digit_recognizer.tracking.leaderboard import architecture_label

    for result in results:
        metrics = result["metrics"]
        config = json.loads((root / "models" / metrics["experiment"] / "config.json").read_text())["config"]
        lines.append(
            f"| {result['run']} | `{result['command']}` | {architecture_label(metrics)} | {result['params']:,} | {result['flops'] / 1e6:.1f} | "
            f"{config['epochs']} | {score_text(metrics)} | {metrics['train_seconds']:.0f} | "
            f"{metrics['train_seconds'] / seed_seconds:.1f} | {result['train']['cpu']:.0f} | {result['train']['cpu'] / seed_cpu:.1f} | "
            f"{result['train']['steal']:.0%} | {metrics['images_per_second'] or 0:.0f} | {result['predict']['wall']:.0f} | "
            f"{result['train']['rss']:.0f} / {result['predict']['rss']:.0f} |"
        )
        if metrics.get("fold_accuracies"):
            lines.append(
                f"|  | folds: {', '.join(f'{value * 100:.2f}%' for value in metrics['fold_accuracies'])} |" + " |" * 13
            )
    reference = next(
        (result for result in results if result["run"] == compare_to), results[1] if len(results) > 1 else None
    )
    if reference is not None:
        paths = Paths(root)
        base = Experiment(paths, reference["name"]).read_validation()
        lines += ["", f"McNemar's exact test against `{reference['run']}` on the validation rows both scored:", ""]
        for result in results:
            if result is reference:
                continue
            other = Experiment(paths, result["name"]).read_validation()
            rows = np.intersect1d(base.rows, other.rows)
            if not len(rows):
                continue
            first, second = base.take(rows), other.take(rows)
            test = mcnemar_exact(first.labels, first.predictions, second.predictions)
            verdict = "beyond chance at 95%" if test.significant() else "within chance at 95%"
            lines.append(
                f"- `{result['run']}`: {test.errors_b} errors against {test.errors_a} on {test.rows} rows; "
                f"{test.disagreements} disagreements ({test.only_a_right} only `{reference['run']}` right, "
                f"{test.only_b_right} only `{result['run']}` right), p = {test.p_value:.3g}: {verdict}"
            )
    lines.append("")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
