#!/usr/bin/env python3
"""Digit Recognizer as a Kaggle kernel: train a CNN and write /kaggle/working/submission.csv.

This file is the template that ``digit-recognizer kernel build`` fills in (the constants marked
``# kernel build fills this in``) and writes as the kernel's one script; rebuild rather than edit a built copy.
The digit_recognizer package and the competition spec travel inside the built script (BUNDLE, a base64 zip),
so the kernel needs only Kaggle's preinstalled packages and no internet.

It runs on Kaggle's preinstalled TensorFlow and Keras, not on the project's pins: the oldest supported pair is
TensorFlow 2.18 with Keras 3.8 (MINIMUM_TENSORFLOW, MINIMUM_KERAS; checked in CI by scripts/ci_kernel_compat.sh).
With anything older the script stops with one clear line before training.

In a kernel it reads the competition's mounted input under /kaggle/input, trains the preset (on every visible GPU),
warns loudly when the validation accuracy is near chance, and writes /kaggle/working/submission.csv, kernel-run.json
(what ran and how well) and the models/, reports/ and submissions/ folders under /kaggle/working.
Locally, $DIGIT_RECOGNIZER_KAGGLE_DIR points it at a folder laid out like /kaggle (input/digit-recognizer/*.csv).
"""

import argparse
import base64
import io
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

MINIMUM_TENSORFLOW = (2, 18)
MINIMUM_KERAS = (3, 8)
NEAR_CHANCE = 0.5  # a validation accuracy below this gets a loud warning (chance is 1 / number of classes)
KAGGLE_DIR_ENV = "DIGIT_RECOGNIZER_KAGGLE_DIR"
RUN_FILE = "kernel-run.json"

BUILT_WITH = "an unbuilt template"  # kernel build fills this in
PRESET = "fast"  # kernel build fills this in
RUN_ARGS = []  # kernel build fills this in
BUNDLE = ()  # kernel build fills this in


def version_tuple(text):
    """(major, minor) of a version string such as '2.18.0', '3.10.0rc1' or '2.19.0-dev2025'."""
    numbers = [int(part) for part in re.findall(r"\d+", str(text).split("+")[0])[:2]]
    return tuple(numbers + [0] * (2 - len(numbers)))


def version_problem(tensorflow_version, keras_version):
    """The one line to print when the installed pair is older than the oldest supported one, else None."""
    old = []
    if version_tuple(tensorflow_version) < MINIMUM_TENSORFLOW:
        old.append(f"TensorFlow {tensorflow_version}")
    if version_tuple(keras_version) < MINIMUM_KERAS:
        old.append(f"Keras {keras_version}")
    if not old:
        return None
    wanted = "TensorFlow {}.{}".format(*MINIMUM_TENSORFLOW) + " and Keras {}.{}".format(*MINIMUM_KERAS)
    return (
        f"this kernel needs {wanted} or newer, but the environment has {' and '.join(old)}: "
        "in the kernel's settings choose 'Always use latest environment' (or a newer pinned one) and run it again"
    )


def describe():
    training = " ".join([f"--preset {PRESET}", *RUN_ARGS])
    return (
        f"Train digit-recognizer ({BUILT_WITH}) with {training} on the competition's mounted input and write "
        "submission.csv, kernel-run.json, models/, reports/ and submissions/ to /kaggle/working "
        f"(or ${KAGGLE_DIR_ENV}/working)."
    )


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        prog=Path(sys.argv[0] or "digit_recognizer_kernel.py").name,
        description=describe(),
        epilog=f"Needs TensorFlow >= {'.'.join(map(str, MINIMUM_TENSORFLOW))} and Keras >= "
        f"{'.'.join(map(str, MINIMUM_KERAS))} (Kaggle's preinstalled ones). The training options were fixed "
        "by `digit-recognizer kernel build`: rebuild the kernel to change them.",
    )
    arguments, unknown = parser.parse_known_args(argv)
    if unknown and not _in_notebook():  # Jupyter passes its own -f connection file; anything else is a mistake
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return arguments


def _in_notebook():
    import builtins

    return hasattr(builtins, "get_ipython")  # IPython/Jupyter defines it


def unpack(target):
    """Extract the bundled package and spec into target; return the spec's path."""
    with zipfile.ZipFile(io.BytesIO(base64.b64decode("".join(BUNDLE)))) as archive:
        archive.extractall(target)
    return Path(target) / "competition.json"


def check_versions():
    """Report TensorFlow, Keras and the GPUs; stop with one clear line when the pair is too old."""
    try:
        import keras
        import tensorflow as tf
    except ImportError as error:
        print(
            f"error: this kernel needs TensorFlow and Keras ({error}); use Kaggle's default Python environment",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(1) from None
    problem = version_problem(tf.__version__, keras.__version__)
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    gpus = tf.config.list_physical_devices("GPU")
    names = ": " + ", ".join(gpu.name for gpu in gpus) if gpus else ""
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}: {len(gpus)} GPU(s){names}", flush=True)
    return tf.__version__, keras.__version__


def latest_metrics(working):
    """The metrics.json of the experiment this run trained (the newest under working/models)."""
    found = sorted((working / "models").glob("*/metrics.json"), key=lambda path: path.stat().st_mtime)
    if not found:
        return {}
    try:
        return json.loads(found[-1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def chance_warning(score, num_classes):
    """A loud multi-line warning when the validation accuracy is near chance, else ''."""
    if score is None or score >= NEAR_CHANCE:
        return ""
    line = "!" * 78
    return (
        f"{line}\nWARNING: validation accuracy {score:.3f} is near chance ({1 / num_classes:.2f} for {num_classes} "
        "classes).\nThe submission.csv written below will score about as badly on Kaggle. Train on more rows "
        "(--max-rows) or for more epochs, rebuild with `digit-recognizer kernel build` and push again.\n" + line
    )


def write_atomically(path, text):
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def main(argv=None):
    parse_arguments(sys.argv[1:] if argv is None else argv)
    kaggle_dir = Path(os.environ.get(KAGGLE_DIR_ENV) or "/kaggle")
    working = kaggle_dir / "working"
    working.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KAGGLE_KERNEL_RUN_TYPE", "Batch")  # kernel mode: read the mounted input
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.pop("DIGIT_RECOGNIZER_ROOT", None)
    tensorflow_version, keras_version = check_versions()
    bundle_dir = tempfile.mkdtemp(prefix="digit_recognizer-")
    os.environ["DIGIT_RECOGNIZER_COMPETITION"] = str(unpack(bundle_dir))
    sys.path.insert(0, bundle_dir)
    for name in [name for name in sys.modules if name == "digit_recognizer" or name.startswith("digit_recognizer.")]:
        del sys.modules[name]
    import digit_recognizer
    from digit_recognizer.cli import main as cli_main

    print(f"digit_recognizer {digit_recognizer.__version__} from {Path(digit_recognizer.__file__).parent}", flush=True)
    code = cli_main(["--root", str(working), "run", "--preset", PRESET, "--quiet", *RUN_ARGS])
    if code:
        raise SystemExit(code)
    metrics = latest_metrics(working)
    spec = json.loads(Path(os.environ["DIGIT_RECOGNIZER_COMPETITION"]).read_text(encoding="utf-8"))
    warning = chance_warning(metrics.get("score"), int(spec.get("num_classes") or 10))
    if warning:
        print(warning, file=sys.stderr, flush=True)
        print(warning, flush=True)
    target = working / "submission.csv"
    write_atomically(target, (working / "submissions" / "submission.csv").read_text(encoding="utf-8"))
    run = {
        "experiment": metrics.get("experiment", ""),
        "score": metrics.get("score"),
        "validation": metrics.get("validation", ""),
        "preset": PRESET,
        "run_args": RUN_ARGS,
        "built_with": BUILT_WITH,
        "tensorflow": tensorflow_version,
        "keras": keras_version,
        "near_chance": bool(warning),
    }
    write_atomically(working / RUN_FILE, json.dumps(run, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(working / "inputs", ignore_errors=True)  # a copy of the mounted input: keep the output small
    shutil.rmtree(bundle_dir, ignore_errors=True)
    print(f"wrote {target}", flush=True)


if __name__ == "__main__":
    main()
