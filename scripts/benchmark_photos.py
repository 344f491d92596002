#!/usr/bin/env python
"""Benchmark reading photos: accuracy per condition (whole-prediction exact match) on rendered phone-like photos.

The photos are rendered by ``make_custom_images.write_benchmark`` from digits the model never trained on: the
validation rows of a holdout experiment (its split file's fold 0). Each photo goes through the same per-image
code as ``digit-recognizer images`` (file decoding with EXIF orientation, segmentation, the experiment's models).

    python scripts/benchmark_photos.py --root /work/fullroot --experiment fast-full
    python scripts/benchmark_photos.py --root R --experiment E --per-condition 10 --conditions touching,form_boxes -v

``--digits-root``/``--digits-experiment`` take the digits from another holdout experiment (by default the one
being measured, so its model has never seen them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))


def measure(root: Path, experiment: str, photos: Path, rows: list, min_confidence: float, verbose: bool) -> dict:
    """{condition: [correct, total]} after reading every photo with the experiment's models."""
    from digit_recognizer.config import Paths
    from digit_recognizer.modeling.inference import load_members, load_reader
    from digit_recognizer.photos.pipeline import classifier, read_with, string_reader
    from digit_recognizer.photos.segment import read_image

    classify = classifier(load_members(Paths(root), experiment))
    reader = load_reader(Paths(root), experiment)
    read_string = string_reader(reader)
    print(f"{experiment}: {'with' if reader is not None else 'without'} a string reader for touching digits")
    scores = defaultdict(lambda: [0, 0])
    for file, expected, condition in rows:
        reading, _ = read_with(read_image(photos / file), classify, min_confidence, read_string=read_string)
        right = reading.number == expected
        scores[condition][0] += int(right)
        scores[condition][1] += 1
        if verbose and not right:
            print(f"  wrong  {file:<24} expected {expected:<7} read {reading.number or '-':<7} {reading.message}")
    return dict(scores)


def table(scores: dict, second_set: tuple) -> str:
    lines = ["| condition | photos | right | accuracy |", "|---|---:|---:|---:|"]
    for condition, (right, total) in scores.items():
        lines.append(f"| {condition} | {total} | {right} | {100 * right / total:.1f}% |")
    for label, names in (("issue 14 conditions", second_set), ("all", tuple(scores))):
        right = sum(scores[name][0] for name in names if name in scores)
        total = sum(scores[name][1] for name in names if name in scores)
        if total:
            lines.append(f"| **{label}** | {total} | {right} | **{100 * right / total:.1f}%** |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import make_custom_images as render

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="project root holding the experiment")
    parser.add_argument("--experiment", required=True, help="the experiment whose models read the photos")
    parser.add_argument(
        "--digits-root", type=Path, help="root of the holdout experiment the digits come from (default --root)"
    )
    parser.add_argument(
        "--digits-experiment", help="holdout experiment whose validation rows are drawn (default --experiment)"
    )
    parser.add_argument("--per-condition", type=int, default=40, help="photos per condition (default 40)")
    parser.add_argument("--seed", type=int, default=2026, help="rendering seed (default 2026)")
    parser.add_argument("--conditions", help="comma-separated subset of: " + ", ".join(render.BENCHMARK_CONDITIONS))
    parser.add_argument("--photos", type=Path, help="folder to render the photos into (default: a temporary folder)")
    parser.add_argument("--min-confidence", type=float, default=0.5)
    parser.add_argument("-v", "--verbose", action="store_true", help="list every misread photo")
    args = parser.parse_args(argv)
    conditions = args.conditions.split(",") if args.conditions else list(render.BENCHMARK_CONDITIONS)
    unknown = set(conditions) - set(render.BENCHMARK_CONDITIONS)
    if unknown:
        parser.error(f"unknown conditions: {', '.join(sorted(unknown))}")
    started = time.time()
    pool = render.held_out_digits(args.digits_root or args.root, args.digits_experiment or args.experiment)
    with tempfile.TemporaryDirectory(prefix="photo-benchmark-") as scratch:
        photos = args.photos or Path(scratch)
        rows = render.write_benchmark(photos, pool, args.per_condition, args.seed, conditions)
        scores = measure(args.root, args.experiment, photos, rows, args.min_confidence, args.verbose)
    print(table(scores, render.ISSUE_CONDITIONS))
    print(f"{len(rows)} photos, seed {args.seed}, experiment {args.experiment}, {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
