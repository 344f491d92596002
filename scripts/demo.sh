#!/usr/bin/env bash
# Fresh machine -> submission: set up .venv, then run the main job on the offline sample
# (or on the competition data / Kaggle credentials you already have). Extra arguments go to `run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/digit-recognizer run "$@"
