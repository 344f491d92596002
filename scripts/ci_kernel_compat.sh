#!/usr/bin/env bash
# CI: the built Kaggle kernel script runs under the OLDEST TensorFlow/Keras pair it supports, not our pins.
#
# A kernel runs on Kaggle's preinstalled packages. The oldest supported pair is TensorFlow 2.18 with Keras 3.8
# (MINIMUM_TENSORFLOW / MINIMUM_KERAS in src/digit_recognizer/kaggle/kernel_template.py); the rest of this second
# virtual environment is what a Kaggle image of that time ships (numpy 1.26, pandas 2.2, scikit-learn 1.2,
# matplotlib 3.7, OpenCV 4.10), and neither mlxtend nor the kaggle client, which the kernel must not need.
#
# Steps: set up .venv (scripts/setup.sh) and .venv-kernel-compat; with .venv, fetch the offline sample and
# `kernel build` a tiny run (--max-rows 2000, 4 epochs: warm-up + cosine, EMA, early stopping, TTA);
# run the built script with .venv-kernel-compat in a folder laid out like /kaggle; check /kaggle/working/submission.csv
# with `digit-recognizer validate`, and that kernel-run.json names the old pair and a model that learned.
# About 3-4 minutes on 2 cores (most of it downloading TensorFlow into a new .venv-kernel-compat).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
VENV="${KERNEL_COMPAT_VENV:-.venv-kernel-compat}"
PROJECT_VENV="${PROJECT_VENV:-.venv}"  # the project's own environment (pinned), which builds the kernel
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
PYTHON="${PYTHON:-python3}"
TENSORFLOW=2.18.0
KERAS=3.8.0
KAGGLE_LIKE=(numpy==1.26.4 pandas==2.2.3 scikit-learn==1.2.2 scipy==1.13.1 matplotlib==3.7.5 opencv-python-headless==4.10.0.84)

work="$(mktemp -d "${TMPDIR:-/tmp}/kernel-compat.XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() { printf 'kernel-compat: %s (%d s)\n' "$1" $((SECONDS - started)); }
quietly() {  # run a command, showing its output only when it fails
  if ! "$@" >"$work/step.log" 2>&1; then
    cat "$work/step.log" >&2
    echo "kernel-compat: FAILED: $*" >&2
    exit 1
  fi
}

if [ "$PROJECT_VENV" = .venv ]; then  # (CI: set up once for the test suite too)
  step "setting up .venv (the project's pins)"
  quietly bash scripts/setup.sh
fi
digit_recognizer() {  # this checkout's package, run by the project's environment
  PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" "$PROJECT_VENV/bin/python" -m digit_recognizer "$@"
}
step "setting up $VENV: tensorflow-cpu==$TENSORFLOW keras==$KERAS ${KAGGLE_LIKE[*]}"
if [ ! -x "$VENV/bin/python" ]; then
  quietly "$PYTHON" -m venv "$VENV"
fi
quietly "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "tensorflow-cpu==$TENSORFLOW" "keras==$KERAS" "${KAGGLE_LIKE[@]}"
for forbidden in mlxtend kaggle kagglesdk digit_recognizer; do
  if "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$forbidden') is None)"; then
    echo "kernel-compat: FAILED: $VENV has $forbidden; the kernel must run without it (delete $VENV)" >&2
    exit 1
  fi
done

step "fetching the offline sample and building the kernel"
project="$work/project"
quietly digit_recognizer --root "$project" fetch --sample
mkdir -p "$work/kaggle/input/digit-recognizer" "$work/cwd"
cp "$project"/inputs/digit-recognizer/{train,test,sample_submission}.csv "$work/kaggle/input/digit-recognizer/"
quietly digit_recognizer --root "$project" kernel build --kernel-id ci/digit-recognizer-compat \
  --preset fast --ema --max-rows 2000 --epochs 4 --patience 2 --tta
script="$project/competition/kernel/digit_recognizer_kernel.py"

step "running the built script under TensorFlow $TENSORFLOW / Keras $KERAS"
quietly "$VENV/bin/python" "$script" --help
(cd "$work/cwd" && DIGIT_RECOGNIZER_KAGGLE_DIR="$work/kaggle" KAGGLE_KERNEL_RUN_TYPE=Batch TF_CPP_MIN_LOG_LEVEL=2 \
  "$VENV/bin/python" "$script") >"$work/run.log" 2>&1 || {
  tail -n 40 "$work/run.log" >&2
  echo "kernel-compat: FAILED: the built kernel script under TensorFlow $TENSORFLOW / Keras $KERAS" >&2
  exit 1
}
grep -E "^(TensorFlow|digit_recognizer|holdout accuracy|wrote)" "$work/run.log" | sed 's/^/  | /' || true

step "checking /kaggle/working/submission.csv"
working="$work/kaggle/working"
digit_recognizer --root "$project" validate "$working/submission.csv" | sed 's/^/  | /'
"$PROJECT_VENV/bin/python" - "$working/kernel-run.json" "$TENSORFLOW" "$KERAS" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))
problems = []
if (run.get("tensorflow"), run.get("keras")) != (sys.argv[2], sys.argv[3]):
    problems.append(f"it ran under TensorFlow {run.get('tensorflow')} / Keras {run.get('keras')}")
if not isinstance(run.get("score"), float) or run["score"] < 0.5 or run.get("near_chance"):
    problems.append(f"its validation accuracy {run.get('score')} is near chance: the model did not learn")
if problems:
    sys.exit("kernel-compat: FAILED: " + "; ".join(problems))
print(f"  | kernel-run.json: TensorFlow {run['tensorflow']}, Keras {run['keras']}, validation accuracy {run['score']:.3f}")
EOF
if [ -n "$(ls -A "$work/cwd")" ]; then
  echo "kernel-compat: FAILED: the kernel script wrote to its working directory" >&2
  exit 1
fi
step "OK: the built kernel script runs under TensorFlow $TENSORFLOW with Keras $KERAS"
