#!/usr/bin/env python
"""Benchmark the presets on the full competition data and record the table in docs/benchmarks.md.

Each preset trains in its own subprocess (``digit-recognizer train``) so peak RSS is
measured per run (``os.wait4``), then predicts the 28,000 test rows. Times are also
given as ratios against the ``seed`` preset of the same run.

    python scripts/benchmark.py                          # seed, fast, strong
    python scripts/benchmark.py --presets seed,fast      # a subset
    python scripts/benchmark.py --cv                     # also strong --cv 5 (over an hour on 2 cores)
    python scripts/benchmark.py --cv fast                # also fast --cv 5
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
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        _, status, usage = os.wait4(process.pid, 0)
    steal_after, total_after = cpu_ticks()
    return dict(wall=time.perf_counter() - started, cpu=usage.ru_utime + usage.ru_stime, rss=usage.ru_maxrss / 1024,
                code=os.waitstatus_to_exitcode(status), steal=(steal_after - steal_before) / max(1, total_after - total_before))


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", type=Path, default=REPO.parent / "shared" / "digit-recognizer.zip", help="the competition zip")
    parser.add_argument("--presets", default="seed,fast,strong", help="comma-separated presets (seed is always run first, as the reference)")
    parser.add_argument("--cv", nargs="?", const="strong", metavar="PRESET", help="also run PRESET --cv 5 (default strong)")
    parser.add_argument("--root", type=Path, help="scratch project folder (default: a new temporary folder)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md", help="markdown file the table is appended to")
    parser.add_argument("--extra", default="", help="extra arguments for every train command (e.g. '--epochs 1' for a dry run)")
    args = parser.parse_args()

    root = args.root or Path(tempfile.mkdtemp(prefix="digit-bench-"))
    log_file = root / "benchmark.log"
    root.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "digit_recognizer", "--root", str(root)]
    if subprocess.run([*cli, "fetch", "--zip", str(args.zip)]).returncode != 0:
        return 1  # fetch printed the reason (e.g. no zip at --zip)

    presets = [name for name in args.presets.split(",") if name]
    if "seed" in presets:
        presets.remove("seed")
    runs = [("seed", [])] + [(name, []) for name in presets] + ([(args.cv, ["--cv", "5"])] if args.cv else [])
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = []
    for preset, options in runs:
        name = f"bench-{preset}{'-cv5' if options else ''}-{stamp}"
        command = [*cli, "train", "--preset", preset, "--name", name, "--quiet", *options, *shlex.split(args.extra)]
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
        results.append(dict(run=f"{preset}{' --cv 5' if options else ''}", metrics=metrics, train=train, predict=predict,
                            params=params, flops=flops))
        print(f"  {metrics['validation']} accuracy {metrics['score']:.5f}, train {metrics['train_seconds']:.0f} s, "
              f"{metrics['images_per_second']} img/s, {train['cpu']:.0f} CPU s, host steal {train['steal']:.0%}, "
              f"peak RSS {train['rss']:.0f} MiB, predict {predict['wall']:.0f} s", flush=True)

    seed_seconds = results[0]["metrics"]["train_seconds"]
    seed_cpu = results[0]["train"]["cpu"]
    lines = [
        f"## {datetime.date.today().isoformat()}: `python scripts/benchmark.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"{os.cpu_count()} cores ({cpu_name()}), TensorFlow CPU, full data: 42,000 train rows, 28,000 test rows."
        " Accuracy is on the stratified 10% holdout (seed 42, the same rows for every preset) or out-of-fold for --cv."
        " Train seconds include validation predictions; predict seconds include starting Python and TensorFlow."
        " CPU s is the training process's user + system time; host steal is the share of the machine's CPU time"
        " the virtual machine's host took during the run, which slows the wall-clock figures (the ratios to seed less so).",
        "",
        "| run | architecture | params | MFLOPs/image | epochs | accuracy | train s | x seed time | train CPU s | x seed CPU | host steal | train images/s | predict 28k s | peak RSS MiB train / predict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        metrics = result["metrics"]
        config = json.loads((root / "models" / metrics["experiment"] / "config.json").read_text())["config"]
        lines.append(
            f"| {result['run']} | {metrics['architecture']} | {result['params']:,} | {result['flops'] / 1e6:.1f} | {config['epochs']} | "
            f"{metrics['score'] * 100:.2f}% ({metrics['validation']}) | {metrics['train_seconds']:.0f} | "
            f"{metrics['train_seconds'] / seed_seconds:.1f} | {result['train']['cpu']:.0f} | {result['train']['cpu'] / seed_cpu:.1f} | {result['train']['steal']:.0%} | "
            f"{metrics['images_per_second'] or 0:.0f} | {result['predict']['wall']:.0f} | {result['train']['rss']:.0f} / {result['predict']['rss']:.0f} |"
        )
        if metrics.get("fold_accuracies"):
            lines.append(f"|  | folds: {', '.join(f'{value * 100:.2f}%' for value in metrics['fold_accuracies'])} |" + " |" * 12)
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = args.out.read_text() if args.out.exists() else "# Benchmarks\n\nFigures from `scripts/benchmark.py`, newest first.\n\n"
    header, _, rest = previous.partition("\n## ")
    text = header.rstrip() + "\n\n" + "\n".join(lines) + ("\n## " + rest if rest else "")
    args.out.write_text(text)
    print("\n".join(lines))
    print(f"written to {args.out}; scratch folder {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
