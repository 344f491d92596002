"""Project paths, the competition spec and the one frozen experiment config.

Paths are anchored at the project root with ``pathlib``; every command function
takes a :class:`Paths` so tests can point it at ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from digit_recognizer.errors import UserError

ROOT_ENV = "DIGIT_RECOGNIZER_ROOT"
COMPETITION_ENV = "DIGIT_RECOGNIZER_COMPETITION"
KAGGLE_DIR_ENV = "DIGIT_RECOGNIZER_KAGGLE_DIR"  # stand-in for /kaggle when testing the kernel
KERNEL_ENV = "KAGGLE_KERNEL_RUN_TYPE"
SPEC_RELATIVE = Path("competition") / "competition.json"


@dataclass(frozen=True)
class Competition:
    """The competition's facts, read from ``competition/competition.json``."""

    slug: str
    title: str
    url: str
    rules_url: str
    files: dict
    download_zip: str
    label_column: str
    pixel_prefix: str
    image_shape: tuple
    num_classes: int
    pixel_range: tuple
    rows: dict
    metric: str
    submission_columns: tuple
    image_id_start: int
    kernel_input_dirs: tuple

    @property
    def num_pixels(self) -> int:
        height, width, channels = self.image_shape
        return height * width * channels

    @property
    def pixel_columns(self) -> list[str]:
        return [f"{self.pixel_prefix}{i}" for i in range(self.num_pixels)]

    @property
    def train_columns(self) -> list[str]:
        return [self.label_column, *self.pixel_columns]

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(self.files.values())

    @classmethod
    def from_dict(cls, data: dict) -> "Competition":
        fields = {field.name for field in dataclasses.fields(cls)}
        values = {key: data[key] for key in fields}
        for key in ("image_shape", "pixel_range", "submission_columns", "kernel_input_dirs"):
            values[key] = tuple(values[key])
        return cls(**values)


def in_kaggle_kernel() -> bool:
    return bool(os.environ.get(KERNEL_ENV))


def kaggle_dir() -> Path:
    return Path(os.environ.get(KAGGLE_DIR_ENV, "/kaggle"))


def find_project_root(start: Path | None = None) -> Path:
    """The project root: $DIGIT_RECOGNIZER_ROOT, /kaggle/working in a kernel, else the
    nearest folder above ``start`` (default: the working directory) holding the
    competition spec, else the source checkout this package was installed from."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    if in_kaggle_kernel():
        return kaggle_dir() / "working"
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / SPEC_RELATIVE).is_file():
            return folder
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / SPEC_RELATIVE).is_file():
        return package_root
    return start


def load_competition(root: Path | None = None) -> Competition:
    """Read the competition spec: $DIGIT_RECOGNIZER_COMPETITION, else ``<root>/competition/competition.json``,
    else the one in the source checkout this package came from."""
    candidates = []
    if os.environ.get(COMPETITION_ENV):
        candidates.append(Path(os.environ[COMPETITION_ENV]))
    if root is not None:
        candidates.append(Path(root) / SPEC_RELATIVE)
    candidates.append(Path(__file__).resolve().parents[2] / SPEC_RELATIVE)
    for path in candidates:
        if path.is_file():
            try:
                return Competition.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError) as error:
                raise UserError(f"{path}: not a valid competition spec ({error})") from None
    raise UserError(f"competition spec not found (looked for {', '.join(map(str, candidates))})")


@dataclass(frozen=True)
class Paths:
    """Where everything lives, all below one root."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def data(self) -> Path:
        """The competition's three files (and the sample's answer key)."""
        return self.inputs / "digit-recognizer"

    @property
    def splits(self) -> Path:
        return self.data / "splits"

    @property
    def cache(self) -> Path:
        return self.data / "cache"

    @property
    def custom_images(self) -> Path:
        return self.inputs / "custom"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def submissions(self) -> Path:
        return self.root / "submissions"

    @property
    def leaderboard(self) -> Path:
        return self.submissions / "leaderboard.csv"

    @property
    def test_labels(self) -> Path:
        """Answer key for the offline sample's test rows (absent for the real competition)."""
        return self.data / "test_labels.csv"

    def data_file(self, competition: Competition, key: str) -> Path:
        return self.data / competition.files[key]

    def experiment_dir(self, experiment: str) -> Path:
        return self.models / experiment

    def report_dir(self, experiment: str) -> Path:
        return self.reports / experiment

    def submission_file(self, experiment: str) -> Path:
        return self.submissions / f"{experiment}.csv"

    @property
    def latest_submission(self) -> Path:
        return self.submissions / "submission.csv"

    @classmethod
    def discover(cls, root: Path | None = None) -> "Paths":
        return cls(Path(root).resolve() if root else find_project_root())


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one training run; saved as ``models/<name>/config.json``."""

    name: str
    preset: str
    architecture: str
    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str
    augment: bool
    label_smoothing: float
    patience: int
    seed: int = 42
    holdout: float = 0.1
    cv: int = 0  # 0 = holdout split; K >= 2 = K stratified folds
    full_train: bool = False
    max_rows: int = 0  # 0 = all train rows; otherwise a stratified subset (quick tries, tests)
    ema: bool = False  # keep an exponential moving average of the weights and use it as the final model
    precision: str = "float32"  # "float32", "mixed_bfloat16" (CPUs with AVX-512 BF16/AMX), "mixed_float16" (GPUs), or "auto"

    def __post_init__(self):
        if not self.name or any(char in self.name for char in '/\\:*?"<>|') or self.name.startswith("."):
            raise ValueError(f"experiment name '{self.name}' must be a plain file name")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must be between 0 and 1, got {self.holdout}")
        if self.cv == 1 or self.cv < 0:
            raise ValueError(f"--cv needs at least 2 folds, got {self.cv}")
        if self.precision not in ("auto", "float32", "mixed_bfloat16", "mixed_float16"):
            raise ValueError(f"precision must be auto, float32, mixed_bfloat16 or mixed_float16, got {self.precision}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")

    @property
    def num_members(self) -> int:
        """How many models make the experiment: K fold models, or one."""
        return self.cv if self.cv else 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})
