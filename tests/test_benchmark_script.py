"""scripts/benchmark.py's section title: the command it records must paste back into a shell as it was run."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_script", REPO_ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--presets", "seed,fast", "--cv", "5"],
        [
            "--presets",
            "seed",
            "--run",
            "fast-lr5=fast --learning-rate 5e-3",
            "--run",
            "fast-ls10=fast --label-smoothing 0.1",
        ],
        ["--zip", "/data/my folder/digit-recognizer.zip", "--run", "x=fast --elastic 0.5"],
    ],
)
def test_heading_records_a_command_that_splits_back_into_its_arguments(benchmark, argv):
    title = benchmark.heading(argv)
    assert title.startswith("## ") and title.endswith("`")
    command = title.split("`")[1]
    assert shlex.split(command) == ["python", "scripts/benchmark.py", *argv]
